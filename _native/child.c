/*
 * The parent's half of a started init (diyc_spawn's struct diyc_child):
 * the messages it sends (RELEASE, ID_MAPS_DONE) and the ones it waits for
 * on the channel (PID, CONSOLE, EXEC_NEXT, ERROR, and EOF once the init
 * has exec'd).  The child's half is in spawn.c, the wire format in
 * channel.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "diyc.h"

/* A message to the child; EPIPE is no error: the child died first, and
 * its reason is waiting on the channel. */
static int send_to_child(struct diyc_child *child, int type, const int *fds, int n,
			 const char *step, struct diyc_error *err)
{
	if (child->channel < 0)
		return diyc_fail(err, step, EBADF, NULL);
	if (diyc_msg_send(child->channel, type, 0, NULL, 0, fds, n) < 0 &&
	    errno != EPIPE && errno != ECONNRESET)
		return diyc_fail(err, step, errno, NULL);
	return 0;
}

int diyc_release(struct diyc_child *child, struct diyc_error *err)
{
	return send_to_child(child, DIYC_MSG_RELEASE, NULL, 0, "release", err);
}

int diyc_id_maps_done(struct diyc_child *child, const int *layer_fds, int n, struct diyc_error *err)
{
	return send_to_child(child, DIYC_MSG_ID_MAPS_DONE, layer_fds, n, "id_maps_done", err);
}

void diyc_child_close(struct diyc_child *child)
{
	close(child->channel);
	child->channel = -1;
}

/*
 * Read the child's messages until one of `want` (PID or CONSOLE) is there.
 * exec's two processes race - its first sends PID, its second CONSOLE or
 * ERROR - so whatever comes first is kept for its turn; an ERROR is
 * returned once the PID has come (the caller must reap that process) or
 * at EOF.  -1 with err filled: a failure.
 */
int diyc_child_wait(struct diyc_child *child, int want, struct diyc_error *err)
{
	struct diyc_msg m;
	int r;

	for (;;) {
		if (want == DIYC_MSG_PID && child->exec_pid > 0)
			return 0;
		if (want == DIYC_MSG_CONSOLE && child->console >= 0)
			return 0;
		if (want == DIYC_MSG_CONSOLE && child->failed)
			break;
		r = diyc_msg_recv(child->channel, &m);
		if (r < 0)
			return diyc_fail(err, "wait_child", errno, NULL);
		if (r == 0)
			break;
		if (m.h.type == DIYC_MSG_PID && m.h.len == sizeof(pid_t)) {
			memcpy(&child->exec_pid, m.payload, sizeof(pid_t));
		} else if (m.h.type == DIYC_MSG_CONSOLE && m.n_fds == 1 && child->console < 0) {
			child->console = m.fds[0];
			continue;
		} else if (m.h.type == DIYC_MSG_ERROR && !child->failed) {
			diyc_msg_error(&m, &child->failure);
			child->failed = 1;
		} else {
			diyc_msg_close_fds(&m);
			return diyc_fail(err, "wait_child", EPROTO, NULL);
		}
	}
	if (child->failed) {
		*err = child->failure;
		return -1;
	}
	return diyc_fail(err, DIYC_INIT_DIED, 0, NULL);
}

/* exec: the pid of the process that runs the command (join_and_clone). */
pid_t diyc_wait_pid(struct diyc_child *child, struct diyc_error *err)
{
	if (diyc_child_wait(child, DIYC_MSG_PID, err) < 0)
		return -1;
	return child->exec_pid;
}

/* A terminal for the parent: the pty master (now the caller's). */
int diyc_wait_console(struct diyc_child *child, struct diyc_error *err)
{
	int fd;

	if (diyc_child_wait(child, DIYC_MSG_CONSOLE, err) < 0)
		return -1;
	fd = child->console;
	child->console = -1;
	return fd;
}

/*
 * The child's reports until the end of the channel: 0 when it reached its
 * program (EXEC_NEXT, then EOF at execve), 1 when it holds before execve
 * (READY), -1 when it failed (ERROR) or died (EOF without EXEC_NEXT:
 * DIYC_INIT_DIED).  The channel is closed in every case.
 */
int diyc_wait_exec(struct diyc_child *child, struct diyc_error *err)
{
	struct diyc_msg m;
	int exec_next = 0, r;

	if (child->channel < 0)
		return diyc_fail(err, "wait_exec", EBADF, NULL);
	for (;;) {
		if (child->failed) {
			diyc_child_close(child);
			*err = child->failure;
			return -1;
		}
		r = diyc_msg_recv(child->channel, &m);
		if (r <= 0)
			break;
		diyc_msg_close_fds(&m);
		if (m.h.type == DIYC_MSG_EXEC_NEXT) {
			exec_next = 1;
		} else if (m.h.type == DIYC_MSG_READY) {
			diyc_child_close(child);
			return 1;
		} else if (m.h.type == DIYC_MSG_ERROR) {
			diyc_msg_error(&m, &child->failure);
			child->failed = 1;
		}
	}
	r = r < 0 ? errno : 0;
	diyc_child_close(child);
	/* ECONNRESET: it died with our message unread - before its release */
	if (r && r != ECONNRESET)
		return diyc_fail(err, "wait_exec", r, NULL);
	if (exec_next)
		return 0;
	return diyc_fail(err, DIYC_INIT_DIED, r, NULL);
}
