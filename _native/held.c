/*
 * diyc-held: what a pool's container init becomes while it waits for its
 * process (pooled.c, become_held): the same end of the start as spawn.c's,
 * in a small static program rather than a copy of the embedding process,
 * so that the execve that ends it tears down next to nothing.
 *
 *   diyc-held FD     FD: a memfd holding a struct diyc_held_state
 *
 * Run by nothing else: its argv[0] is the init's name (DIYC_INIT_COMM).
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "diyc.h"

int main(int argc, char **argv)
{
	struct diyc_init init;
	struct diyc_error err;
	int fd = 0;

	/* not dumpable until the program's execve, as in spawn.c's start_clean */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	prctl(PR_SET_NAME, DIYC_INIT_COMM, 0, 0, 0);
	memset(&init, 0, sizeof(init));
	memset(&err, 0, sizeof(err));
	if (argc != 2)
		return 125;
	for (const char *p = argv[1]; *p >= '0' && *p <= '9'; p++)
		fd = fd * 10 + (*p - '0');
	init.channel = -1;
	if (load_held_state(&init, fd, &err) == 0) {
		close(fd);
		finish_and_exec(&init, &err);
	}
	if (init.channel < 0)
		return 125;
	exit_reported(&init, &err);
}
