/*
 * diyc-shim: the supervisor of one detached container, as small as conmon.
 *
 * It is exec'd by the process that cloned the container (so it is the
 * container's parent and can reap it), in its own session, so it outlives
 * the `diyc run -d` that started it and the terminal it ran in.  It:
 *   - copies the container's stdout and stderr into a log file, one line per
 *     record in the CRI format: "<RFC3339Nano> <stdout|stderr> <F|P> <text>"
 *     (P: a partial line, continued by the next record), rotating it to
 *     <log>.1 past max-size;
 *   - with a terminal (OUT_FD is the pty master, ERR_FD -1), serves
 *     `diyc attach` on a unix socket (SOCK_SEQPACKET, one client at a time):
 *     'd'+bytes both ways, 'w'+rows+cols (uint16 each) to resize, and a
 *     final 'x'+int32 exit code to the client still attached at the end;
 *   - reaps the container and writes its exit code to exit-file (atomically);
 *   - execs the finish command (diyc itself), which records the end,
 *     releases the container's resources and applies its restart policy.
 * It links only libc and allocates nothing after start.
 *
 * usage: diyc-shim PID LOG MAX_SIZE EXIT_FILE OUT_FD ERR_FD SOCKET|- -- FINISH_CMD...
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

struct log {
	const char *path;
	long long max_size;
	long long size;
	int fd;
};

static int open_log(struct log *log)
{
	struct stat st;

	log->fd = open(log->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (log->fd < 0)
		return -1;
	log->size = fstat(log->fd, &st) == 0 ? st.st_size : 0;
	return 0;
}

static void rotate(struct log *log)
{
	char old[4096];

	if (log->max_size <= 0 || log->size < log->max_size)
		return;
	snprintf(old, sizeof(old), "%s.1", log->path);
	close(log->fd);
	rename(log->path, old);
	open_log(log);
}

static void write_all(struct log *log, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t r = write(log->fd, buf, len);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return; /* a full disk must not kill the container's supervisor */
		}
		buf += r;
		len -= r;
		log->size += r;
	}
}

static void write_record(struct log *log, const char *stream, const char *text, size_t len, int partial)
{
	char head[96], stamp[40];
	struct timespec ts;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(head, sizeof(head), "%s.%09ldZ %s %c ", stamp, ts.tv_nsec, stream, partial ? 'P' : 'F');
	write_all(log, head, n);
	write_all(log, text, len);
	write_all(log, "\n", 1);
	rotate(log);
}

/* One stream: bytes not yet ended by a newline wait in `pending`. */
struct stream {
	const char *name;
	int fd;
	char pending[16384];
	size_t used;
};

static void flush_lines(struct log *log, struct stream *s, int eof)
{
	size_t start = 0;

	for (size_t i = 0; i < s->used; i++) {
		if (s->pending[i] == '\n') {
			write_record(log, s->name, s->pending + start, i - start, 0);
			start = i + 1;
		}
	}
	if (start < s->used && (eof || (start == 0 && s->used == sizeof(s->pending)))) {
		write_record(log, s->name, s->pending + start, s->used - start, !eof);
		start = s->used;
	}
	memmove(s->pending, s->pending + start, s->used - start);
	s->used -= start;
}

struct attach {
	int listen_fd;          /* -1: no attach socket */
	int client;             /* -1: nobody attached */
	int master;             /* the pty master, written with the client's input */
};

static void send_client(struct attach *a, char type, const void *data, size_t len)
{
	char buf[1 + 16384];

	if (a->client < 0 || len > sizeof(buf) - 1)
		return;
	buf[0] = type;
	memcpy(buf + 1, data, len);
	if (send(a->client, buf, len + 1, MSG_NOSIGNAL) < 0) {
		close(a->client);   /* gone (or stuck): it may attach again */
		a->client = -1;
	}
}

