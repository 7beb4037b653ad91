/*
 * diyc native core: the syscall sequence that turns a cloned process into a
 * container.  Python builds a `struct diyc_init` (everything the child needs,
 * flattened into plain C memory) and calls diyc_spawn(); from clone() to
 * execve() the child touches only this struct and the kernel.
 */
#ifndef DIYC_H
#define DIYC_H

#include <linux/filter.h>
#include <stdint.h>
#include <sys/types.h>

/* Why a step failed: the name of the step, errno, and optional detail.
 * Child-side failures travel as an ERROR message (channel.c). */
struct diyc_error {
	char step[32];
	int errnum;
	char detail[224];
};

/* The step wait_exec gives an init that died without a word: EOF before
 * its EXEC_NEXT. */
#define DIYC_INIT_DIED "init_died"
/* The init's name (comm) until execve. */
#define DIYC_INIT_COMM "diyc:init"

/* One entry of the OCI `mounts` list, with the options already split by
 * Python into mount(2) flags, propagation flags and filesystem data. */
struct diyc_mount {
	const char *source;
	const char *target;     /* absolute, inside the container */
	const char *fstype;
	const char *data;
	unsigned long flags;
	unsigned long propagation; /* MS_PRIVATE/MS_SLAVE/... or 0 */
	int is_file;            /* bind of a regular file: create a file, not a dir */
};

struct diyc_device {
	const char *path;       /* absolute, inside the container */
	mode_t mode;            /* type bits | permissions */
	dev_t rdev;
};

struct diyc_symlink {
	const char *target;
	const char *linkpath;
};

struct diyc_hook {
	const char *path;
	char *const *argv;
	char *const *envp;
	int timeout;            /* seconds, 0: none */
};

struct diyc_rlimit {
	int resource;
	unsigned long long soft, hard;
};

struct diyc_init {
	int clone_flags;        /* CLONE_NEW* namespaces created by clone() */
	int new_cgroupns;       /* unshare(CLONE_NEWCGROUP) once placed in the cgroup */
	const int *cgroup_fds;  /* open `tasks`/`cgroup.procs` files the child joins */
	int n_cgroup_fds;
	int loopback_up;        /* bring `lo` up in a new network namespace */

	/* root filesystem */
	const char *rootfs;          /* directory that becomes / */
	const char *overlay_options; /* mount an overlay at rootfs, or NULL to bind rootfs */
	const char *scratch;         /* if set: a private tmpfs here (idmapped layers; upper/ work/) */
	const char *scratch_options; /* its mount data (mode=, and the size= cap) */
	int readonly_root;
	unsigned long rootfs_propagation;  /* MS_SHARED/SLAVE/PRIVATE/UNBINDABLE [| MS_REC], 0: private */

	struct diyc_mount *mounts;
	int n_mounts;
	struct diyc_device *devices;
	int n_devices;
	struct diyc_symlink *symlinks;
	int n_symlinks;
	const char **masked_paths;
	int n_masked;
	const char **readonly_paths;
	int n_readonly;

	const char *hostname;
	const char *domainname;

	/* process */
	char *const *argv;
	char *const *envp;
	const char *cwd;
	mode_t umask;           /* the process's umask (creation happens with 0) */
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	int n_groups;
	int stdio[3];           /* fds to become 0, 1, 2; -1 keeps the inherited one */
	int preserve_fds;       /* pass fds 3 .. 3+N-1 on to the process */

