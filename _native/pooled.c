/*
 * A pooled init (diyc.Pool): it does every step of a start up to the
 * release - namespaces, cgroup, root filesystem, network - says READY and
 * waits.  Its release is a PROCESS message that says what to run: a
 * description in a memfd (struct diyc_process: identity, capabilities,
 * cwd, arguments, environment) and the fds that become its stdio.  From
 * there the start ends as any other (spawn.c's finish_and_exec).
 *
 * The child calls these between clone() and execve(): no malloc (the
 * description is mmap'd, the pointer arrays too), no stdio.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "diyc.h"

/*
 * A pooled init that waits as diyc-held needs nothing of our memory once
 * it has exec'd that, so it shares it until then (CLONE_VM, the calling
 * thread suspended meanwhile: CLONE_VFORK), as posix_spawn's child does:
 * no copy of a service's address space at the clone, no copy-on-write
 * faults in the service after it, no teardown of the copy at the execve
 * (~25% of the CPU a pooled container costs, measured with perf).  The
 * kernel treats such a child as its own: never an OOM victim (in_vfork),
 * its oom_score_adj its own.  It writes only its stack and its own
 * kernel state; not with --userns (it waits for our id maps), OCI hooks
 * (they fork) or a supervisor.
 */
int shares_our_memory(const struct diyc_init *init)
{
	return init->held_exe_fd >= 0 && !init->userns && !init->n_create_hooks &&
	       !init->supervisor_argv;
}

#define MAX_KEPT 128

static int add_kept(int *kept, int n, int fd)
{
	if (fd < 3 || n >= MAX_KEPT)
		return n;
	kept[n++] = fd;
	for (int i = n - 1; i > 0 && kept[i - 1] > kept[i]; i--) {  /* insertion: few fds */
		int t = kept[i];

		kept[i] = kept[i - 1];
		kept[i - 1] = t;
	}
	return n;
}

static int close_from_to(unsigned int first, unsigned int last)
{
	if (first > last)
		return 0;
	if (syscall(SYS_close_range, first, last, 0) == 0)
		return 0;
	if (errno != ENOSYS)
		return -1;
	for (unsigned int fd = first; fd <= last && fd < 65536; fd++)
		close(fd);
	return 0;
}

/*
 * A pooled init may wait as long as its pool lives.  What it inherited from
 * the embedding process at clone() (every fd: close-on-exec only acts at
 * execve) must not stay open that long: a pipe another thread is reading
 * until EOF, another init's channel, a server's client socket.  It keeps
 * the fds its start needs, and closes the others now.
 */
int close_unneeded_fds(const struct diyc_init *init, struct diyc_error *err)
{
	int kept[MAX_KEPT], n = 0;
	unsigned int next = 3;

	n = add_kept(kept, n, init->channel);
	for (int i = 0; i < 3; i++)
		n = add_kept(kept, n, init->stdio[i]);
	for (int i = 0; i < init->n_cgroup_fds; i++)
		n = add_kept(kept, n, init->cgroup_fds[i]);
	for (int i = 0; i < init->n_reopen; i++)
		n = add_kept(kept, n, init->reopen_fds[i]);
	n = add_kept(kept, n, init->join_mnt_fd);
	n = add_kept(kept, n, init->held_exe_fd);
	if (n >= MAX_KEPT)
		return diyc_fail(err, "close_fds", EMFILE, "too many fds to keep");
	for (int i = 0; i < n; i++) {
		if ((unsigned int)kept[i] < next)
			continue;  /* the same fd twice (stdio) */
		if (close_from_to(next, kept[i] - 1) < 0)
			return diyc_fail(err, "close_fds", errno, NULL);
		next = kept[i] + 1;
	}
	if (close_from_to(next, ~0U) < 0)
		return diyc_fail(err, "close_fds", errno, NULL);
	return 0;
}

/* The next NUL-terminated string in [*p, end), or NULL. */
static char *next_string(char **p, const char *end)
{
	char *s = *p, *nul = memchr(s, '\0', end - s);

	if (!nul)
		return NULL;
	*p = nul + 1;
	return s;
}

