/*
 * Container start, as a story:
 *
 *   parent                               child (C only, until execve)
 *   ------                               -----
 *   (Python: cgroup made, limits set)
 *   diyc_spawn: pipes, stack, clone() -> container_init: join cgroup, cgroup
 *   (Python: network)                       ns, rootfs, mounts, /dev,
 *                                           pivot_root, hostname ...
 *   diyc_release: write one byte      ->    wait_for_release
 *                                           caps, identity, workdir, fds
 *   diyc_wait_exec: read error pipe  <-     execve (error pipe closes on success)
 *
 * The child builds its filesystem while the parent sets up the network, so
 * the two halves of the start overlap on a multi-core machine.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diyc.h"

/* Container init is shallow, but the libc calls it makes are not ours to
 * measure: 1 MiB costs nothing until touched, and the guard page turns a
 * stack overflow into a clean SIGSEGV instead of silent heap corruption. */
#define STACK_SIZE (1024 * 1024)

static int wait_for_release(const struct diyc_init *init, struct diyc_error *err)
{
	char go;
	ssize_t r;

	do
		r = read(init->sync_fd, &go, 1);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return diyc_fail(err, "wait_for_release", errno, NULL);
	if (r == 0)
		_exit(125); /* the parent gave up on us (or died): no one to report to */
	close(init->sync_fd);
	return 0;
}

static void reset_signals(void)
{
	/* Handlers are the embedding process's (Python's): back to defaults. */
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
}

static int run_init_steps(const struct diyc_init *init, struct diyc_error *err)
{
	sigset_t none;

	close(init->parent_fds[0]);
	close(init->parent_fds[1]);
	reset_signals();
	umask(0);
	/* Until execve we are a copy of the runtime: not dumpable, so nothing in
	 * the container can open our /proc/PID/exe (the CVE-2019-5736 lesson).
	 * execve of the container's binary makes the process dumpable again. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return diyc_fail(err, "set_dumpable", errno, NULL);

	/* Into the cgroup first, so everything the start allocates (tmpfs and
	 * overlay pages included) is charged to the container. */
	if (join_cgroup(init, err) < 0 || set_oom_score_adj(init, err) < 0)
		return -1;
	if (init->new_cgroupns && unshare(CLONE_NEWCGROUP) < 0)
		return diyc_fail(err, "unshare_cgroupns", errno, NULL);

	if (setup_stdio(init, err) < 0 ||
	    make_root_private(err) < 0 ||
	    mount_rootfs(init, err) < 0 ||
	    mount_all(init, err) < 0 ||
	    create_devices(init, err) < 0 ||
	    pivot_into_rootfs(init->rootfs, err) < 0 ||
	    write_proc_settings(init, err) < 0 ||
	    mask_paths(init, err) < 0 ||
	    make_workdir(init, err) < 0 ||
	    remount_root_readonly(init, err) < 0 ||
	    set_hostname(init, err) < 0)
		return -1;
	if (init->loopback_up && bring_loopback_up(err) < 0)
		return -1;

	if (wait_for_release(init, err) < 0)
		return -1;

	/* seccomp goes on while we still hold CAP_SYS_ADMIN (needed without
	 * no_new_privs); the calls after it are all allowed by the filter. */
	if (set_rlimits(init, err) < 0 ||
	    install_seccomp(init, err) < 0 ||
	    drop_bounding_caps(init, err) < 0 ||
	    set_identity(init, err) < 0 ||
	    set_caps(init, err) < 0 ||
	    set_no_new_privs(init, err) < 0 ||
	    enter_workdir(init, err) < 0 ||
	    close_inherited_fds(init->error_fd, err) < 0)
		return -1;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	return exec_command(init, err);
}

static int container_init(void *arg)
{
	const struct diyc_init *init = arg;
	struct diyc_error err;

	memset(&err, 0, sizeof(err));
	run_init_steps(init, &err);
	diyc_report(init->error_fd, &err);
	if (strcmp(err.step, "exec") == 0)
		_exit(err.errnum == ENOENT ? 127 : 126);
	_exit(125);
}

int diyc_spawn(struct diyc_init *init, struct diyc_child *child, struct diyc_error *err)
{
	int sync_pipe[2], error_pipe[2], saved;
	long page = sysconf(_SC_PAGESIZE);
	sigset_t all, old;
	char *stack;
	pid_t pid;

	if (pipe2(sync_pipe, O_CLOEXEC) < 0)
		return diyc_fail(err, "pipe", errno, NULL);
	if (pipe2(error_pipe, O_CLOEXEC) < 0) {
		saved = errno;
		close(sync_pipe[0]);
		close(sync_pipe[1]);
		return diyc_fail(err, "pipe", saved, NULL);
	}
	init->sync_fd = sync_pipe[0];
	init->error_fd = error_pipe[1];
	init->parent_fds[0] = sync_pipe[1];
	init->parent_fds[1] = error_pipe[0];

	stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED) {
		saved = errno;
		goto fail_pipes;
	}
	if (mprotect(stack, page, PROT_NONE) < 0) {
		saved = errno;
		munmap(stack, STACK_SIZE);
		goto fail_pipes;
	}

	/* Signals stay blocked across clone: the child must not run the
	 * embedding process's handlers before it has reset them. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = clone(container_init, stack + STACK_SIZE, init->clone_flags | SIGCHLD, init);
	saved = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	/* Without CLONE_VM the child has its own copy of the stack. */
	munmap(stack, STACK_SIZE);
	if (pid < 0)
		goto fail_pipes;

	close(sync_pipe[0]);
	close(error_pipe[1]);
	child->pid = pid;
	child->release_fd = sync_pipe[1];
	child->error_fd = error_pipe[0];
	return 0;

fail_pipes:
	close(sync_pipe[0]);
	close(sync_pipe[1]);
	close(error_pipe[0]);
	close(error_pipe[1]);
	return diyc_fail(err, "clone", saved, NULL);
}

int diyc_release(struct diyc_child *child, struct diyc_error *err)
{
	ssize_t r;

	do
		r = write(child->release_fd, "", 1);
	while (r < 0 && errno == EINTR);
	close(child->release_fd);
	child->release_fd = -1;
	/* EPIPE: the child died first; its reason is waiting in the error pipe. */
	if (r < 0 && errno != EPIPE)
		return diyc_fail(err, "release", errno, NULL);
	return 0;
}

int diyc_wait_exec(struct diyc_child *child, struct diyc_error *err)
{
	ssize_t r;

	do
		r = read(child->error_fd, err, sizeof(*err));
	while (r < 0 && errno == EINTR);
	close(child->error_fd);
	child->error_fd = -1;
	if (r == 0)
		return 0;
	if (r < 0)
		return diyc_fail(err, "wait_exec", errno, NULL);
	if (r != sizeof(*err))
		return diyc_fail(err, "wait_exec", EPROTO, "short error report");
	err->step[sizeof(err->step) - 1] = '\0';
	err->detail[sizeof(err->detail) - 1] = '\0';
	return -1;
}