	/* privileges */
	int set_caps;           /* 0: keep every capability (privileged) */
	int last_cap;           /* /proc/sys/kernel/cap_last_cap */
	int bounding_dropped;   /* a pool's init: dropped while it waited (receive_process) */
	uint64_t cap_bounding, cap_effective, cap_permitted, cap_inheritable, cap_ambient;
	int no_new_privs;
	const void *seccomp_filter;  /* a compiled BPF program (struct sock_filter[]) */
	int seccomp_len;        /* its length in instructions; 0: no filter */
	int seccomp_early;      /* a pool's init: on while it waits (the filter allows
				 * every call left before the execve: seccomp.py) */
	char *const *supervisor_argv; /* detached: exec this as the init's parent */
	const int *join_ns_fds; /* exec: namespaces to join instead of creating */
	int n_join_ns;
	int join_mnt_fd;        /* the init enters this mount namespace, or -1 */
	int start_fifo_fd;      /* create/start split: block on this FIFO before exec, */
	int report_fifo_fd;     /* report to this one once started (both O_RDWR), or -1 */
	struct diyc_hook *create_hooks;  /* OCI createContainer */
	int n_create_hooks;
	struct diyc_hook *start_hooks;   /* OCI startContainer */
	int n_start_hooks;
	const char *hook_state[3];       /* state JSON around "status" and "pid" */
	int userns;             /* CLONE_NEWUSER: wait for the id maps, then become root in it */
	int n_layers;           /* user namespace: idmapped layers arrive with ID_MAPS_DONE ... */
	int *layer_fds;         /* ... here (n_layers, the child's copy), attached at <scratch>/lower<i> */
	const char **reopen_paths; /* user namespace: paths its ids may not search, opened ... */
	const int *reopen_fds;  /* ... in our mount namespace onto these fds, before taking them */
	int n_reopen;
	int console_fd;         /* terminal: send the pty master over this socket, or -1 ... */
	int console_to_parent;  /* ... or to the parent, on the channel (CONSOLE) */
	int console_recv_fd;    /* detached terminal: the supervisor receives it here */
	int process_on_release; /* a pool's: READY at the release, which is a PROCESS message
				 * carrying what to run (struct diyc_process); until then the
				 * init keeps no fd it does not need */
	int held_exe_fd;        /* ... and it waits as diyc-held (this fd), not as a copy
				 * of the embedding process (struct diyc_held_state), or -1 */
	struct diyc_rlimit *rlimits;
	int n_rlimits;
	const char *oom_score_adj;   /* written to /proc/self/oom_score_adj, or NULL */
	const char **sysctl_paths;   /* /proc/sys/... inside the container */
	const char **sysctl_values;
	int n_sysctls;

	/* set by diyc_spawn */
	int channel;            /* the child's end of the channel (channel.c) */
	int parent_channel;     /* the parent's end, closed first in the child */
};

/* channel.c: typed messages between the parent and the init. */
enum diyc_msg_type {
	DIYC_MSG_ERROR = 1,     /* child: a step failed; payload "step\0detail", errnum */
	DIYC_MSG_READY,         /* child: every step done, holding before execve (create/start) */
	DIYC_MSG_EXEC_NEXT,     /* child: only seccomp and execve remain (EOF without it: died) */
	DIYC_MSG_PID,           /* payload a pid_t: exec's process, or the init a supervisor cloned */
	DIYC_MSG_CONSOLE,       /* child: fd the pty master (a terminal for the parent) */
	DIYC_MSG_ID_MAPS_DONE,  /* parent: id maps written; fds: the idmapped layers */
	DIYC_MSG_RELEASE,       /* parent: go on to execve */
	DIYC_MSG_START,         /* `start`, on the start FIFO: the held init may exec */
	DIYC_MSG_PROCESS,       /* parent: the release of a pooled init, with its process;
				 * fds: the description (a memfd), then the stdio fds */
};

/* The head of a PROCESS message's description (a memfd), followed by
 * n_groups gid_t, then the cwd, the argc arguments and the envc
 * environment entries, each NUL-terminated.  Native byte order. */
struct diyc_process {
	uint32_t size;          /* of the whole description */
	uint32_t uid, gid;
	uint32_t n_groups, argc, envc;
	uint32_t stdio;         /* bit i: an fd for stdio i came with the message (in order);
				 * clear: stdio i is closed */
	uint32_t reserved;
	uint64_t cap_effective, cap_permitted;  /* for the user (unless privileged) */
};
#define DIYC_PROCESS_MAX (64u << 20)

