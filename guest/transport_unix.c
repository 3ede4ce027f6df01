/* SPDX-License-Identifier: MIT */
/*
 * transport_unix.c - the socket transport: one Unix stream socket to the
 * mediator (RUNDIR/vm-<uuid>.sock), whose owner the mediator takes as the
 * VM the requests come from.
 *
 * Must never: block outside wait() (every send and recv is MSG_DONTWAIT),
 * raise SIGPIPE (MSG_NOSIGNAL: a library must not kill its program when the
 * mediator goes away), or let EINTR surface as a failure.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "transport.h"

struct unix_transport {
	struct vgpu_transport base; /* first: the core sees only this */
	int fd;                     /* connected stream socket */
};

static int errno_to_vgpu(int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
		return VGPU_NOT_FOUND;
	case EACCES:
	case EPERM:
		return VGPU_DENIED;
	case ENOMEM:
	case ENOBUFS:
		return VGPU_NO_MEMORY;
	default:
		return VGPU_IO_ERROR;
	}
}

static int unix_send(struct vgpu_transport *t, const struct iovec *iov, int iovcnt,
		     size_t *ret_len)
{
	struct unix_transport *u = (struct unix_transport *)t;
	struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
	ssize_t n;

	do
		n = sendmsg(u->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return VGPU_IO_ERROR;
		n = 0;
	}
	*ret_len = (size_t)n;
	return VGPU_OK;
}

static int unix_recv(struct vgpu_transport *t, void *buf, size_t len, size_t *ret_len)
{
	struct unix_transport *u = (struct unix_transport *)t;
	ssize_t n;

	do
		n = recv(u->fd, buf, len, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n == 0 && len > 0)
		return VGPU_IO_ERROR; /* the mediator closed the connection */
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return VGPU_IO_ERROR;
		n = 0;
	}
	*ret_len = (size_t)n;
	return VGPU_OK;
}

static int unix_wait(struct vgpu_transport *t, int want, int timeout_ms, int *ret_ready)
{
	struct unix_transport *u = (struct unix_transport *)t;
	struct pollfd p = {
		.fd = u->fd,
		.events = (short)(((want & VGPU_TRANSPORT_RECV) ? POLLIN : 0) |
				  ((want & VGPU_TRANSPORT_SEND) ? POLLOUT : 0)),
	};
	int n, ready = 0;

	/* EINTR returns early with nothing ready; the caller's deadline decides. */
	n = poll(&p, 1, timeout_ms);
	if (n < 0 && errno != EINTR)
		return VGPU_IO_ERROR;
	if (n > 0) {
		if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
			ready = want;
		if (p.revents & POLLIN)
			ready |= VGPU_TRANSPORT_RECV;
		if (p.revents & POLLOUT)
			ready |= VGPU_TRANSPORT_SEND;
	}
	*ret_ready = ready & want;
	return VGPU_OK;
}

static void unix_close(struct vgpu_transport *t)
{
	struct unix_transport *u = (struct unix_transport *)t;

	close(u->fd);
	free(u);
}

static const struct vgpu_transport_ops unix_ops = {
	.name = "unix",
	.send = unix_send,
	.recv = unix_recv,
	.wait = unix_wait,
	.close = unix_close,
};

/* connect() interrupted by a signal goes on in the background: wait for it. */
static int finish_connect(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int err = 0;
	socklen_t len = sizeof(err);

	while (poll(&p, 1, -1) < 0)
		if (errno != EINTR)
			return errno;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return errno;
	return err;
}

int vgpu_unix_connect(const char *path, int *ret_fd)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	int fd, err = 0;

	if (len == 0 || len >= sizeof(addr.sun_path))
		return VGPU_INVALID_PARAM;
	memcpy(addr.sun_path, path, len + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno_to_vgpu(errno);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		err = errno == EINTR ? finish_connect(fd) : errno;
	if (err) {
		close(fd);
		return errno_to_vgpu(err);
	}
	*ret_fd = fd;
	return VGPU_OK;
}

int vgpu_transport_unix_open(const char *path, struct vgpu_transport **ret)
{
	struct unix_transport *u = calloc(1, sizeof(*u));
	int rc;

	if (!u)
		return VGPU_NO_MEMORY;
	rc = vgpu_unix_connect(path, &u->fd);
	if (rc != VGPU_OK) {
		free(u);
		return rc;
	}
	u->base.ops = &unix_ops;
	*ret = &u->base;
	return VGPU_OK;
}
