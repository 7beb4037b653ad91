/*
 * diyc-init: the tiny PID 1 of `diyc run --init`.
 *
 * A shell or a program that never expected to be PID 1 neither reaps the
 * orphans the kernel hands to it nor dies of SIGTERM (PID 1 has no default
 * signal actions).  This init runs the command as its child, forwards every
 * signal it can catch to it, reaps every zombie, and exits with the
 * command's status (128+N if a signal killed it).
 *
 * usage: diyc-init [--] COMMAND [ARG...]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	sigset_t all, none;
	pid_t child;
	int first = 1;

	if (argc > 1 && strcmp(argv[1], "--") == 0)
		first = 2;
	if (first >= argc) {
		fprintf(stderr, "usage: diyc-init [--] COMMAND [ARG...]\n");
		return 2;
	}
	sigfillset(&all);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &all, NULL);

	child = fork();
	if (child < 0) {
		perror("diyc-init: fork");
		return 125;
	}
	if (child == 0) {
		sigprocmask(SIG_SETMASK, &none, NULL);
		execvp(argv[first], argv + first);
		fprintf(stderr, "diyc-init: %s: %s\n", argv[first], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}

	for (;;) {
		siginfo_t info;
		int sig = sigwaitinfo(&all, &info);

		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill(child, sig);
			continue;
		}
		for (;;) {
			int status;
			pid_t pid = waitpid(-1, &status, WNOHANG);

			if (pid <= 0)
				break;
			if (pid == child)
				return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
		}
	}
}