/* What a pooled init takes across its execve of diyc-held (a memfd, its
 * number diyc-held's argv[1]): the fields the end of the start reads,
 * then n_rlimits struct diyc_rlimit, then the seccomp filter. */
struct diyc_held_state {
	uint32_t size;
	int32_t channel;
	uint32_t umask;
	int32_t set_caps, last_cap, no_new_privs;
	int32_t seccomp_len, n_rlimits, seccomp_early;
	uint64_t cap_bounding, cap_effective, cap_permitted, cap_inheritable, cap_ambient;
};

#define DIYC_MSG_PAYLOAD 256
#define DIYC_MSG_MAX_FDS 64

struct diyc_msg_header {
	uint16_t type;
	uint16_t len;           /* payload bytes after the header */
	int32_t errnum;
};

struct diyc_msg {
	struct diyc_msg_header h;
	char payload[DIYC_MSG_PAYLOAD];
	int fds[DIYC_MSG_MAX_FDS];
	int n_fds;
};

int diyc_msg_send(int fd, int type, int errnum, const void *payload, size_t len,
		  const int *fds, int n_fds);
int diyc_msg_recv(int fd, struct diyc_msg *m);
void diyc_msg_close_fds(struct diyc_msg *m);
void diyc_send_error(int fd, const struct diyc_error *err);
int diyc_msg_error(const struct diyc_msg *m, struct diyc_error *err);
int diyc_msg_expect(int fd, int type, int *fds, int n_fds, const char *step, struct diyc_error *err);

/* seccomp profile rules, as resolved by Python: one syscall number, the
 * SECCOMP_RET_* value, and argument conditions (ANDed).  Rules of one
 * syscall are adjacent; the first that matches decides. */
#define DIYC_SECCOMP_MAX_CONDS 6
enum { DIYC_CMP_NE = 1, DIYC_CMP_LT, DIYC_CMP_LE, DIYC_CMP_EQ, DIYC_CMP_GE, DIYC_CMP_GT,
       DIYC_CMP_MASKED_EQ };

struct diyc_seccomp_cond {
	int arg;
	int op;
	unsigned long long value, value_two;
};

struct diyc_seccomp_rule {
	int nr;
	unsigned int action;
	int n_conds;
	struct diyc_seccomp_cond conds[DIYC_SECCOMP_MAX_CONDS];
};

/* One OCI linux.resources.devices rule, for the v2 device filter. */
struct diyc_device_rule {
	int allow;
	int type;               /* 'a', 'b' or 'c' */
	long major, minor;      /* -1: any */
	int access;             /* BPF_DEVCG_ACC_MKNOD | _READ | _WRITE */
};

struct diyc_child {
	pid_t pid;
	pid_t supervisor;       /* detached containers: the supervisor's pid */
	int channel;            /* the parent's end of the channel, or the report FIFO */
	/* exec (or a supervisor): the two processes on the child's side race,
	 * so what comes before the message waited for is kept for its turn */
	pid_t exec_pid;         /* PID, or 0 */
	int console;            /* CONSOLE, or -1 */
	int failed;             /* an ERROR came: */
	struct diyc_error failure;
};

/* spawn.c */
int finish_and_exec(const struct diyc_init *init, struct diyc_error *err);
_Noreturn void exit_reported(const struct diyc_init *init, struct diyc_error *err);
int diyc_spawn(struct diyc_init *init, struct diyc_child *child, struct diyc_error *err);

/* child.c: the parent's half of the channel */
int diyc_release(struct diyc_child *child, struct diyc_error *err);
int diyc_id_maps_done(struct diyc_child *child, const int *layer_fds, int n, struct diyc_error *err);
pid_t diyc_wait_pid(struct diyc_child *child, struct diyc_error *err);
int diyc_wait_console(struct diyc_child *child, struct diyc_error *err);
int diyc_wait_exec(struct diyc_child *child, struct diyc_error *err);
/* wait for message `want` (an ERROR fails with its step); close the channel */
int diyc_child_wait(struct diyc_child *child, int want, struct diyc_error *err);
void diyc_child_close(struct diyc_child *child);

