/*
 * Container start, as a story:
 *
 *   parent                               child (C only, until execve)
 *   ------                               -----
 *   (Python: cgroup made, limits set)
 *   diyc_spawn: channel, stack,       -> container_init: join cgroup,
 *     clone()                               [--userns: wait for ID_MAPS_DONE],
 *   (Python: id maps, network)              cgroup ns, rootfs, mounts, /dev,
 *                                           pivot_root, hostname ...
 *   diyc_release: RELEASE             ->    wait_for_release
 *                                           caps, identity, workdir, fds
 *   diyc_wait_exec: messages until EOF <-   EXEC_NEXT, execve (the channel
 *                                           closes on success), or ERROR
 *
 * The channel is one socketpair; its messages are in channel.c, the
 * parent's half of it (release, the waits) in child.c.
 * The child builds its filesystem while the parent sets up the network, so
 * the two halves of the start overlap on a multi-core machine.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/nsfs.h>

#include "diyc.h"

/* Container init is shallow, but the libc calls it makes are not ours to
 * measure: 1 MiB costs nothing until touched, and the guard page turns a
 * stack overflow into a clean SIGSEGV instead of silent heap corruption. */
#define STACK_SIZE (1024 * 1024)

static int wait_for_release(const struct diyc_init *init, struct diyc_error *err)
{
	int r = diyc_msg_expect(init->channel, DIYC_MSG_RELEASE, NULL, 0, "wait_for_release", err);

	if (r == 0)
		_exit(125); /* the parent gave up on us (or died): no one to report to */
	return r < 0 ? -1 : 0;
}

static void reset_signals(void)
{
	/* Handlers are the embedding process's (Python's): back to defaults. */
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
}