/* A string vector of n entries from *p, in `v` (n + 1 slots). */
static int read_strings(char **p, const char *end, char **v, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (!(v[i] = next_string(p, end)))
			return -1;
	v[n] = NULL;
	return 0;
}

/* The description, mapped and checked, into the init's fields.  The
 * struct is the child's own copy of the parent's memory: ours to change. */
static int apply_description(struct diyc_init *init, int fd, struct diyc_error *err)
{
	struct diyc_process *head;
	struct stat st;
	char *base, *p, *end, **strv;
	size_t size, slots;

	if (fstat(fd, &st) < 0)
		return diyc_fail(err, "process", errno, NULL);
	size = st.st_size;
	if (size < sizeof(*head) || size > DIYC_PROCESS_MAX)
		return diyc_fail(err, "process", EPROTO, "bad description size");
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (base == MAP_FAILED)
		return diyc_fail(err, "process", errno, NULL);
	head = (struct diyc_process *)base;
	end = base + size;
	/* stdio: bits 0-2 only (returned as our int: never negative) */
	if (head->size != size || head->argc < 1 || head->n_groups > 65536 || head->stdio > 7 ||
	    head->argc > size || head->envc > size ||
	    sizeof(*head) + (size_t)head->n_groups * sizeof(gid_t) > size)
		return diyc_fail(err, "process", EPROTO, "bad description");
	p = base + sizeof(*head) + head->n_groups * sizeof(gid_t);
	slots = (size_t)head->argc + head->envc + 2;
	strv = mmap(NULL, slots * sizeof(char *), PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (strv == MAP_FAILED)
		return diyc_fail(err, "process", errno, NULL);
	init->cwd = next_string(&p, end);
	if (!init->cwd || init->cwd[0] != '/' ||
	    read_strings(&p, end, strv, head->argc) < 0 ||
	    read_strings(&p, end, strv + head->argc + 1, head->envc) < 0)
		return diyc_fail(err, "process", EPROTO, "bad description strings");
	init->argv = strv;
	init->envp = strv + head->argc + 1;
	init->uid = head->uid;
	init->gid = head->gid;
	init->groups = (const gid_t *)(base + sizeof(*head));
	init->n_groups = head->n_groups;
	if (init->set_caps) {
		init->cap_effective = head->cap_effective;
		init->cap_permitted = head->cap_permitted;
	}
	return head->stdio;
}

/* The received fds become 0, 1, 2 (a clear bit: that one is closed). */
static int take_stdio(struct diyc_init *init, unsigned int mask, const int *fds, int n,
		      struct diyc_error *err)
{
	int next = 0;

	for (int i = 0; i < 3; i++)
		init->stdio[i] = (mask & (1u << i)) && next < n ? fds[next++] : -1;
	if (next != n)
		return diyc_fail(err, "process", EPROTO, "stdio fds do not match the description");
	if (setup_stdio(init, err) < 0)
		return -1;
	for (int i = 0; i < 3; i++)
		if (init->stdio[i] < 0)
			close(i);
	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t r = write(fd, p, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		len -= r;
	}
	return 0;
}

/* n >= 0 in decimal, into out (16 bytes): no stdio in the child. */
static void decimal(char *out, int n)
{
	char rev[16];
	int k = 0, i = 0;

	do
		rev[k++] = '0' + n % 10;
	while ((n /= 10) && k < 15);
	while (k > 0)
		out[i++] = rev[--k];
	out[i] = '\0';
}

/*
 * A copy of the embedding process - a Python service of tens or hundreds
 * of MB - pays for that size at execve, which tears the copy down: ~3 ms
 * for 50 MB here, on the critical path of a pool's run.  So a pooled init
 * sheds it while it waits: it execs diyc-held (a small static program of
 * this same code, opened by the parent before the clone), handing over
 * what the end of the start needs in a memfd; diyc-held then says READY.
 */
static int become_held(const struct diyc_init *init, struct diyc_error *err)
{
	struct diyc_held_state st = {
		.size = sizeof(st) + init->n_rlimits * sizeof(struct diyc_rlimit) +
			init->seccomp_len * 8,
		.channel = init->channel, .umask = init->umask, .set_caps = init->set_caps,
		.last_cap = init->last_cap, .no_new_privs = init->no_new_privs,
		.seccomp_len = init->seccomp_len, .n_rlimits = init->n_rlimits,
		.seccomp_early = init->seccomp_early,
		.cap_bounding = init->cap_bounding, .cap_effective = init->cap_effective,
		.cap_permitted = init->cap_permitted, .cap_inheritable = init->cap_inheritable,
		.cap_ambient = init->cap_ambient,
	};
	char fd_arg[16], *argv[] = { DIYC_INIT_COMM, fd_arg, NULL }, *envp[] = { NULL };
	int fd = syscall(SYS_memfd_create, "diyc-held", 0);  /* (inherited by diyc-held) */

	if (fd < 0)
		return diyc_fail(err, "held_state", errno, NULL);
	if (write_all(fd, &st, sizeof(st)) < 0 ||
	    write_all(fd, init->rlimits, init->n_rlimits * sizeof(struct diyc_rlimit)) < 0 ||
	    write_all(fd, init->seccomp_filter, init->seccomp_len * 8) < 0)
		return diyc_fail(err, "held_state", errno, NULL);
	if (fcntl(init->channel, F_SETFD, 0) < 0)
		return diyc_fail(err, "held_state", errno, NULL);
	decimal(fd_arg, fd);
	syscall(SYS_execveat, init->held_exe_fd, "", argv, envp, AT_EMPTY_PATH);
	return diyc_fail(err, "exec_held", errno, NULL);
}

/* diyc-held's side: the state into a fresh struct (the rest zero: no
 * fds, no hooks, nothing the pool does not use). */
int load_held_state(struct diyc_init *init, int fd, struct diyc_error *err)
{
	struct diyc_held_state *st;
	struct stat sb;
	char *base;

	if (fstat(fd, &sb) < 0 || sb.st_size < (off_t)sizeof(*st) || sb.st_size > DIYC_PROCESS_MAX)
		return diyc_fail(err, "held_state", EPROTO, NULL);
	base = mmap(NULL, sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (base == MAP_FAILED)
		return diyc_fail(err, "held_state", errno, NULL);
	st = (struct diyc_held_state *)base;
	if (st->size != sb.st_size || st->n_rlimits < 0 || st->seccomp_len < 0 ||
	    sizeof(*st) + (size_t)st->n_rlimits * sizeof(struct diyc_rlimit) +
	    (size_t)st->seccomp_len * 8 != st->size)
		return diyc_fail(err, "held_state", EPROTO, NULL);
	init->channel = st->channel;
	init->umask = st->umask;
	init->set_caps = st->set_caps;
	init->last_cap = st->last_cap;
	init->no_new_privs = st->no_new_privs;
	init->cap_bounding = st->cap_bounding;
	init->cap_effective = st->cap_effective;
	init->cap_permitted = st->cap_permitted;
	init->cap_inheritable = st->cap_inheritable;
	init->cap_ambient = st->cap_ambient;
	init->n_rlimits = st->n_rlimits;
	init->rlimits = (struct diyc_rlimit *)(base + sizeof(*st));
	init->seccomp_len = st->seccomp_len;
	init->seccomp_early = st->seccomp_early;
	init->seccomp_filter = st->seccomp_len ? base + sizeof(*st) +
			       st->n_rlimits * sizeof(struct diyc_rlimit) : NULL;
	init->process_on_release = 1;
	init->held_exe_fd = init->parent_channel = init->join_mnt_fd = -1;
	init->start_fifo_fd = init->report_fifo_fd = -1;
	init->console_fd = init->console_recv_fd = -1;
	for (int i = 0; i < 3; i++)
		init->stdio[i] = -1;
	return 0;
}

/*
 * READY, then the PROCESS message; its description goes into the init,
 * its fds become stdio, and the workdir is made if missing (as at create,
 * still as root).  EOF instead: the pool is gone, nobody to report to.
 */
int receive_process(const struct diyc_init *init, struct diyc_error *err)
{
	struct diyc_init *mine = (struct diyc_init *)init;
	struct diyc_msg m;
	int mask, r;

	if (init->held_exe_fd >= 0)
		return become_held(init, err);
	/* the bounding set is the pool's, whoever runs: dropped while we wait
	 * (not on the run's path; nothing before the execve needs those) */
	if (drop_bounding_caps(init, err) < 0)
		return -1;
	mine->bounding_dropped = 1;
	/* The filter too, when it allows every call we make until the
	 * execve (seccomp.py decides): its install - a BPF JIT compile,
	 * 0.6-1 ms here - is then off the run's path as well.  Still with
	 * every capability, as the late install would have needed
	 * (seccomp_extra_caps: none left to keep). */
	if (init->seccomp_early && init->seccomp_len) {
		if (install_seccomp(init, err) < 0)
			return -1;
		mine->seccomp_len = 0;
	}
	if (diyc_msg_send(init->channel, DIYC_MSG_READY, 0, NULL, 0, NULL, 0) < 0)
		_exit(125);
	r = diyc_msg_recv(init->channel, &m);
	if (r == 0)
		_exit(125);
	if (r < 0)
		return diyc_fail(err, "process", errno, NULL);
	if (m.h.type != DIYC_MSG_PROCESS || m.n_fds < 1) {
		diyc_msg_close_fds(&m);
		return diyc_fail(err, "process", EPROTO, NULL);
	}
	mask = apply_description(mine, m.fds[0], err);
	close(m.fds[0]);
	if (mask < 0 || take_stdio(mine, mask, m.fds + 1, m.n_fds - 1, err) < 0) {
		for (int i = 1; i < m.n_fds; i++)
			close(m.fds[i]);
		return -1;
	}
	for (int i = 1; i < m.n_fds; i++)
		if (m.fds[i] > 2)
			close(m.fds[i]);
	return make_workdir(init, err);
}

/* -- the parent's side ---------------------------------------------------- */

static int give_up(struct diyc_child *child)
{
	close(child->channel);
	child->channel = -1;
	return -1;
}

/* A pooled init: every step up to the release done (READY), the channel
 * kept for its process (diyc_send_process).  -1: it failed or died. */
int diyc_wait_held(struct diyc_child *child, struct diyc_error *err)
{
	struct diyc_msg m;
	int r;

	if (child->channel < 0)
		return diyc_fail(err, "wait_held", EBADF, NULL);
	while ((r = diyc_msg_recv(child->channel, &m)) > 0) {
		diyc_msg_close_fds(&m);
		if (m.h.type == DIYC_MSG_READY)
			return 0;
		if (m.h.type == DIYC_MSG_ERROR) {
			diyc_msg_error(&m, err);
			return give_up(child);
		}
	}
	r = r < 0 ? errno : 0;
	give_up(child);
	return r ? diyc_fail(err, "wait_held", r, NULL) : diyc_fail(err, DIYC_INIT_DIED, 0, NULL);
}

/* The release of a pooled init: its description (a memfd) and stdio fds.
 * 1: sent; 0: the init was gone already (EPIPE - its end is closed: our
 * message and fds went nowhere; diyc_wait_exec says how it ended). */
int diyc_send_process(struct diyc_child *child, const int *fds, int n, struct diyc_error *err)
{
	if (child->channel < 0)
		return diyc_fail(err, "process", EBADF, NULL);
	if (diyc_msg_send(child->channel, DIYC_MSG_PROCESS, 0, NULL, 0, fds, n) == 0)
		return 1;
	if (errno == EPIPE || errno == ECONNRESET)
		return 0;
	return diyc_fail(err, "process", errno, NULL);
}
