/*
 * OCI hooks that run inside the container's namespaces, from its init:
 * createContainer (after the mounts, before pivot_root: the path is the
 * runtime's view) and startContainer (after pivot_root, just before the
 * user process: the path is the container's view).  Each gets the state
 * JSON on stdin and must exit 0, or the start fails naming the hook.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "diyc.h"

/* The init's pid as the host sees it, for the state JSON: read while the
 * host's /proc is still mounted (in our pid namespace we are 1). */
static char host_pid[24] = "0";

void remember_host_pid(void)
{
	ssize_t n = readlink("/proc/self", host_pid, sizeof(host_pid) - 1);

	host_pid[n > 0 ? n : 0] = '\0';
}

static void write_state(int fd, const struct diyc_init *init, const char *status)
{
	char buf[8192];
	int n = snprintf(buf, sizeof(buf), "%s\"%s\"%s%s%s", init->hook_state[0], status,
			 init->hook_state[1], host_pid, init->hook_state[2]);

	if (n > 0 && n < (int)sizeof(buf) && write(fd, buf, n) < 0)
		return;  /* a hook that does not read its stdin is its own business */
}

static int wait_hook(pid_t pid, int timeout, int *status)
{
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		pid_t r = waitpid(pid, status, timeout > 0 ? WNOHANG : 0);

		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (timeout > 0 && now.tv_sec - start.tv_sec >= timeout) {
			kill(pid, SIGKILL);
			waitpid(pid, status, 0);
			errno = ETIMEDOUT;
			return -1;
		}
		if (timeout > 0)
			usleep(1000);
	}
}

int run_hooks(const struct diyc_init *init, const struct diyc_hook *hooks, int n,
	      const char *kind, const char *status, struct diyc_error *err)
{
	for (int i = 0; i < n; i++) {
		const struct diyc_hook *h = &hooks[i];
		int in[2], wstatus;
		pid_t pid;

		if (pipe2(in, O_CLOEXEC) < 0)
			return diyc_fail(err, kind, errno, h->path);
		pid = fork();
		if (pid < 0)
			return diyc_fail(err, kind, errno, h->path);
		if (pid == 0) {
			dup2(in[0], 0);
			execve(h->path, h->argv, h->envp);
			_exit(127);
		}
		close(in[0]);
		write_state(in[1], init, status);
		close(in[1]);
		if (wait_hook(pid, h->timeout, &wstatus) < 0)
			return diyc_fail(err, kind, errno, h->path);
		if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
			char detail[sizeof(err->detail)];

			snprintf(detail, sizeof(detail), "%s exited with %d", h->path,
				 WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus));
			return diyc_fail(err, kind, 0, detail);
		}
	}
	return 0;
}
