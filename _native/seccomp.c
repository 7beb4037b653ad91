/*
 * seccomp: compile a profile (the rules of an OCI / docker seccomp profile,
 * already resolved by Python to syscall numbers and SECCOMP_RET_* actions)
 * into a classic BPF program, and install it in the container's init.
 *
 * Compiling happens in the parent (no allocation: the caller's buffer);
 * the child only installs the result, as the last step before the
 * capability drop.  No libseccomp.
 *
 *   ld arch;  not x86_64           -> ERRNO(EPERM)  (i386 numbers would bypass the rules)
 *   ld nr;    x32 bit set          -> ERRNO(EPERM)
 *   jeq nr_0 ? +0 : +1; ja group_0     two instructions per distinct syscall
 *   ...
 *   ret default
 *   group_i:  rule: argument checks, each failing to the next rule; ret action
 *             ...; ret default
 *
 * Only the groups look at arguments, so the kernel's seccomp action cache
 * can tell that calls without conditions always get the same verdict and
 * skip the filter for them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "diyc.h"

#define ARG_LO(n) ((unsigned int)(offsetof(struct seccomp_data, args) + 8 * (n)))
#define ARG_HI(n) (ARG_LO(n) + 4)

struct program {
	struct sock_filter *insns;
	int n, max;
};

static int emit(struct program *p, unsigned short code, unsigned int k, unsigned char jt, unsigned char jf)
{
	if (p->n < p->max)
		p->insns[p->n] = (struct sock_filter)BPF_JUMP(code, k, jt, jf);
	return p->n++;  /* counted even when full, so the caller can tell */
}

/* Point the jump at `from` (its jt or jf) to `to`. */
static int patch(struct program *p, int from, int to, int true_branch)
{
	int distance = to - from - 1;

	if (from >= p->max)
		return 0;
	if (distance < 0 || distance > 255)
		return -1;
	if (true_branch)
		p->insns[from].jt = distance;
	else
		p->insns[from].jf = distance;
	return 0;
}

/*
 * One condition on a 64-bit argument (two 32-bit words on x86_64, low word
 * first).  Jumps that mean "the condition is false" are recorded in
 * fails[] (with which branch), to be pointed at the next rule.
 */
struct fail { int at, true_branch; };

static int emit_condition(struct program *p, const struct diyc_seccomp_cond *c,
			  struct fail *fails, int nfail)
{
	unsigned int hi = c->value >> 32, lo = (unsigned int)c->value;
	int j, k;

	switch (c->op) {
	case DIYC_CMP_EQ:
		emit(p, BPF_LD | BPF_W | BPF_ABS, ARG_HI(c->arg), 0, 0);
		fails[nfail++] = (struct fail){ emit(p, BPF_JMP | BPF_JEQ | BPF_K, hi, 0, 0), 0 };
		emit(p, BPF_LD | BPF_W | BPF_ABS, ARG_LO(c->arg), 0, 0);
		fails[nfail++] = (struct fail){ emit(p, BPF_JMP | BPF_JEQ | BPF_K, lo, 0, 0), 0 };
		break;
	case DIYC_CMP_NE:
		emit(p, BPF_LD | BPF_W | BPF_ABS, ARG_HI(c->arg), 0, 0);
		emit(p, BPF_JMP | BPF_JEQ | BPF_K, hi, 0, 2);   /* differs: true, skip the low word */
		emit(p, BPF_LD | BPF_W | BPF_ABS, ARG_LO(c->arg), 0, 0);
		fails[nfail++] = (struct fail){ emit(p, BPF_JMP | BPF_JEQ | BPF_K, lo, 0, 0), 1 };
		break;
	case DIYC_CMP_MASKED_EQ: {
		unsigned int mhi = c->value >> 32, mlo = (unsigned int)c->value;
		unsigned int dhi = c->value_two >> 32, dlo = (unsigned int)c->value_two;

		emit(p, BPF_LD | BPF_W | BPF_ABS, ARG_HI(c->arg), 0, 0);
		emit(p, BPF_ALU | BPF_AND | BPF_K, mhi, 0, 0);
		fails[nfail++] = (struct fail){ emit(p, BPF_JMP | BPF_JEQ | BPF_K, dhi, 0, 0), 0 };
		emit(p, BPF_LD | BPF_W | BPF_ABS, ARG_LO(c->arg), 0, 0);
		emit(p, BPF_ALU | BPF_AND | BPF_K, mlo, 0, 0);
		fails[nfail++] = (struct fail){ emit(p, BPF_JMP | BPF_JEQ | BPF_K, dlo, 0, 0), 0 };
		break;
	}
	case DIYC_CMP_GT: case DIYC_CMP_GE: case DIYC_CMP_LT: case DIYC_CMP_LE: {
		int greater = c->op == DIYC_CMP_GT || c->op == DIYC_CMP_GE;

		/* high words decide unless equal */
		emit(p, BPF_LD | BPF_W | BPF_ABS, ARG_HI(c->arg), 0, 0);
		j = emit(p, BPF_JMP | BPF_JGT | BPF_K, hi, 0, 0);
		k = emit(p, BPF_JMP | BPF_JEQ | BPF_K, hi, 0, 0);
		/* hi > value's hi: true for >, >=; false for <, <= */
		if (greater) {
			patch(p, j, k + 3, 1);          /* past the low-word test */
			fails[nfail++] = (struct fail){ k, 0 };
		} else {
			fails[nfail++] = (struct fail){ j, 1 };
			patch(p, k, k + 3, 0);          /* hi < value's hi: true */
		}
		emit(p, BPF_LD | BPF_W | BPF_ABS, ARG_LO(c->arg), 0, 0);
		if (c->op == DIYC_CMP_GT)
			fails[nfail++] = (struct fail){ emit(p, BPF_JMP | BPF_JGT | BPF_K, lo, 0, 0), 0 };
		else if (c->op == DIYC_CMP_GE)
			fails[nfail++] = (struct fail){ emit(p, BPF_JMP | BPF_JGE | BPF_K, lo, 0, 0), 0 };
		else if (c->op == DIYC_CMP_LT)
			fails[nfail++] = (struct fail){ emit(p, BPF_JMP | BPF_JGE | BPF_K, lo, 0, 0), 1 };
		else
			fails[nfail++] = (struct fail){ emit(p, BPF_JMP | BPF_JGT | BPF_K, lo, 0, 0), 1 };
		break;
	}
	default:
		return -1;
	}
	return nfail;
}