/* The common start of a new process: nothing of the embedding process. */
static int start_clean(const struct diyc_init *init, struct diyc_error *err)
{
	close(init->parent_channel);
	reset_signals();
	umask(0);
	/* Until execve we are a copy of the runtime: not dumpable, so nothing in
	 * the container can open our /proc/PID/exe (the CVE-2019-5736 lesson).
	 * execve of the container's binary makes the process dumpable again.
	 * (Dumpable belongs to the memory: sharing ours, the pooled init
	 * leaves it to diyc-held, its first act; nothing runs in the
	 * container before.) */
	if (!shares_our_memory(init) && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return diyc_fail(err, "set_dumpable", errno, NULL);
	/* A name only we use until execve replaces it: a process found dead
	 * under this name died before its program ran (init_died_before_exec). */
	prctl(PR_SET_NAME, DIYC_INIT_COMM, 0, 0, 0);
	return 0;
}

/* create/start split (the OCI `create` then `start`): after the release the
 * child says READY on the channel and blocks on a FIFO until `start`
 * writes START to it.  Opened O_RDWR so that read() blocks instead of
 * seeing EOF while no writer has the FIFO open.  Child memory only: no
 * locking.
 *
 * `create` has gone by then, and with it the other end of the channel: from
 * the start on, the init reports to a second FIFO that `start` reads
 * (report_fd), in the same messages.  We hold it O_RDWR too, so a report is never EPIPE/SIGPIPE,
 * and `start` sees EOF when our last fd on it closes: at execve or death.
 * The parent opened both for us (a mapped root could not open them). */
static int report_fd = -1;

static int reporting_fd(const struct diyc_init *init)
{
	return report_fd >= 0 ? report_fd : init->channel;
}

/* The last report before the program: everything of ours is done.  The
 * parent reads EOF without it as "the init died" (a signal, the OOM killer),
 * never as a successful execve. */
static void report_exec_next(const struct diyc_init *init)
{
	diyc_msg_send(reporting_fd(init), DIYC_MSG_EXEC_NEXT, 0, NULL, 0, NULL, 0);
}

static int wait_for_start(const struct diyc_init *init, struct diyc_error *err)
{
	int r;

	if (init->start_fifo_fd < 0)
		return 0;
	diyc_msg_send(init->channel, DIYC_MSG_READY, 0, NULL, 0, NULL, 0);
	r = diyc_msg_expect(init->start_fifo_fd, DIYC_MSG_START, NULL, 0, "wait_for_start", err);
	if (r <= 0)
		return r < 0 ? -1 : diyc_fail(err, "wait_for_start", EPIPE, NULL);
	close(init->start_fifo_fd);
	close(init->channel);  /* its other end, `create`, is gone */
	report_fd = init->report_fifo_fd;
	return 0;
}

static int finish_steps(const struct diyc_init *init, int wait_release, struct diyc_error *err);

/*
 * The common end: privileges and identity, then execve.
 *
 * As with runc, everything that can fail happens before the create ends
 * (READY), the program's look-up included; `start` only lets the init
 * run the startContainer hooks and execve.
 *
 * The user's seccomp profile says what the *program* may call, so our own
 * steps come before the filter: fds, rlimits, caps, identity, workdir,
 * hooks, umask, signal mask.  After it only execve remains.  Without
 * no_new_privs the filter needs CAP_SYS_ADMIN: see seccomp_extra_caps() for
 * why holding it until execve gives the program nothing.
 */
int finish_and_exec(const struct diyc_init *init, struct diyc_error *err)
{
	return finish_steps(init, 1, err);
}

/* wait_release 0: nobody releases us (exec's process, which shares the
 * caller's memory: the caller is suspended until our execve). */
static int finish_steps(const struct diyc_init *init, int wait_release, struct diyc_error *err)
{
	uint64_t extra;
	int filter_first;
	char command[4096];  /* on our stack: this memory may be the caller's too */
	sigset_t none;

	/* a pooled init learns here what it runs, and as whom (pooled.c) */
	if (init->process_on_release ? receive_process(init, err) < 0
	    : wait_release && wait_for_release(init, err) < 0)
		return -1;
	extra = seccomp_extra_caps(init);
	/* privileged (no capability sets) as another user: the setuid drops
	 * every capability, so the filter must go on before it */
	filter_first = init->seccomp_len && !init->no_new_privs && !init->set_caps && init->uid != 0;
	if (set_rlimits(init, err) < 0 ||
	    close_inherited_fds(init, err) < 0)
		return -1;
	if (filter_first && install_seccomp(init, err) < 0)
		return -1;
	if (drop_bounding_caps(init, err) < 0 ||
	    set_identity(init, err) < 0 ||
	    set_caps(init, extra, err) < 0 ||
	    enter_workdir(init, err) < 0 ||
	    set_no_new_privs(init, err) < 0 ||
	    find_command(init, command, sizeof(command), err) < 0)
		return -1;
	if (wait_for_start(init, err) < 0 ||
	    run_hooks(init, init->start_hooks, init->n_start_hooks, "startContainer hook",
		      "running", err) < 0)
		return -1;
	umask(init->umask);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	report_exec_next(init);
	if (!filter_first && install_seccomp(init, err) < 0)
		return -1;
	return exec_command(init, command, err);
}

static int host_mount_steps(const struct diyc_init *init, struct diyc_error *err);

/* In the container's root, however it was entered: the rest, to the exec. */
static int steps_in_root(const struct diyc_init *init, struct diyc_error *err)
{
	if (setup_console(init, err) < 0 ||
	    write_proc_settings(init, err) < 0 ||
	    mask_paths(init, err) < 0 ||
	    make_workdir(init, err) < 0 ||
	    remount_root_readonly(init, err) < 0 ||
	    set_hostname(init, err) < 0)
		return -1;
	if (init->loopback_up && bring_loopback_up(err) < 0)
		return -1;
	return finish_and_exec(init, err);
}

static int run_init_steps(const struct diyc_init *init, struct diyc_error *err)
{
	if (start_clean(init, err) < 0 ||
	    (init->process_on_release && close_unneeded_fds(init, err) < 0))
		return -1;
	/* Into the cgroup first, so everything the start allocates (tmpfs and
	 * overlay pages included) is charged to the container. */
	if (join_cgroup(init, err) < 0 || set_oom_score_adj(init, err) < 0 ||
	    enter_user_namespace(init, err) < 0)
		return -1;
	if (init->new_cgroupns && unshare(CLONE_NEWCGROUP) < 0)
		return diyc_fail(err, "unshare_cgroupns", errno, NULL);

	/* (hooks read it; a child sharing our memory runs none and must
	 * write nothing of ours but its own stack) */
	if (!shares_our_memory(init))
		remember_host_pid();
	/* linux.namespaces[mount].path: the rootfs is set up in that namespace
	 * (our own fs_struct, unlike a thread of the runtime, may enter it) */
	if (init->join_mnt_fd >= 0 && setns(init->join_mnt_fd, CLONE_NEWNS) < 0)
		return diyc_fail(err, "setns_mount", errno, NULL);
	if (!(init->clone_flags & CLONE_NEWNS) && init->join_mnt_fd < 0)
		return host_mount_steps(init, err);
	if (setup_stdio(init, err) < 0 ||
	    make_root_private(init, err) < 0 ||
	    mount_rootfs(init, err) < 0 ||
	    mount_all(init, err) < 0 ||
	    create_devices(init, err) < 0 ||
	    run_hooks(init, init->create_hooks, init->n_create_hooks, "createContainer hook",
		      "created", err) < 0 ||
	    pivot_into_rootfs(init->rootfs, err) < 0 ||
	    set_rootfs_propagation(init, err) < 0)
		return -1;
	return steps_in_root(init, err);
}

/*
 * An OCI container without a mount namespace (it shares the runtime's):
 * its mounts are made in the host's namespace, under the rootfs bound onto
 * itself and made private (so none propagates anywhere), and the root is
 * entered with chroot - pivot_root would move the host's own root.  The
 * runtime detaches the rootfs mount, and everything under it, on delete.
 */
static int host_mount_steps(const struct diyc_init *init, struct diyc_error *err)
{
	if (setup_stdio(init, err) < 0 ||
	    mount_rootfs(init, err) < 0)
		return -1;
	if (mount(NULL, init->rootfs, NULL, MS_PRIVATE | MS_REC, NULL) < 0)
		return diyc_fail(err, "make_rootfs_private", errno, init->rootfs);
	if (mount_all(init, err) < 0 ||
	    create_devices(init, err) < 0 ||
	    run_hooks(init, init->create_hooks, init->n_create_hooks, "createContainer hook",
		      "created", err) < 0)
		return -1;
	if (chdir(init->rootfs) < 0 || chroot(".") < 0 || chdir("/") < 0)
		return diyc_fail(err, "chroot", errno, init->rootfs);
	return steps_in_root(init, err);
}

_Noreturn void exit_reported(const struct diyc_init *init, struct diyc_error *err)
{
	diyc_send_error(reporting_fd(init), err);
	if (strcmp(err->step, "exec") == 0)
		_exit(err->errnum == ENOENT ? 127 : 126);
	_exit(125);
}

static int container_init(void *arg);
static pid_t clone_on_stack(int (*fn)(void *), int flags, void *arg);

/* The end of both ways of `diyc exec`, in the container's namespaces:
 * its cgroup, the OOM score, stdio, the console, then the process's own
 * steps to execve (wait_release: the caller's RELEASE first). */
static _Noreturn void exec_steps(const struct diyc_init *init, int wait_release,
				 struct diyc_error *err)
{
	if (join_cgroup(init, err) == 0 && set_oom_score_adj(init, err) == 0 &&
	    setup_stdio(init, err) == 0 && setup_console(init, err) == 0)
		finish_steps(init, wait_release, err);
	exit_reported(init, err);
}

/* `diyc exec`, second half: already in every namespace of the container
 * (the pid namespace too, since we were created after setns). */
static int exec_child(void *arg)
{
	struct diyc_error err;

	memset(&err, 0, sizeof(err));
	exec_steps(arg, 1, &err);
}

/*
 * `diyc exec`, first half: setns() into the container's namespaces, then
 * create the process that runs the command.  setns(CLONE_NEWPID) only
 * applies to children, hence the second clone; CLONE_PARENT makes that
 * process a child of the caller, who waits for it.  Its pid travels back
 * on the channel (PID) and this process exits.
 */
static int join_and_clone(const struct diyc_init *init, struct diyc_error *err)
{
	pid_t pid;

	if (start_clean(init, err) < 0)
		return -1;
	for (int i = 0; i < init->n_join_ns; i++)
		if (setns(init->join_ns_fds[i], 0) < 0)
			return diyc_fail(err, "setns", errno, NULL);
	pid = clone_on_stack(exec_child, CLONE_PARENT, (void *)init);
	if (pid < 0)
		return diyc_fail(err, "clone", errno, NULL);
	if (diyc_msg_send(init->channel, DIYC_MSG_PID, 0, &pid, sizeof(pid), NULL, 0) < 0)
		return diyc_fail(err, "report_pid", errno, NULL);
	_exit(0);
}

/*
 * `diyc exec` as one process, when it may share our memory (below): this
 * thread enters the container's namespaces but the mount one (a thread
 * may, for these; the pid one applies to the children it makes next),
 * clones the process that runs the command (CLONE_VM | CLONE_VFORK: we
 * wait for its execve, as posix_spawn's caller does) and goes back to its
 * own.  That process enters the mount namespace itself (its fs_struct is
 * its own) and goes straight on to execve: nobody could release it.  No
 * copy of a Python runtime's page tables, none torn down at execve, no
 * first process to create and reap.  It writes only its stack and its
 * own kernel state (raw set*id syscalls, no malloc, no statics).
 */
static const struct { int type; const char *own; } thread_ns[] = {
	{ CLONE_NEWIPC, "/proc/thread-self/ns/ipc" },
	{ CLONE_NEWUTS, "/proc/thread-self/ns/uts" },
	{ CLONE_NEWNET, "/proc/thread-self/ns/net" },
	{ CLONE_NEWCGROUP, "/proc/thread-self/ns/cgroup" },
	{ CLONE_NEWPID, "/proc/thread-self/ns/pid_for_children" },
};
#define N_THREAD_NS (sizeof(thread_ns) / sizeof(thread_ns[0]))

static int exec_direct_child(void *arg)
{
	const struct diyc_init *init = arg;
	struct diyc_error err;
	int r;

	memset(&err, 0, sizeof(err));
	r = start_clean(init, &err);
	for (int i = 0; r == 0 && i < init->n_join_ns; i++)
		if (ioctl(init->join_ns_fds[i], NS_GET_NSTYPE) == CLONE_NEWNS &&
		    setns(init->join_ns_fds[i], CLONE_NEWNS) < 0)
			r = diyc_fail(&err, "setns", errno, NULL);
	if (r < 0)
		exit_reported(init, &err);
	exec_steps(init, 0, &err);
}

/* Back to this thread's own namespaces (in reverse). */
static void leave_namespaces(const int *own, const int *types, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		if (setns(own[i], types[i]) < 0)
			abort();  /* it must not go on in a container's namespace */
		close(own[i]);
	}
}

