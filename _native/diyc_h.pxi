# The declarations of diyc.h that _native.pyx uses (included there).

cdef extern from "diyc.h":
    const char *DIYC_INIT_DIED
    const char *DIYC_INIT_COMM
    struct diyc_error:
        char step[32]
        int errnum
        char detail[224]
    struct diyc_mount:
        const char *source
        const char *target
        const char *fstype
        const char *data
        unsigned long flags
        unsigned long propagation
        int is_file
    struct diyc_device:
        const char *path
        mode_t mode
        dev_t rdev
    struct diyc_symlink:
        const char *target
        const char *linkpath
    struct diyc_init:
        int clone_flags
        int new_cgroupns
        const int *cgroup_fds
        int n_cgroup_fds
        int loopback_up
        const char *rootfs
        const char *overlay_options
        const char *scratch
        const char *scratch_options
        int readonly_root
        unsigned long rootfs_propagation
        diyc_mount *mounts
        int n_mounts
        diyc_device *devices
        int n_devices
        diyc_symlink *symlinks
        int n_symlinks
        const char **masked_paths
        int n_masked
        const char **readonly_paths
        int n_readonly
        const char *hostname
        const char *domainname
        char *const *argv
        char *const *envp
        const char *cwd
        mode_t umask
        uid_t uid
        gid_t gid
        const gid_t *groups
        int n_groups
        int stdio[3]
        int preserve_fds
        int set_caps
        int last_cap
        unsigned long long cap_bounding, cap_effective, cap_permitted, cap_inheritable, cap_ambient
        int no_new_privs
        const void *seccomp_filter
        int seccomp_len
        int seccomp_early
        diyc_rlimit *rlimits
        int n_rlimits
        const char *oom_score_adj
        const char **sysctl_paths
        const char **sysctl_values
        int n_sysctls
        char *const *supervisor_argv
        const int *join_ns_fds
        int n_join_ns
        int join_mnt_fd
        int start_fifo_fd
        int report_fifo_fd
        diyc_hook *create_hooks
        int n_create_hooks
        diyc_hook *start_hooks
        int n_start_hooks
        const char *hook_state[3]
        int userns
        int n_layers
        int *layer_fds
        const char **reopen_paths
        const int *reopen_fds
        int n_reopen
        int console_fd
        int console_to_parent
        int console_recv_fd
        int process_on_release
        int held_exe_fd
    struct diyc_hook:
        const char *path
        char *const *argv
        char *const *envp
        int timeout
    struct diyc_rlimit:
        int resource
        unsigned long long soft, hard
    struct diyc_seccomp_cond:
        int arg
        int op
        unsigned long long value, value_two
    struct diyc_seccomp_rule:
        int nr
        unsigned int action
        int n_conds
        diyc_seccomp_cond conds[6]
    int DIYC_SECCOMP_MAX_CONDS
    struct sock_filter:
        pass
    struct diyc_device_rule:
        int allow
        int type
        long major, minor
        int access
    int diyc_device_filter(const diyc_device_rule *rules, int n_rules, int cgroup_fd,
                           diyc_error *err)
    int diyc_seccomp_compile(unsigned int default_action, const diyc_seccomp_rule *rules,
                             int n_rules, sock_filter *out, int max, diyc_error *err)
    struct diyc_child:
        pid_t pid
        pid_t supervisor
        int channel
        int console
    int diyc_spawn(diyc_init *init, diyc_child *child, diyc_error *err) nogil
    int diyc_idmapped_tree(const char *path, int userns_fd)
    int diyc_release(diyc_child *child, diyc_error *err) nogil
    int diyc_id_maps_done(diyc_child *child, const int *layer_fds, int n, diyc_error *err)
    pid_t diyc_wait_pid(diyc_child *child, diyc_error *err) nogil
    int diyc_wait_console(diyc_child *child, diyc_error *err) nogil
    int diyc_wait_exec(diyc_child *child, diyc_error *err) nogil
    int diyc_wait_held(diyc_child *child, diyc_error *err) nogil
    int diyc_send_process(diyc_child *child, const int *fds, int n, diyc_error *err)
    int DIYC_MSG_START
    int diyc_msg_send(int fd, int type, int errnum, const void *payload, size_t len,
                      const int *fds, int n_fds)