int diyc_seccomp_compile(unsigned int default_action, const struct diyc_seccomp_rule *rules,
			 int n_rules, struct sock_filter *out, int max, struct diyc_error *err)
{
	struct program p = { out, 0, max };
	int i, groups = 0;

	for (i = 0; i < n_rules; i++)
		if (i == 0 || rules[i].nr != rules[i - 1].nr)
			groups++;

	emit(&p, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch), 0, 0);
	emit(&p, BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
	emit(&p, BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM, 0, 0);
	emit(&p, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), 0, 0);
	emit(&p, BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1);
	emit(&p, BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM, 0, 0);

	/* the dispatch table, its `ja` targets filled in as the groups are laid out */
	int dispatch = p.n;
	for (i = 0; i < groups; i++) {
		emit(&p, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1);
		emit(&p, BPF_JMP | BPF_JA, 0, 0, 0);
	}
	emit(&p, BPF_RET | BPF_K, default_action, 0, 0);

	int group = -1;
	for (i = 0; i < n_rules; i++) {
		const struct diyc_seccomp_rule *r = &rules[i];
		struct fail fails[2 * DIYC_SECCOMP_MAX_CONDS];
		int nfail = 0;

		if (i == 0 || r->nr != rules[i - 1].nr) {
			group++;
			if (dispatch + 2 * group + 1 < p.max) {
				p.insns[dispatch + 2 * group].k = r->nr;
				p.insns[dispatch + 2 * group + 1].k = p.n - (dispatch + 2 * group + 2);
			}
		}
		if (r->n_conds > DIYC_SECCOMP_MAX_CONDS)
			return diyc_fail(err, "seccomp", E2BIG, "too many argument conditions");
		for (int c = 0; c < r->n_conds; c++) {
			nfail = emit_condition(&p, &r->conds[c], fails, nfail);
			if (nfail < 0)
				return diyc_fail(err, "seccomp", EINVAL, "unknown comparison");
		}
		emit(&p, BPF_RET | BPF_K, r->action, 0, 0);
		for (int f = 0; f < nfail; f++)
			if (patch(&p, fails[f].at, p.n, fails[f].true_branch) < 0)
				return diyc_fail(err, "seccomp", E2BIG, "rule too long");
		/* the last rule of a group: no match falls to the default */
		if (i + 1 == n_rules || rules[i + 1].nr != r->nr)
			emit(&p, BPF_RET | BPF_K, default_action, 0, 0);
	}
	if (p.n > p.max || p.n > BPF_MAXINSNS)
		return diyc_fail(err, "seccomp", E2BIG, "filter too long");
	return p.n;
}

int install_seccomp(const struct diyc_init *init, struct diyc_error *err)
{
	struct sock_fprog prog;

	if (!init->seccomp_len)
		return 0;
	prog.len = (unsigned short)init->seccomp_len;
	prog.filter = (struct sock_filter *)init->seccomp_filter;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		return diyc_fail(err, "seccomp", errno, NULL);
	return 0;
}