/* -> the pid of the process that runs the command, or 0 when this thread
 * could not enter a namespace (the caller then goes the two-process way,
 * whose first process reports why); -1 when the clone failed. */
static pid_t clone_exec_direct(struct diyc_init *init)
{
	int own[N_THREAD_NS], types[N_THREAD_NS], n = 0, saved;
	pid_t pid;

	for (int i = 0; i < init->n_join_ns; i++) {
		int type = ioctl(init->join_ns_fds[i], NS_GET_NSTYPE);
		size_t k = 0;

		while (k < N_THREAD_NS && thread_ns[k].type != type)
			k++;
		if (k == N_THREAD_NS)
			continue;  /* the mount namespace: the child's to enter */
		if (n == (int)N_THREAD_NS || (own[n] = open(thread_ns[k].own, O_RDONLY | O_CLOEXEC)) < 0) {
			leave_namespaces(own, types, n);
			return 0;
		}
		if (setns(init->join_ns_fds[i], type) < 0) {
			close(own[n]);
			leave_namespaces(own, types, n);
			return 0;
		}
		types[n++] = type;
	}
	pid = clone_on_stack(exec_direct_child, CLONE_VM | CLONE_VFORK, init);
	saved = errno;
	leave_namespaces(own, types, n);
	errno = saved;
	return pid;
}

