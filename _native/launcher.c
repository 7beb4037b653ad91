/*
 * diyc-launcher: the `diyc` and `diyc-runc` commands (installed under both
 * names).  Static, no Python: it hands the command to the diyc server of the
 * state root, which has the whole CLI imported and runs it in a forked worker
 * that adopts this process's context (see diyc/server.py).  When no server
 * answers, or the server declines, it execs the Python CLI exactly as before
 * (diyc-py / diyc-runc-py next to this binary), so every behaviour stays the
 * same without a server.
 *
 * Protocol (unix stream socket ROOT/server/socket):
 *   request:  one sendmsg carrying SCM_RIGHTS [cwd, stdin, stdout, stderr]
 *             and "DIYC1\0" + u32 length + NUL-separated fields:
 *             command, root, umask, argc, argv..., envc, env...
 *   replies:  8-byte records {u32 type, i32 value}:
 *             ACCEPT, DECLINE, EXIT code, KILLED signal
 *   to the server after ACCEPT: SIGNAL records for the relayed signals.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

enum { MSG_ACCEPT = 1, MSG_DECLINE = 2, MSG_EXIT = 3, MSG_KILLED = 4, MSG_SIGNAL = 5 };

struct record {
	uint32_t type;
	int32_t value;
};

static const int relayed[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

static char self_dir[PATH_MAX - 32];  /* room for "/diyc-runc-py" */

/* The Python CLI next to this binary: diyc-py for diyc, diyc-runc-py for
 * diyc-runc. */
static void python_cli(char *out, size_t size, const char *command)
{
	snprintf(out, size, "%s/%s-py", self_dir, command);
}

static void fallback(const char *command, char **argv)
{
	char path[PATH_MAX];
	python_cli(path, sizeof(path), command);
	argv[0] = path;
	execv(path, argv);
	fprintf(stderr, "%s: cannot run %s: %s\n", command, path, strerror(errno));
	exit(127);
}

/* Start the server in the background, detached (its own `server start` does
 * the setsid and waits for nothing of ours); this command goes the direct
 * way meanwhile. */
static void start_server(const char *root)
{
	pid_t pid = fork();
	if (pid < 0)
		return;
	if (pid == 0) {
		if (fork() != 0)
			_exit(0);
		char path[PATH_MAX];
		python_cli(path, sizeof(path), "diyc");
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
		}
		/* Nothing else of the first caller's: a long-lived server must not
		 * hold its locks or the write end of a pipe someone waits on. */
		syscall(SYS_close_range, 3U, ~0U, 0U);
		char *args[] = {path, "--root", (char *)root, "server", "start", "--quiet", NULL};
		execv(path, args);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
}

/* diyc's own root: --root among the leading options, else DIYC_ROOT, else
 * the default; made absolute like Root() does. */
static int state_root(char *out, size_t size, const char *command, int argc, char **argv)
{
	const char *root = NULL;
	if (strcmp(command, "diyc") == 0) {
		for (int i = 1; i < argc && argv[i][0] == '-'; i++) {
			if (strcmp(argv[i], "--root") == 0) {
				if (i + 1 >= argc)
					return -1;
				root = argv[++i];
			} else if (strncmp(argv[i], "--root=", 7) == 0) {
				root = argv[i] + 7;
			} else {
				break;
			}
		}
	}
	if (!root || !*root)
		root = getenv("DIYC_ROOT");
	if (!root || !*root)
		root = "/var/lib/diyc";
	if (root[0] == '/')
		return snprintf(out, size, "%s", root) < (int)size ? 0 : -1;
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return -1;
	return snprintf(out, size, "%s/%s", cwd, root) < (int)size ? 0 : -1;
}

struct buffer {
	char *data;
	size_t len, cap;
};

