/*
 * The channel between the parent and the container's init: one socketpair
 * (as crun has), typed messages both ways instead of bytes that mean
 * something by their position.
 *
 *   parent -> child   ID_MAPS_DONE (+ the idmapped layers' fds), RELEASE
 *   child -> parent   PID (exec's process; a supervisor's init), CONSOLE
 *                     (+ the pty master's fd), READY (held), EXEC_NEXT, ERROR
 *   `start` -> child  START, on the start FIFO (another process may start it)
 *   child -> `start`  EXEC_NEXT, ERROR, on the report FIFO
 *
 * A message is a fixed header {type, payload length, errno} and its
 * payload: "step\0detail" for ERROR, a pid_t for PID.  Fds travel with
 * the header (SCM_RIGHTS).  One sendmsg()/write() per message, well under
 * PIPE_BUF, so the FIFOs never interleave two.  EOF is a message too: on
 * the child's side, the parent gave up; on the parent's, the init's last
 * fd closed - at execve (after EXEC_NEXT) or at its death.
 *
 * The child calls these between clone() and execve(): no malloc, no stdio.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "diyc.h"

static ssize_t send_all(int fd, struct msghdr *msg)
{
	ssize_t r;

	do
		r = sendmsg(fd, msg, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	if (r < 0 && errno == ENOTSOCK) {  /* a FIFO: one write of it all */
		char buf[sizeof(struct diyc_msg_header) + DIYC_MSG_PAYLOAD];
		size_t n = 0;

		for (size_t i = 0; i < msg->msg_iovlen; i++) {
			memcpy(buf + n, msg->msg_iov[i].iov_base, msg->msg_iov[i].iov_len);
			n += msg->msg_iov[i].iov_len;
		}
		do
			r = write(fd, buf, n);
		while (r < 0 && errno == EINTR);
	}
	return r;
}

int diyc_msg_send(int fd, int type, int errnum, const void *payload, size_t len,
		  const int *fds, int n_fds)
{
	struct diyc_msg_header h = { .type = type, .len = len, .errnum = errnum };
	char control[CMSG_SPACE(sizeof(int) * DIYC_MSG_MAX_FDS)];
	struct iovec iov[2] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = (void *)payload, .iov_len = len },
	};
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
	ssize_t r;

	if (len > DIYC_MSG_PAYLOAD || n_fds > DIYC_MSG_MAX_FDS) {
		errno = EMSGSIZE;
		return -1;
	}
	if (n_fds > 0) {
		struct cmsghdr *cmsg;

		memset(control, 0, sizeof(control));
		msg.msg_control = control;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
		memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * n_fds);
	}
	r = send_all(fd, &msg);
	if (r < 0)
		return -1;
	if ((size_t)r != sizeof(h) + len) {
		errno = EPROTO;  /* a stream socket took part of it: not ours to finish */
		return -1;
	}
	return 0;
}

/* read() or recvmsg() until `len` bytes or EOF; the fds come with the first. */
static ssize_t recv_full(int fd, void *buf, size_t len, struct diyc_msg *m)
{
	char control[CMSG_SPACE(sizeof(int) * DIYC_MSG_MAX_FDS)];
	size_t got = 0;
	int socket_ok = m != NULL;

	while (got < len) {
		struct iovec iov = { .iov_base = (char *)buf + got, .iov_len = len - got };
		struct msghdr msg = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = control, .msg_controllen = sizeof(control),
		};
		ssize_t r = -1;

		if (socket_ok) {
			r = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
			if (r < 0 && errno == ENOTSOCK)
				socket_ok = 0;
		}
		if (!socket_ok)
			r = read(fd, iov.iov_base, iov.iov_len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -1 : (ssize_t)got;
		if (socket_ok && m) {
			struct cmsghdr *cmsg;

			for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
				if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
					continue;
				int n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);

				for (int i = 0; i < n; i++) {
					int fd_in;

					memcpy(&fd_in, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
					if (m->n_fds < DIYC_MSG_MAX_FDS)
						m->fds[m->n_fds++] = fd_in;
					else
						close(fd_in);
				}
			}
		}
		got += r;
	}
	return got;
}

int diyc_msg_recv(int fd, struct diyc_msg *m)
{
	ssize_t r;

	m->n_fds = 0;
	r = recv_full(fd, &m->h, sizeof(m->h), m);
	if (r == 0)
		return 0;
	if (r != (ssize_t)sizeof(m->h) || m->h.len > DIYC_MSG_PAYLOAD) {
		if (r >= 0)
			errno = EPROTO;
		goto fail;
	}
	r = recv_full(fd, m->payload, m->h.len, NULL);
	if (r != (ssize_t)m->h.len) {
		if (r >= 0)
			errno = EPROTO;
		goto fail;
	}
	return 1;
fail:
	diyc_msg_close_fds(m);
	return -1;
}

void diyc_msg_close_fds(struct diyc_msg *m)
{
	for (int i = 0; i < m->n_fds; i++)
		close(m->fds[i]);
	m->n_fds = 0;
}

/* The child's report of a failed step: "step\0detail", errno. */
void diyc_send_error(int fd, const struct diyc_error *err)
{
	char payload[sizeof(err->step) + sizeof(err->detail)];
	size_t s = strnlen(err->step, sizeof(err->step) - 1);
	size_t d = strnlen(err->detail, sizeof(err->detail) - 1);

	memcpy(payload, err->step, s);
	payload[s] = '\0';
	memcpy(payload + s + 1, err->detail, d);
	diyc_msg_send(fd, DIYC_MSG_ERROR, err->errnum, payload, s + 1 + d, NULL, 0);
}

/* ... and its reading, on the other side. */
int diyc_msg_error(const struct diyc_msg *m, struct diyc_error *err)
{
	size_t s = strnlen(m->payload, m->h.len), d;

	memset(err, 0, sizeof(*err));
	memcpy(err->step, m->payload, s < sizeof(err->step) ? s : sizeof(err->step) - 1);
	if (s + 1 < m->h.len) {
		d = m->h.len - s - 1;
		memcpy(err->detail, m->payload + s + 1, d < sizeof(err->detail) ? d : sizeof(err->detail) - 1);
	}
	err->errnum = m->h.errnum;
	return -1;
}

/*
 * Wait for a message of `type` (anything else is the other side's
 * mistake: EPROTO); its fds go to `fds` (exactly `n_fds` of them).
 * 0 on EOF - the caller decides what a vanished peer means.
 */
int diyc_msg_expect(int fd, int type, int *fds, int n_fds, const char *step, struct diyc_error *err)
{
	struct diyc_msg m;
	int r = diyc_msg_recv(fd, &m);

	if (r < 0)
		return diyc_fail(err, step, errno, NULL);
	if (r == 0)
		return 0;
	if ((int)m.h.type != type || m.n_fds != n_fds) {
		diyc_msg_close_fds(&m);
		return diyc_fail(err, step, EPROTO, NULL);
	}
	if (n_fds)
		memcpy(fds, m.fds, sizeof(int) * n_fds);
	return 1;
}