/* pooled.c */
int diyc_wait_held(struct diyc_child *child, struct diyc_error *err);
int diyc_send_process(struct diyc_child *child, const int *fds, int n, struct diyc_error *err);

/* error.c: async-signal-safe helpers usable in the child */
int diyc_fail(struct diyc_error *err, const char *step, int errnum, const char *detail);
size_t diyc_strlcpy(char *dst, const char *src, size_t size);
int diyc_path_join(char *dst, size_t size, const char *root, const char *path);

/* mounts.c: the filesystem steps of container init */
int make_root_private(const struct diyc_init *init, struct diyc_error *err);
int set_rootfs_propagation(const struct diyc_init *init, struct diyc_error *err);
int mount_rootfs(const struct diyc_init *init, struct diyc_error *err);
int mount_all(const struct diyc_init *init, struct diyc_error *err);
int create_devices(const struct diyc_init *init, struct diyc_error *err);
int pivot_into_rootfs(const char *rootfs, struct diyc_error *err);
int attach_idmapped_layers(const struct diyc_init *init, struct diyc_error *err);
int diyc_idmapped_tree(const char *path, int userns_fd);
int mask_paths(const struct diyc_init *init, struct diyc_error *err);
int remount_root_readonly(const struct diyc_init *init, struct diyc_error *err);

/* caps.c: the privilege steps of container init */
int drop_bounding_caps(const struct diyc_init *init, struct diyc_error *err);
uint64_t seccomp_extra_caps(const struct diyc_init *init);
int set_caps(const struct diyc_init *init, uint64_t extra, struct diyc_error *err);
int set_no_new_privs(const struct diyc_init *init, struct diyc_error *err);
int set_rlimits(const struct diyc_init *init, struct diyc_error *err);

/* hooks.c */
void remember_host_pid(void);
int run_hooks(const struct diyc_init *init, const struct diyc_hook *hooks, int n,
	      const char *kind, const char *status, struct diyc_error *err);

/* devices.c */
int diyc_device_filter(const struct diyc_device_rule *rules, int n_rules, int cgroup_fd,
		       struct diyc_error *err);

/* seccomp.c */
int diyc_seccomp_compile(unsigned int default_action, const struct diyc_seccomp_rule *rules,
			 int n_rules, struct sock_filter *out, int max, struct diyc_error *err);
int install_seccomp(const struct diyc_init *init, struct diyc_error *err);

/* process.c: the process steps of container init */
int join_cgroup(const struct diyc_init *init, struct diyc_error *err);
int enter_user_namespace(const struct diyc_init *init, struct diyc_error *err);
int write_proc_settings(const struct diyc_init *init, struct diyc_error *err);
int set_oom_score_adj(const struct diyc_init *init, struct diyc_error *err);
int set_hostname(const struct diyc_init *init, struct diyc_error *err);
int bring_loopback_up(struct diyc_error *err);
int setup_stdio(const struct diyc_init *init, struct diyc_error *err);
int setup_console(const struct diyc_init *init, struct diyc_error *err);
int set_identity(const struct diyc_init *init, struct diyc_error *err);
int close_inherited_fds(const struct diyc_init *init, struct diyc_error *err);
int close_unneeded_fds(const struct diyc_init *init, struct diyc_error *err);
int receive_process(const struct diyc_init *init, struct diyc_error *err);
int load_held_state(struct diyc_init *init, int fd, struct diyc_error *err);
int shares_our_memory(const struct diyc_init *init);
/* process.c: the memory we share not dumpable while an exec's process shares it */
void undumpable_enter(void);
void undumpable_leave(void);
int make_workdir(const struct diyc_init *init, struct diyc_error *err);
int enter_workdir(const struct diyc_init *init, struct diyc_error *err);
int find_command(const struct diyc_init *init, char *out, size_t size, struct diyc_error *err);
int exec_command(const struct diyc_init *init, const char *path, struct diyc_error *err);

#endif
