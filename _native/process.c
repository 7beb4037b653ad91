/*
 * The process half of container init: names, stdio, identity, file
 * descriptors and the final execve.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "diyc.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/*
 * The child moves itself into its cgroup by writing "0" to files the parent
 * opened for it.  Writing another process's pid to cgroup.procs takes the
 * global cgroup_threadgroup_rwsem for writing, which waits for an RCU grace
 * period: 8-20 ms per container measured here.  A single thread moving
 * itself through v1's `tasks` file skips that lock (~0.1 ms).
 */
int join_cgroup(const struct diyc_init *init, struct diyc_error *err)
{
	for (int i = 0; i < init->n_cgroup_fds; i++) {
		ssize_t r;

		do
			r = write(init->cgroup_fds[i], "0", 1);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			return diyc_fail(err, "join_cgroup", errno, NULL);
	}
	return 0;
}

static int write_file(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return -1;
	r = write(fd, value, strlen(value));
	close(fd);
	return r < 0 ? -1 : 0;
}

/* Namespaced sysctls, written through the container's own /proc before
 * /proc/sys is made read-only. */
int write_proc_settings(const struct diyc_init *init, struct diyc_error *err)
{
	for (int i = 0; i < init->n_sysctls; i++)
		if (write_file(init->sysctl_paths[i], init->sysctl_values[i]) < 0)
			return diyc_fail(err, "sysctl", errno, init->sysctl_paths[i]);
	return 0;
}

int set_oom_score_adj(const struct diyc_init *init, struct diyc_error *err)
{
	if (init->oom_score_adj && write_file("/proc/self/oom_score_adj", init->oom_score_adj) < 0)
		return diyc_fail(err, "oom_score_adj", errno, init->oom_score_adj);
	return 0;
}

/*
 * A new user namespace has no id maps until the parent writes them; wait
 * for that (ID_MAPS_DONE, with the idmapped layers attach_idmapped_layers
 * mounts), then take the namespace's root as our ids, which makes us the
 * owner of every namespace created with it.
 *
 * Those ids may not search the (private) diyc root, where our overlay dirs
 * are: open them first, while we are still its owner, in our own mount
 * namespace, onto the fds the parent's paths name (/proc/self/fd/N/...).
 */
int enter_user_namespace(const struct diyc_init *init, struct diyc_error *err)
{
	int r;

	if (!init->userns)
		return 0;
	r = diyc_msg_expect(init->channel, DIYC_MSG_ID_MAPS_DONE, init->layer_fds, init->n_layers,
			    "wait_id_maps", err);
	if (r < 0)
		return -1;
	if (r == 0)
		_exit(125);  /* the parent gave up */
	for (int i = 0; i < init->n_reopen; i++) {
		int fd = open(init->reopen_paths[i], O_PATH | O_CLOEXEC);

		if (fd < 0 || dup3(fd, init->reopen_fds[i], O_CLOEXEC) < 0)
			return diyc_fail(err, "open_state_dir", errno, init->reopen_paths[i]);
		close(fd);
	}
	if (syscall(SYS_setresgid, 0, 0, 0) < 0)
		return diyc_fail(err, "userns_setgid", errno, NULL);
	if (syscall(SYS_setresuid, 0, 0, 0) < 0)
		return diyc_fail(err, "userns_setuid", errno, NULL);
	return 0;
}

int set_hostname(const struct diyc_init *init, struct diyc_error *err)
{
	if (init->hostname && sethostname(init->hostname, strlen(init->hostname)) < 0)
		return diyc_fail(err, "sethostname", errno, init->hostname);
	if (init->domainname && setdomainname(init->domainname, strlen(init->domainname)) < 0)
		return diyc_fail(err, "setdomainname", errno, init->domainname);
	return 0;
}

/* A new network namespace starts with `lo` down; programs expect 127.0.0.1. */
int bring_loopback_up(struct diyc_error *err)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return diyc_fail(err, "loopback_up", errno, NULL);
	diyc_strlcpy(ifr.ifr_name, "lo", IFNAMSIZ);
	ifr.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
		int e = errno;
		close(s);
		return diyc_fail(err, "loopback_up", e, NULL);
	}
	close(s);
	return 0;
}