static int container_init(void *arg)
{
	const struct diyc_init *init = arg;
	struct diyc_error err;

	memset(&err, 0, sizeof(err));
	if (init->n_join_ns)
		join_and_clone(init, &err);
	else
		run_init_steps(init, &err);
	exit_reported(init, &err);
}

/* clone() on a fresh, guarded stack. */
static pid_t clone_on_stack(int (*fn)(void *), int flags, void *arg)
{
	long page = sysconf(_SC_PAGESIZE);
	char *stack;
	pid_t pid;
	int saved;

	stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED)
		return -1;
	if (mprotect(stack, page, PROT_NONE) < 0) {
		saved = errno;
		munmap(stack, STACK_SIZE);
		errno = saved;
		return -1;
	}
	pid = clone(fn, stack + STACK_SIZE, flags | SIGCHLD, arg);
	saved = errno;
	/* Without CLONE_VM the child has its own copy of the stack; with it
	 * (and CLONE_VFORK) we are back here once the child has exec'd. */
	munmap(stack, STACK_SIZE);
	errno = saved;
	return pid;
}

/* `diyc exec`'s first process only joins the namespaces and clones the one
 * that runs the command, so it may share our memory: no copy of the
 * runtime's page tables (for a Python runtime most of a fork's cost), and
 * we wait (CLONE_VFORK) until it is gone.  Not when it joins a user
 * namespace: setns() refuses a process whose memory is shared. */
