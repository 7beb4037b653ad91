/*
 * The default seccomp filter: docker's default profile in effect, as a
 * deny list.  Everything is allowed except the calls that reach kernel
 * state shared with the host (keys, modules, kexec, clock, swap, accounting,
 * bpf, perf, io_uring, handles), and - unless the container holds
 * CAP_SYS_ADMIN - mounts and new namespaces.  Denied calls fail with EPERM
 * (clone3 with ENOSYS, so libc falls back to clone, whose flags we can see).
 *
 * The BPF program is built here, in the child, into a stack buffer: no
 * allocation, no dependency on libseccomp.  Argument checks look at the low
 * 32 bits, where clone/unshare flags and personality values live.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "diyc.h"

#define NS_CLONE_FLAGS (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | \
			CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP)
#define MAX_INSNS 512
#define ARG_LO(n) (offsetof(struct seccomp_data, args) + 8 * (n))

/* A rule denies `nr`.  With n_values, it looks at (arg & mask): allow_listed
 * rules deny unless it is one of the values, others deny only if it is. */
struct rule {
	int nr;
	int err;
	int arg;
	unsigned int mask;
	int allow_listed;
	int n_values;
	unsigned int values[6];
};

static const int always_denied[] = {
	SYS_keyctl, SYS_add_key, SYS_request_key,
	SYS_kexec_load, SYS_kexec_file_load,
	SYS_init_module, SYS_finit_module, SYS_delete_module,
	SYS_open_by_handle_at, SYS_acct, SYS_iopl, SYS_ioperm, SYS_lookup_dcookie,
	SYS_quotactl, SYS_swapon, SYS_swapoff, SYS_reboot,
	SYS_settimeofday, SYS_clock_settime, SYS_syslog, SYS_uselib, SYS_userfaultfd,
	SYS_vhangup, SYS__sysctl, SYS_bpf, SYS_perf_event_open,
	SYS_io_uring_setup, SYS_io_uring_enter, SYS_io_uring_register,
	SYS_kcmp, SYS_process_vm_readv, SYS_process_vm_writev,
};

/* Calls docker allows only to a container with CAP_SYS_ADMIN. */
static const int admin_only[] = {
	SYS_mount, SYS_umount2, SYS_pivot_root, SYS_setns, SYS_unshare,
	SYS_move_mount, SYS_open_tree, SYS_fsopen, SYS_fsconfig, SYS_fsmount, SYS_fspick,
	SYS_mount_setattr, SYS_fanotify_init, SYS_name_to_handle_at,
};

struct program {
	struct sock_filter insns[MAX_INSNS];
	int n;
};

static void emit(struct program *p, unsigned short code, unsigned int k, unsigned char jt, unsigned char jf)
{
	if (p->n < MAX_INSNS)
		p->insns[p->n] = (struct sock_filter)BPF_JUMP(code, k, jt, jf);
	p->n++;  /* counted even when full, so the caller can tell */
}

/* The verdict of one rule, placed after the dispatch table. */
static void emit_block(struct program *p, const struct rule *r)
{
	unsigned int deny = SECCOMP_RET_ERRNO | (r->err & SECCOMP_RET_DATA);
	int n = r->n_values;

	if (!n) {
		emit(p, BPF_RET | BPF_K, deny, 0, 0);
		return;
	}
	emit(p, BPF_LD | BPF_W | BPF_ABS, ARG_LO(r->arg), 0, 0);
	emit(p, BPF_ALU | BPF_AND | BPF_K, r->mask, 0, 0);
	for (int i = 0; i < n; i++)
		emit(p, BPF_JMP | BPF_JEQ | BPF_K, r->values[i], n - i, 0);
	/* not in the set */
	emit(p, BPF_RET | BPF_K, r->allow_listed ? deny : SECCOMP_RET_ALLOW, 0, 0);
	/* in the set */
	emit(p, BPF_RET | BPF_K, r->allow_listed ? SECCOMP_RET_ALLOW : deny, 0, 0);
}

static int block_size(const struct rule *r)
{
	return r->n_values ? r->n_values + 4 : 1;
}

static int collect_rules(struct rule *rules, int sys_admin)
{
	int n = 0;

	for (size_t i = 0; i < sizeof(always_denied) / sizeof(always_denied[0]); i++)
		rules[n++] = (struct rule){ .nr = always_denied[i], .err = EPERM };
	if (!sys_admin) {
		for (size_t i = 0; i < sizeof(admin_only) / sizeof(admin_only[0]); i++)
			rules[n++] = (struct rule){ .nr = admin_only[i], .err = EPERM };
		/* clone: fine for threads and processes, not for new namespaces */
		rules[n++] = (struct rule){ .nr = SYS_clone, .err = EPERM, .arg = 0,
					    .mask = NS_CLONE_FLAGS, .allow_listed = 1,
					    .n_values = 1, .values = { 0 } };
		/* clone3 hides its flags behind a pointer: ENOSYS makes libc use clone */
		rules[n++] = (struct rule){ .nr = SYS_clone3, .err = ENOSYS };
	}
	/* personality: only the values docker allows (Linux, +UNAME26,
	 * +ADDR_NO_RANDOMIZE, and the query) */
	rules[n++] = (struct rule){ .nr = SYS_personality, .err = EPERM, .arg = 0, .mask = 0xffffffff,
				    .allow_listed = 1, .n_values = 5,
				    .values = { 0x0, 0x8, 0x20000, 0x20008, 0xffffffff } };
	return n;
}

/*
 *   ld arch; not x86_64 -> EPERM          (i386/x32 numbers would bypass the rules)
 *   ld nr;   x32 bit set -> EPERM
 *   jeq nr_0 -> block_0 ... jeq nr_N -> block_N      one compare per rule
 *   ret ALLOW
 *   block_i: ret ERRNO, or an argument check ending in ALLOW/ERRNO
 *
 * Only the blocks look at arguments, so the kernel's seccomp action cache
 * can see that every other call is always allowed and skip the filter.
 */
static int build_default_filter(struct program *p, int sys_admin)
{
	struct rule rules[80];
	int n = collect_rules(rules, sys_admin);
	int header = 6, block_at = header + n + 1;

	p->n = 0;
	emit(p, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch), 0, 0);
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
	emit(p, BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM, 0, 0);
	emit(p, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), 0, 0);
	emit(p, BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1);
	emit(p, BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM, 0, 0);
	for (int i = 0; i < n; i++) {
		int jump = block_at - (header + i + 1);

		if (jump > 255)
			return -1;
		emit(p, BPF_JMP | BPF_JEQ | BPF_K, rules[i].nr, jump, 0);
		block_at += block_size(&rules[i]);
	}
	emit(p, BPF_RET | BPF_K, SECCOMP_RET_ALLOW, 0, 0);
	for (int i = 0; i < n; i++)
		emit_block(p, &rules[i]);
	return 0;
}

int install_seccomp(const struct diyc_init *init, struct diyc_error *err)
{
	struct program prog;
	struct sock_fprog fprog;

	if (init->seccomp == DIYC_SECCOMP_UNCONFINED)
		return 0;
	if (build_default_filter(&prog, has_cap(init, 21 /* CAP_SYS_ADMIN */)) < 0 ||
	    prog.n > MAX_INSNS)
		return diyc_fail(err, "seccomp", E2BIG, "filter too long");
	fprog.len = (unsigned short)prog.n;
	fprog.filter = prog.insns;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0)
		return diyc_fail(err, "seccomp", errno, NULL);
	return 0;
}