int setup_stdio(const struct diyc_init *init, struct diyc_error *err)
{
	for (int i = 0; i < 3; i++) {
		int fd = init->stdio[i];

		/* dup2(fd, fd) would keep a close-on-exec flag: clear it instead. */
		if (fd == i) {
			if (fcntl(fd, F_SETFD, 0) < 0)
				return diyc_fail(err, "stdio", errno, NULL);
		} else if (fd >= 0 && dup2(fd, i) < 0) {
			return diyc_fail(err, "stdio", errno, NULL);
		}
	}
	return 0;
}

static int send_fd(int sock, int fd)
{
	char byte = 0, control[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control, .msg_controllen = sizeof(control),
	};
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);

	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	return sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

/*
 * A terminal (docker -t, OCI process.terminal): the pty is made from the
 * container's own /dev/ptmx (its devpts instance), so `tty` and job control
 * work inside; the slave becomes stdio and controlling terminal of a new
 * session, and the master goes to whoever holds the other end of the
 * console socket (the supervisor, or an OCI caller), or to the parent on
 * the channel (`exec -t`).
 */
int setup_console(const struct diyc_init *init, struct diyc_error *err)
{
	int master, slave, unlock = 0;

	if (init->console_fd < 0 && !init->console_to_parent)
		return 0;
	master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return diyc_fail(err, "open_ptmx", errno, NULL);
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		return diyc_fail(err, "unlockpt", errno, NULL);
	slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
	if (slave < 0)
		return diyc_fail(err, "open_pty_slave", errno, NULL);
	if (setsid() < 0)
		return diyc_fail(err, "setsid", errno, NULL);
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		return diyc_fail(err, "controlling_terminal", errno, NULL);
	for (int i = 0; i < 3; i++)
		if (dup2(slave, i) < 0)
			return diyc_fail(err, "console_stdio", errno, NULL);
	if (slave > 2)
		close(slave);
	if (init->console_to_parent
	    ? diyc_msg_send(init->channel, DIYC_MSG_CONSOLE, 0, NULL, 0, &master, 1) < 0
	    : send_fd(init->console_fd, master) < 0)
		return diyc_fail(err, "send_console", errno, NULL);
	close(master);
	if (init->console_fd >= 0)
		close(init->console_fd);
	return 0;
}

/*
 * Raw system calls, not glibc's setgroups()/setgid()/setuid(): those apply
 * the change to every thread of the process, and in a clone() of a
 * multi-threaded program (a Python service with worker threads) they wait
 * forever for threads that exist only in the parent.
 */
int set_identity(const struct diyc_init *init, struct diyc_error *err)
{
	/* Groups first: once we drop to a non-root uid we may no longer change them. */
	if (syscall(SYS_setgroups, init->n_groups, init->groups) < 0)
		return diyc_fail(err, "setgroups", errno, NULL);
	if (syscall(SYS_setresgid, init->gid, init->gid, init->gid) < 0)
		return diyc_fail(err, "setgid", errno, NULL);
	if (syscall(SYS_setresuid, init->uid, init->uid, init->uid) < 0)
		return diyc_fail(err, "setuid", errno, NULL);
	return 0;
}

/* Nothing of diyc's (or of the Python process that embeds it) may leak into
 * the container: every fd above stdio - and above the ones the caller asked
 * to pass on (OCI --preserve-fds) - becomes close-on-exec.  The channel to
 * the parent is among them, so it closes exactly when execve succeeds. */
int close_inherited_fds(const struct diyc_init *init, struct diyc_error *err)
{
	unsigned int first = 3 + (init->preserve_fds > 0 ? init->preserve_fds : 0);

	for (unsigned int fd = 3; fd < first; fd++)
		if (fcntl(fd, F_SETFD, 0) < 0)
			return diyc_fail(err, "preserve_fds", errno, NULL);
	if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return 0;
	if (errno != ENOSYS && errno != EINVAL)
		return diyc_fail(err, "close_fds", errno, NULL);

	/* Kernels before 5.11: walk the whole table. */
	struct rlimit rl;
	int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur : 65536;
	for (int fd = first; fd < max; fd++)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	return 0;
}