static int joins_without_copy(const struct diyc_init *init)
{
	if (!init->n_join_ns)
		return 0;
	for (int i = 0; i < init->n_join_ns; i++) {
		int type = ioctl(init->join_ns_fds[i], NS_GET_NSTYPE);

		if (type < 0 || type == CLONE_NEWUSER)
			return 0;
	}
	return 1;
}

/* *direct: set when exec's process was cloned by this thread itself
 * (clone_exec_direct), not by a first process. */
static pid_t clone_init(struct diyc_init *init, int *direct)
{
	int flags = init->clone_flags | (shares_our_memory(init) ? CLONE_VM | CLONE_VFORK : 0);
	pid_t pid = 0;

	*direct = 0;
	if (!joins_without_copy(init))
		return clone_on_stack(container_init, flags, init);
	/* Not dumpable from the process's first instruction (it is in the
	 * container's pid namespace at once), and for the copy a first
	 * process makes; ours again once the last such exec is out. */
	undumpable_enter();
	/* (startContainer hooks fork: not from memory we share) */
	if (!init->n_start_hooks)
		pid = clone_exec_direct(init);
	*direct = pid != 0;
	if (pid == 0)
		pid = clone_on_stack(container_init, flags | CLONE_VM | CLONE_VFORK, init);
	undumpable_leave();
	return pid;
}

/* The master end of a container's pty, sent by setup_console(); the fd is
 * left inheritable for the supervisor. */
