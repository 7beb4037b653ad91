/*
 * Capabilities and no_new_privs: the privilege steps of container init.
 *
 * Order matters.  The bounding set is reduced while we still hold
 * CAP_SETPCAP; PR_SET_KEEPCAPS keeps the permitted set across setuid() so
 * the sets asked for apply whatever the uid; capset() then sets exactly
 * effective/permitted/inheritable, and the ambient set is rebuilt last.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "diyc.h"

static int has(uint64_t set, int cap)
{
	return (set >> cap) & 1;
}

int drop_bounding_caps(const struct diyc_init *init, struct diyc_error *err)
{
	if (!init->set_caps || init->bounding_dropped)
		return 0;
	for (int cap = 0; cap <= init->last_cap; cap++) {
		if (has(init->cap_bounding, cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return diyc_fail(err, "drop_bounding_caps", errno, NULL);
	}
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return diyc_fail(err, "keepcaps", errno, NULL);
	return 0;
}

static int capset_sets(uint64_t effective, uint64_t permitted, uint64_t inheritable)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];

	for (int i = 0; i < 2; i++) {
		data[i].effective = (uint32_t)(effective >> (32 * i));
		data[i].permitted = (uint32_t)(permitted >> (32 * i));
		data[i].inheritable = (uint32_t)(inheritable >> (32 * i));
	}
	return (int)syscall(SYS_capset, &hdr, data);
}

/*
 * The capability seccomp needs without no_new_privs, when the sets asked
 * for lack it: it stays effective and permitted until execve, which drops
 * it.  The kernel computes the program's sets from the inheritable,
 * ambient and bounding sets (and the file's), never from the permitted and
 * effective sets before execve, and the ambient set never gets it (it is
 * not inheritable).  So the filter goes on last, with nothing of ours after.
 */
uint64_t seccomp_extra_caps(const struct diyc_init *init)
{
	uint64_t admin = 1ULL << CAP_SYS_ADMIN;

	if (!init->set_caps || !init->seccomp_len || init->no_new_privs)
		return 0;
	return (init->cap_effective & init->cap_permitted & admin) ? 0 : admin;
}

/* `extra` is effective and permitted on top of the sets asked for. */
int set_caps(const struct diyc_init *init, uint64_t extra, struct diyc_error *err)
{
	if (!init->set_caps)
		return 0;
	if (capset_sets(init->cap_effective | extra, init->cap_permitted | extra,
			init->cap_inheritable) < 0)
		return diyc_fail(err, "capset", errno, NULL);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return diyc_fail(err, "ambient_caps", errno, NULL);
	for (int cap = 0; cap <= init->last_cap; cap++) {
		if (has(init->cap_ambient, cap) &&
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
			return diyc_fail(err, "ambient_caps", errno, NULL);
	}
	return 0;
}

int set_no_new_privs(const struct diyc_init *init, struct diyc_error *err)
{
	if (init->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return diyc_fail(err, "no_new_privs", errno, NULL);
	return 0;
}

int set_rlimits(const struct diyc_init *init, struct diyc_error *err)
{
	for (int i = 0; i < init->n_rlimits; i++) {
		struct rlimit rl = { init->rlimits[i].soft, init->rlimits[i].hard };

		if (setrlimit(init->rlimits[i].resource, &rl) < 0)
			return diyc_fail(err, "setrlimit", errno, NULL);
	}
	return 0;
}