static const char *env_lookup(char *const *envp, const char *name)
{
	size_t n = strlen(name);

	for (; envp && *envp; envp++)
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

/* An executable regular file, for the calling user (AT_EACCESS): 0, or
 * the errno execve would most likely give. */
static int executable(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return errno;
	if (!S_ISREG(st.st_mode))
		return EACCES;
	return faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) < 0 ? errno : 0;
}

/*
 * The program, found before the create ends (as runc does), so a missing
 * or non-executable one is create's error rather than a dead container
 * after start.  execvpe() would search the PATH of *this* process, which is
 * the host's: the container's PATH is searched, like a shell inside it
 * would.  `out` gets the path execve is given.
 */
int find_command(const struct diyc_init *init, char *out, size_t size, struct diyc_error *err)
{
	const char *file = init->argv[0];
	const char *path, *p;
	int seen_eacces = 0, e;

	if (strchr(file, '/')) {
		if (diyc_strlcpy(out, file, size) >= size)
			return diyc_fail(err, "exec", ENAMETOOLONG, file);
		e = executable(file);
		return e ? diyc_fail(err, "exec", e, file) : 0;
	}
	path = env_lookup(init->envp, "PATH");
	if (!path)
		path = DEFAULT_PATH;
	for (p = path;; p++) {
		const char *end = strchrnul(p, ':');
		size_t dl = end - p, fl = strlen(file);

		if (dl + 1 + fl + 1 <= size) {
			if (dl == 0) {
				memcpy(out, file, fl + 1);
			} else {
				memcpy(out, p, dl);
				out[dl] = '/';
				memcpy(out + dl + 1, file, fl + 1);
			}
			e = executable(out);
			if (e == 0)
				return 0;
			if (e == EACCES)
				seen_eacces = 1;
			else if (e != ENOENT && e != ENOTDIR)
				return diyc_fail(err, "exec", e, file);
		}
		if (*end == '\0')
			break;
		p = end;
	}
	return diyc_fail(err, "exec", seen_eacces ? EACCES : ENOENT, file);
}

int exec_command(const struct diyc_init *init, const char *path, struct diyc_error *err)
{
	execve(path, init->argv, init->envp);
	return diyc_fail(err, "exec", errno, init->argv[0]);
}

/* Like docker, a missing working directory is created (as root, before the
 * identity switch); entering it happens as the container user. */
int make_workdir(const struct diyc_init *init, struct diyc_error *err)
{
	char path[4096];
	size_t len;

	if (!init->cwd || chdir(init->cwd) == 0)
		return 0;
	if (errno != ENOENT)
		return 0; /* enter_workdir reports it as the container user */
	len = diyc_strlcpy(path, init->cwd, sizeof(path));
	if (len >= sizeof(path))
		return diyc_fail(err, "workdir", ENAMETOOLONG, init->cwd);
	for (size_t i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return diyc_fail(err, "workdir", errno, init->cwd);
		if (i < len)
			path[i] = '/';
	}
	return 0;
}

int enter_workdir(const struct diyc_init *init, struct diyc_error *err)
{
	if (chdir(init->cwd ? init->cwd : "/") < 0)
		return diyc_fail(err, "chdir", errno, init->cwd);
	return 0;
}

/* Dumpable belongs to the memory, which every thread of ours shares: while
 * an exec's process shares it, inside the container's pid namespace, it
 * must not be dumpable (nothing in the container may open its
 * /proc/PID/mem, fd/ or environ).  Execs run in several threads at once
 * (the GIL is let go): the first in turns it off, the last out turns it
 * back, so that no thread's restore opens another's window. */
static pthread_mutex_t undumpable_lock = PTHREAD_MUTEX_INITIALIZER;
static int undumpable_users, undumpable_saved;

void undumpable_enter(void)
{
	pthread_mutex_lock(&undumpable_lock);
	if (undumpable_users++ == 0) {
		undumpable_saved = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	}
	pthread_mutex_unlock(&undumpable_lock);
}

void undumpable_leave(void)
{
	int saved = errno;

	pthread_mutex_lock(&undumpable_lock);
	if (--undumpable_users == 0 && undumpable_saved > 0)
		prctl(PR_SET_DUMPABLE, undumpable_saved, 0, 0, 0);
	pthread_mutex_unlock(&undumpable_lock);
	errno = saved;
}
