/*
 * The devices cgroup of cgroup v2: an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE)
 * attached to the container's cgroup, deciding each open or mknod of a
 * device node.  v1 has devices.allow/deny files; v2 has only this.
 *
 * The program follows the OCI rules in order, the last matching rule
 * deciding (so it tests them last to first and returns at the first match);
 * no match denies.  A rule matches when the device type, major and minor
 * agree (or are wildcards) and the requested access is within the rule's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "diyc.h"

#define MAX_INSNS 4096

struct prog {
	struct bpf_insn insns[MAX_INSNS];
	int n;
};

static void insn(struct prog *p, __u8 code, __u8 dst, __u8 src, __s16 off, __s32 imm)
{
	if (p->n < MAX_INSNS)
		p->insns[p->n] = (struct bpf_insn){ .code = code, .dst_reg = dst, .src_reg = src,
						    .off = off, .imm = imm };
	p->n++;
}

/*
 * One rule, registers r2 type, r3 access, r4 major, r5 minor, r6 scratch:
 *
 *     if type  != rule's: skip      (no such tests for type 'a')
 *     if major != rule's: skip      (none for a wildcard major)
 *     if minor != rule's: skip      (none for a wildcard minor)
 *     if access & ~rule's access: skip
 *     return allow ? 1 : 0
 *   skip:
 */
static void emit_rule(struct prog *p, const struct diyc_device_rule *r)
{
	int tests[3], k = 0;

	if (r->type != 'a') {
		tests[k++] = r->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR;
		if (r->major >= 0)
			tests[k++] = (int)r->major;
		if (r->minor >= 0)
			tests[k++] = (int)r->minor;
	}
	static const __u8 regs[3] = { BPF_REG_2, BPF_REG_4, BPF_REG_5 };
	for (int j = 0, reg = 0; j < k; j++, reg++) {
		if (j == 1 && r->major < 0)
			reg++;  /* a wildcard major: the next test is the minor's */
		insn(p, BPF_JMP | BPF_JNE | BPF_K, regs[reg], 0, k + 4 - j, tests[j]);
	}
	insn(p, BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_3, 0, 0);
	insn(p, BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_6, 0, 0, ~r->access & 0xffff);
	insn(p, BPF_JMP | BPF_JNE | BPF_K, BPF_REG_6, 0, 2, 0);
	insn(p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, r->allow ? 1 : 0);
	insn(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
}

int diyc_device_filter(const struct diyc_device_rule *rules, int n_rules, int cgroup_fd,
		       struct diyc_error *err)
{
	static struct prog p;
	union bpf_attr attr;
	char log[1024] = "";
	int prog_fd;

	p.n = 0;
	/* r1 = ctx: { u32 access_type (access << 16 | type), u32 major, u32 minor } */
	insn(&p, BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1, 0, 0);
	insn(&p, BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xffff);
	insn(&p, BPF_LDX | BPF_MEM | BPF_W, BPF_REG_3, BPF_REG_1, 0, 0);
	insn(&p, BPF_ALU64 | BPF_RSH | BPF_K, BPF_REG_3, 0, 0, 16);
	insn(&p, BPF_LDX | BPF_MEM | BPF_W, BPF_REG_4, BPF_REG_1, 4, 0);
	insn(&p, BPF_LDX | BPF_MEM | BPF_W, BPF_REG_5, BPF_REG_1, 8, 0);
	for (int i = n_rules - 1; i >= 0; i--)
		emit_rule(&p, &rules[i]);
	insn(&p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0);
	insn(&p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	if (p.n > MAX_INSNS)
		return diyc_fail(err, "device_filter", E2BIG, "too many device rules");

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	attr.insns = (__u64)(unsigned long)p.insns;
	attr.insn_cnt = p.n;
	attr.license = (__u64)(unsigned long)"GPL";
	prog_fd = syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
	if (prog_fd < 0) {
		/* again, with the verifier's log (the end of it) for the error */
		int e = errno;
		attr.log_buf = (__u64)(unsigned long)log;
		attr.log_size = sizeof(log);
		attr.log_level = 1;
		if (syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr)) >= 0)
			log[0] = '\0';
		return diyc_fail(err, "device_filter_load", e, log);
	}

	memset(&attr, 0, sizeof(attr));
	attr.target_fd = cgroup_fd;
	attr.attach_bpf_fd = prog_fd;
	attr.attach_type = BPF_CGROUP_DEVICE;
	attr.attach_flags = BPF_F_ALLOW_MULTI;
	if (syscall(SYS_bpf, BPF_PROG_ATTACH, &attr, sizeof(attr)) < 0) {
		int e = errno;
		close(prog_fd);
		return diyc_fail(err, "device_filter_attach", e, NULL);
	}
	close(prog_fd);  /* the cgroup holds the program now */
	return 0;
}