static void serve_client(struct attach *a)
{
	char buf[1 + 16384];
	ssize_t r = recv(a->client, buf, sizeof(buf), 0);

	if (r <= 0) {
		close(a->client);
		a->client = -1;
		return;
	}
	if (buf[0] == 'd' && a->master >= 0) {
		ssize_t done = 1;
		while (done < r) {
			ssize_t w = write(a->master, buf + done, r - done);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				break;
			done += w;
		}
	} else if (buf[0] == 'w' && r >= 5 && a->master >= 0) {
		struct winsize ws = { 0 };
		uint16_t rows, cols;

		memcpy(&rows, buf + 1, 2);
		memcpy(&cols, buf + 3, 2);
		ws.ws_row = rows;
		ws.ws_col = cols;
		ioctl(a->master, TIOCSWINSZ, &ws);
	}
}

static void copy_output(struct log *log, struct stream *streams, struct attach *a)
{
	struct pollfd fds[4];

	for (;;) {
		int open_streams = 0;

		for (int i = 0; i < 2; i++) {
			fds[i].fd = streams[i].fd;
			fds[i].events = POLLIN;
			open_streams += streams[i].fd >= 0;
		}
		if (!open_streams)
			return;
		fds[2].fd = a->listen_fd;
		fds[2].events = POLLIN;
		fds[3].fd = a->client;
		fds[3].events = POLLIN;
		if (poll(fds, 4, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (fds[2].revents & POLLIN) {
			int c = accept4(a->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0) {
				if (a->client >= 0)
					close(a->client);
				a->client = c;
			}
		}
		if (a->client >= 0 && (fds[3].revents & (POLLIN | POLLHUP | POLLERR)))
			serve_client(a);
		for (int i = 0; i < 2; i++) {
			struct stream *s = &streams[i];
			ssize_t r;

			if (s->fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(s->fd, s->pending + s->used, sizeof(s->pending) - s->used);
			if (r < 0 && errno == EINTR)
				continue;
			/* a pty master reads EIO once the last slave fd is closed */
			if (r <= 0) {
				flush_lines(log, s, 1);
				if (s->fd == a->master)
					a->master = -1;
				close(s->fd);
				s->fd = -1;
				continue;
			}
			send_client(a, 'd', s->pending + s->used, r);
			s->used += r;
			flush_lines(log, s, 0);
		}
	}
}

/* Socket paths are limited to 108 bytes: bind the name relative to its
 * directory (clients connect through /proc/self/fd/N/NAME likewise). */
static int listen_attach(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	char dir[4096];
	int fd;

	if (strcmp(path, "-") == 0 || strlen(name) >= sizeof(addr.sun_path))
		return -1;
	if (slash) {
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
		if (chdir(dir) < 0)
			return -1;
	}
	strcpy(addr.sun_path, name);
	unlink(name);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	umask(077);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 4) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int reap(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return 255;
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static void write_exit_file(const char *path, int code)
{
	char tmp[4096], buf[32];
	int fd, n;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	n = snprintf(buf, sizeof(buf), "%d\n", code);
	if (write(fd, buf, n) == n)
		rename(tmp, path);
	close(fd);
}

int main(int argc, char **argv)
{
	struct log log = { 0 };
	struct stream streams[2] = { { .name = "stdout" }, { .name = "stderr" } };
	struct attach attach = { .listen_fd = -1, .client = -1, .master = -1 };
	int32_t code;
	pid_t pid;

	if (argc < 10 || strcmp(argv[8], "--") != 0) {
		fprintf(stderr, "usage: diyc-shim PID LOG MAX_SIZE EXIT_FILE OUT_FD ERR_FD SOCKET|- -- FINISH_CMD...\n");
		return 2;
	}
	pid = atoi(argv[1]);
	log.path = argv[2];
	log.max_size = atoll(argv[3]);
	streams[0].fd = atoi(argv[5]);
	streams[1].fd = atoi(argv[6]);
	/* The terminal that started us may go away; stop signals are for the
	 * container (diyc signals it directly), not for us. */
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	if (open_log(&log) < 0)
		log.fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	attach.listen_fd = listen_attach(argv[7]);
	if (streams[1].fd < 0)
		attach.master = streams[0].fd;

	copy_output(&log, streams, &attach);
	code = reap(pid);
	close(log.fd);
	write_exit_file(argv[4], code);
	send_client(&attach, 'x', &code, sizeof(code));
	if (attach.listen_fd >= 0)
		unlink(strrchr(argv[7], '/') ? strrchr(argv[7], '/') + 1 : argv[7]);
	execv(argv[9], argv + 9);
	return 1;
}