static int recv_fd(int sock)
{
	char byte, control[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control, .msg_controllen = sizeof(control),
	};
	struct cmsghdr *cmsg;
	int fd;

	if (recvmsg(sock, &msg, 0) <= 0)
		return -1;
	cmsg = CMSG_FIRSTHDR(&msg);
	if (!cmsg || cmsg->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
	return fd;
}

/*
 * Detached containers: a forked copy of us, in a session of its own, clones
 * the init (so it is the init's parent), tells us its pid on the channel
 * (PID, or the clone's ERROR), and turns into the supervisor by exec'ing
 * init->supervisor_argv (argv[1] becomes the pid).  The channel is then
 * between us and the init, so the start is the same.
 */
static void become_supervisor(struct diyc_init *init)
{
	char pidbuf[24], masterbuf[24];
	char **argv = (char **)init->supervisor_argv;
	sigset_t none;
	int direct;
	pid_t pid;

	/* Detach from the caller's session and terminal: whoever waits for the
	 * caller's output (a shell's $(...)) must not wait for us too. */
	setsid();
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		close(null);
	}
	pid = clone_init(init, &direct);
	if (pid < 0) {
		struct diyc_error err;

		diyc_fail(&err, "clone", errno, NULL);
		diyc_send_error(init->channel, &err);
		_exit(1);
	}
	if (diyc_msg_send(init->channel, DIYC_MSG_PID, 0, &pid, sizeof(pid), NULL, 0) < 0) {
		kill(pid, SIGKILL);
		_exit(1);
	}
	/* the child's end of the channel is the child's alone */
	close(init->channel);
	snprintf(pidbuf, sizeof(pidbuf), "%d", (int)pid);
	argv[1] = pidbuf;
	if (init->console_recv_fd >= 0) {
		/* a terminal: the child makes the pty inside the container and
		 * sends us the master, which the supervisor serves (argv[5]) */
		int master;

		if (init->console_fd >= 0)
			close(init->console_fd);
		master = recv_fd(init->console_recv_fd);
		if (master < 0) {
			kill(pid, SIGKILL);
			_exit(1);
		}
		snprintf(masterbuf, sizeof(masterbuf), "%d", master);
		argv[5] = masterbuf;
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execv(argv[0], argv);
	kill(pid, SIGKILL);
	_exit(127);
}

static int supervisor_child(struct diyc_child *child, pid_t supervisor, int channel[2],
			    struct diyc_error *err);

int diyc_spawn(struct diyc_init *init, struct diyc_child *child, struct diyc_error *err)
{
	int channel[2], saved, direct = 0;
	sigset_t all, old;
	pid_t pid, supervisor = 0;

	/* a stream: the FIFOs of the create/start split carry the same messages */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, channel) < 0)
		return diyc_fail(err, "channel", errno, NULL);
	memset(child, 0, sizeof(*child));
	child->channel = -1;
	child->console = -1;
	init->channel = channel[1];
	init->parent_channel = channel[0];

	/* Signals stay blocked across clone/fork: the child must not run the
	 * embedding process's handlers before it has reset them. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	if (init->supervisor_argv) {
		supervisor = fork();
		if (supervisor == 0) {
			close(channel[0]);  /* the init sees EOF if our caller dies */
			init->parent_channel = -1;
			become_supervisor(init);
		}
		saved = errno;
		sigprocmask(SIG_SETMASK, &old, NULL);
		if (supervisor < 0)
			goto fail_channel;
		return supervisor_child(child, supervisor, channel, err);
	}
	pid = clone_init(init, &direct);
	saved = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0)
		goto fail_channel;
	close(channel[1]);
	child->pid = pid;
	if (direct)
		child->exec_pid = pid;  /* (wait_pid: no PID message comes) */
	child->channel = channel[0];
	return 0;

fail_channel:
	close(channel[0]);
	close(channel[1]);
	return diyc_fail(err, supervisor ? "supervisor" : "clone", saved, NULL);
}

/* The init's pid, from the supervisor that cloned it.  An ERROR of the
 * init's that comes first is kept for wait_exec. */
static int supervisor_child(struct diyc_child *child, pid_t supervisor, int channel[2],
			    struct diyc_error *err)
{
	close(channel[1]);  /* EOF once the supervisor and the init are gone */
	child->channel = channel[0];
	child->supervisor = supervisor;
	if (diyc_child_wait(child, DIYC_MSG_PID, err) < 0) {
		diyc_child_close(child);
		waitpid(supervisor, NULL, 0);
		if (strcmp(err->step, DIYC_INIT_DIED) == 0)
			diyc_fail(err, "supervisor", ECHILD, "it died before cloning the init");
		return -1;
	}
	child->pid = child->exec_pid;
	child->exec_pid = 0;
	return 0;
}