static int put(struct buffer *b, const char *s)
{
	size_t n = strlen(s) + 1;
	if (b->len + n > b->cap) {
		size_t cap = (b->cap + n) * 2;
		char *data = realloc(b->data, cap);
		if (!data)
			return -1;
		b->data = data;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	return 0;
}

static int put_int(struct buffer *b, long value)
{
	char text[32];
	snprintf(text, sizeof(text), "%ld", value);
	return put(b, text);
}

static int send_request(int sock, const char *command, const char *root, int argc, char **argv)
{
	struct buffer b = {0};
	/* header: "DIYC1\0" and a u32 body length (put() of "lll" reserves 4) */
	if (put(&b, "DIYC1") || put(&b, "lll"))
		return -1;
	size_t header = b.len;
	mode_t mask = umask(0);
	umask(mask);
	int envc = 0;
	while (environ[envc])
		envc++;
	if (put(&b, command) || put(&b, root) || put_int(&b, mask) || put_int(&b, argc - 1))
		return -1;
	for (int i = 1; i < argc; i++)
		if (put(&b, argv[i]))
			return -1;
	if (put_int(&b, envc))
		return -1;
	for (int i = 0; i < envc; i++)
		if (put(&b, environ[i]))
			return -1;
	uint32_t body = b.len - header;
	memcpy(b.data + 6, &body, 4);

	int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cwd < 0)
		return -1;
	int fds[4] = {cwd, 0, 1, 2};
	for (int i = 1; i < 4; i++)
		if (fcntl(fds[i], F_GETFD) < 0)
			return -1; /* a closed stdio: the direct way handles it as before */
	char control[CMSG_SPACE(sizeof(fds))];
	memset(control, 0, sizeof(control));
	struct iovec iov = {b.data, b.len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = control, .msg_controllen = sizeof(control)};
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cmsg), fds, sizeof(fds));
	ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	close(cwd);
	if (n < 0)
		return -1;
	size_t done = n;
	while (done < b.len) {
		n = send(sock, b.data + done, b.len - done, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += n;
	}
	free(b.data);
	return 0;
}

static int read_record(int sock, struct record *r)
{
	size_t done = 0;
	while (done < sizeof(*r)) {
		ssize_t n = read(sock, (char *)r + done, sizeof(*r) - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += n;
	}
	return 0;
}

static void die_by(int sig)
{
	signal(sig, SIG_DFL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	_exit(128 + sig);
}

int main(int argc, char **argv)
{
	const char *base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];
	const char *command = strcmp(base, "diyc-runc") == 0 ? "diyc-runc" : "diyc";

	ssize_t len = readlink("/proc/self/exe", self_dir, sizeof(self_dir) - 1);
	if (len <= 0) {
		fprintf(stderr, "%s: cannot find its own path: %s\n", command, strerror(errno));
		return 127;
	}
	self_dir[len] = 0;
	*strrchr(self_dir, '/') = 0;

	const char *mode = getenv("DIYC_SERVER");
	if (mode && (strcmp(mode, "off") == 0 || strcmp(mode, "0") == 0))
		fallback(command, argv);

	char root[PATH_MAX];
	if (state_root(root, sizeof(root), command, argc, argv) < 0)
		fallback(command, argv);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/server/socket", root)
	    >= (int)sizeof(addr.sun_path))
		fallback(command, argv);

	/* Relayed signals are blocked from here on: before the server accepts,
	 * one arriving is delivered on the way to the fallback (execv keeps the
	 * mask, so unblock first). */
	sigset_t set, old;
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(relayed) / sizeof(relayed[0]); i++)
		sigaddset(&set, relayed[i]);

	int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		fallback(command, argv);
	if (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int err = errno;
		close(sock);
		/* diyc starts its server on first use; diyc-runc (run by podman or
		 * containerd, for their own state root) only uses a running one. */
		if ((err == ENOENT || err == ECONNREFUSED) && strcmp(command, "diyc") == 0
		    && !(mode && strcmp(mode, "nostart") == 0))
			start_server(root);
		fallback(command, argv);
	}
	sigprocmask(SIG_BLOCK, &set, &old);
	struct record r;
	if (send_request(sock, command, root, argc, argv) < 0 || read_record(sock, &r) < 0
	    || r.type != MSG_ACCEPT) {
		close(sock);
		sigprocmask(SIG_SETMASK, &old, NULL);
		fallback(command, argv);
	}

	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		fprintf(stderr, "%s: signalfd: %s\n", command, strerror(errno));
		return 125;
	}
	struct pollfd fds[2] = {{.fd = sock, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
	for (;;) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (fds[1].revents & POLLIN) {
			struct signalfd_siginfo info;
			if (read(sfd, &info, sizeof(info)) == sizeof(info)) {
				struct record s = {MSG_SIGNAL, (int32_t)info.ssi_signo};
				send(sock, &s, sizeof(s), MSG_NOSIGNAL);
			}
		}
		if (fds[0].revents) {
			if (read_record(sock, &r) < 0)
				break;
			if (r.type == MSG_EXIT)
				return r.value;
			if (r.type == MSG_KILLED)
				die_by(r.value);
		}
	}
	fprintf(stderr, "%s: lost the diyc server before the command finished\n", command);
	return 125;
}
