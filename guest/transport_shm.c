/* SPDX-License-Identifier: MIT */
/*
 * transport_shm.c - the client end of the shared-memory ring (vgpu_ring.h):
 * ask the VM's socket for a window, map it, publish descriptors and take
 * completions. The client core (client.c) decides what goes in them.
 *
 * The socket stays open as the session's lifeline: the mediator drops the
 * window's requests when it closes, and this side learns from its hang-up
 * that the mediator went away.
 *
 * Must never: trust an index or a completion the mediator wrote without
 * checking it against what was submitted (client.c matches ids), block
 * in anything but shm_wait() and the attach handshake (bounded by
 * ATTACH_TIMEOUT_MS), or raise SIGPIPE.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport_shm.h"
#include "vgpu_uapi.h"

#define ATTACH_TIMEOUT_MS 10000

static uint32_t *index_at(struct vgpu_shm *s, size_t off)
{
	return (uint32_t *)(void *)(s->win + off);
}

/* Send the attach message and read the reply with its descriptors. */
static int handshake(struct vgpu_shm *s, uint64_t data_bytes, int fds[3], uint64_t *ret_window)
{
	uint8_t msg[VGPU_RING_ATTACH_MSG];
	union {
		char buf[CMSG_SPACE(3 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = msg, .iov_len = sizeof(msg) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	struct pollfd p = { .fd = s->sock_fd, .events = POLLIN };
	struct vgpu_msg_header h;
	int32_t status;
	ssize_t n;
	int rc;

	vgpu_ring_encode_attach(data_bytes, msg);
	do
		n = send(s->sock_fd, msg, sizeof(msg), MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(msg)) {
		snprintf(s->why, sizeof(s->why), "sending the attach message failed");
		return VGPU_IO_ERROR;
	}
	do
		rc = poll(&p, 1, ATTACH_TIMEOUT_MS);
	while (rc < 0 && errno == EINTR);
	if (rc == 0) {
		snprintf(s->why, sizeof(s->why), "no answer to the attach message in %d ms",
			 ATTACH_TIMEOUT_MS);
		return VGPU_TIMEOUT;
	}
	do
		n = recvmsg(s->sock_fd, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	while (n < 0 && errno == EINTR);
	/* Take whatever descriptors came, so that none leaks on failure. */
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (i < 3 && fds[i] < 0)
				fds[i] = fd;
			else
				close(fd); /* beyond three, or a second message's */
		}
	}
	if (n <= 0) {
		snprintf(s->why, sizeof(s->why), "%s",
			 n == 0 ? "the mediator closed the connection" : strerror(errno));
		return VGPU_IO_ERROR;
	}
	if (n != (ssize_t)sizeof(msg) || (mh.msg_flags & MSG_CTRUNC) ||
	    vgpu_proto_decode_header(msg, &vgpu_proto_default_limits, &h) != VGPU_OK ||
	    vgpu_ring_parse_attached(msg, &h, msg + VGPU_PROTO_HEADER_SIZE, &status, ret_window) !=
		    VGPU_OK) {
		snprintf(s->why, sizeof(s->why), "malformed answer to the attach message");
		return VGPU_PROTOCOL;
	}
	if (status != VGPU_OK) {
		snprintf(s->why, sizeof(s->why), "the mediator refused the window: %s",
			 vgpu_strerror(status));
		return status;
	}
	if (fds[0] < 0 || fds[1] < 0 || fds[2] < 0) {
		snprintf(s->why, sizeof(s->why), "the attach answer carried no descriptors");
		return VGPU_PROTOCOL;
	}
	return VGPU_OK;
}

/* Map @window bytes of @fd: the control page as promised. */
static int map_window(struct vgpu_shm *s, int fd, uint64_t window)
{
	if (window < VGPU_RING_DATA_OFFSET + VGPU_RING_MIN_DATA ||
	    window > VGPU_RING_DATA_OFFSET + VGPU_RING_MAX_DATA) {
		snprintf(s->why, sizeof(s->why), "a window of %llu bytes is not a ring's",
			 (unsigned long long)window);
		return VGPU_PROTOCOL;
	}
	s->win = mmap(NULL, (size_t)window, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (s->win == MAP_FAILED) {
		s->win = NULL;
		snprintf(s->why, sizeof(s->why), "mapping the window failed: %s", strerror(errno));
		return VGPU_NO_MEMORY;
	}
	s->win_size = (size_t)window;
	if (*index_at(s, VGPU_RING_OFF_MAGIC) != VGPU_RING_MAGIC ||
	    *index_at(s, VGPU_RING_OFF_VERSION) != VGPU_RING_VERSION ||
	    *index_at(s, VGPU_RING_OFF_ENTRIES) != VGPU_RING_ENTRIES) {
		snprintf(s->why, sizeof(s->why), "the window's control page is not version %d",
			 VGPU_RING_VERSION);
		return VGPU_PROTOCOL;
	}
	s->sq_tail = __atomic_load_n(index_at(s, VGPU_RING_OFF_SQ_TAIL), __ATOMIC_ACQUIRE);
	s->cq_head = __atomic_load_n(index_at(s, VGPU_RING_OFF_CQ_HEAD), __ATOMIC_ACQUIRE);
	return window_init(&s->alloc, VGPU_RING_DATA_OFFSET, window - VGPU_RING_DATA_OFFSET);
}

int vgpu_shm_open(const char *path, uint64_t data_bytes, struct vgpu_shm **ret)
{
	struct vgpu_shm *s = calloc(1, sizeof(*s));
	int fds[3] = { -1, -1, -1 };
	uint64_t window = 0;
	int rc;

	if (!s)
		return VGPU_NO_MEMORY;
	s->doorbell_fd = s->notify_fd = -1;
	rc = vgpu_unix_connect(path, &s->sock_fd);
	if (rc != VGPU_OK) {
		free(s);
		return rc;
	}
	rc = handshake(s, data_bytes, fds, &window);
	if (rc == VGPU_OK) {
		struct stat st; /* the mediator's memfd: the size it announced */

		if (fstat(fds[0], &st) != 0 || !S_ISREG(st.st_mode) ||
		    (uint64_t)st.st_size != window) {
			snprintf(s->why, sizeof(s->why), "the window is not the size announced");
			rc = VGPU_PROTOCOL;
		}
	}
	if (rc == VGPU_OK)
		rc = map_window(s, fds[0], window);
	if (fds[0] >= 0)
		close(fds[0]); /* the mapping keeps the window */
	s->doorbell_fd = fds[1];
	s->notify_fd = fds[2];
	if (rc != VGPU_OK) {
		vgpu_shm_close(s);
		return rc;
	}
	*ret = s;
	return VGPU_OK;
}

int vgpu_shm_open_dev(const char *path, struct vgpu_shm **ret)
{
	struct vgpu_shm *s = calloc(1, sizeof(*s));
	struct vgpu_dev_info info;
	int fd, rc;

	if (!s)
		return VGPU_NO_MEMORY;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ENOENT || errno == ENODEV || errno == ENXIO ? VGPU_NOT_FOUND
		     : errno == EACCES || errno == EPERM		  ? VGPU_DENIED
		     : errno == EBUSY					  ? VGPU_BUSY
									  : VGPU_IO_ERROR;
		free(s);
		return rc;
	}
	s->sock_fd = -1;
	s->doorbell_fd = s->notify_fd = fd;
	/* Blocks until the mediator has the window (30 s at most). */
	if (ioctl(fd, VGPU_IOC_WAIT, &info) != 0) {
		rc = errno == ETIMEDOUT ? VGPU_TIMEOUT : errno == EBUSY ? VGPU_BUSY : VGPU_IO_ERROR;
		snprintf(s->why, sizeof(s->why), "%s: the window is not registered with the mediator: %s",
			 path, strerror(errno));
		vgpu_shm_close(s);
		return rc;
	}
	rc = map_window(s, fd, info.window_bytes);
	if (rc != VGPU_OK) {
		vgpu_shm_close(s);
		return rc;
	}
	*ret = s;
	return VGPU_OK;
}

void vgpu_shm_close(struct vgpu_shm *s)
{
	if (!s)
		return;
	window_fini(&s->alloc);
	if (s->win)
		munmap(s->win, s->win_size);
	if (s->doorbell_fd >= 0)
		close(s->doorbell_fd);
	if (s->notify_fd >= 0 && s->notify_fd != s->doorbell_fd)
		close(s->notify_fd);
	if (s->sock_fd >= 0)
		close(s->sock_fd);
	free(s);
}

int vgpu_shm_alloc(struct vgpu_shm *s, uint64_t size, void **ret)
{
	uint64_t off;
	int rc = window_alloc(&s->alloc, size, &off);

	if (rc == VGPU_OK)
		*ret = s->win + off;
	return rc;
}

int vgpu_shm_free(struct vgpu_shm *s, void *p)
{
	if (!vgpu_shm_contains(s, p))
		return VGPU_NOT_FOUND;
	return window_free(&s->alloc, (uint64_t)((uint8_t *)p - s->win));
}

bool vgpu_shm_contains(const struct vgpu_shm *s, const void *p)
{
	uintptr_t a = (uintptr_t)p, base = (uintptr_t)s->win;

	return a >= base && a < base + s->win_size;
}

bool vgpu_shm_offset(const struct vgpu_shm *s, const void *p, uint64_t len, uint32_t *ret_off)
{
	uint64_t off;

	if (!vgpu_shm_contains(s, p))
		return false;
	off = (uint64_t)((const uint8_t *)p - s->win);
	if (!window_owns(&s->alloc, off, len))
		return false;
	*ret_off = (uint32_t)off;
	return true;
}

int vgpu_shm_submit(struct vgpu_shm *s, const struct vgpu_ring_desc *d)
{
	uint32_t head = __atomic_load_n(index_at(s, VGPU_RING_OFF_SQ_HEAD), __ATOMIC_ACQUIRE);
	uint64_t one = 1;

	if (s->sq_tail - head >= VGPU_RING_ENTRIES) {
		snprintf(s->why, sizeof(s->why), "the submission ring is full or its head is corrupt");
		return VGPU_PROTOCOL;
	}
	vgpu_ring_encode_desc(d, s->win + VGPU_RING_SQ_OFFSET +
				       (size_t)(s->sq_tail % VGPU_RING_ENTRIES) * VGPU_RING_DESC_SIZE);
	s->sq_tail++;
	if (!vgpu_ring_publish(s->win, s->sq_tail))
		return VGPU_OK; /* the mediator is watching the tail */
	if (write(s->doorbell_fd, &one, sizeof(one)) < 0 && errno != EAGAIN) {
		/* dev: EPIPE once the window is gone */
		snprintf(s->why, sizeof(s->why), "ringing the doorbell failed: %s", strerror(errno));
		return VGPU_IO_ERROR;
	}
	return VGPU_OK;
}

int vgpu_shm_next(struct vgpu_shm *s, struct vgpu_ring_cqe *ret)
{
	uint32_t tail = __atomic_load_n(index_at(s, VGPU_RING_OFF_CQ_TAIL), __ATOMIC_ACQUIRE);
	uint8_t raw[VGPU_RING_CQE_SIZE];

	if (tail == s->cq_head)
		return VGPU_TIMEOUT;
	if (tail - s->cq_head > VGPU_RING_ENTRIES) {
		snprintf(s->why, sizeof(s->why), "the completion ring's tail is corrupt");
		return VGPU_PROTOCOL;
	}
	memcpy(raw, s->win + VGPU_RING_CQ_OFFSET +
			    (size_t)(s->cq_head % VGPU_RING_ENTRIES) * VGPU_RING_CQE_SIZE,
	       sizeof(raw));
	s->cq_head++;
	__atomic_store_n(index_at(s, VGPU_RING_OFF_CQ_HEAD), s->cq_head, __ATOMIC_RELEASE);
	if (vgpu_ring_decode_cqe(raw, ret) != VGPU_OK) {
		snprintf(s->why, sizeof(s->why), "malformed completion");
		return VGPU_PROTOCOL;
	}
	return VGPU_OK;
}

bool vgpu_shm_spinning(struct vgpu_shm *s, bool on)
{
	/* The flag stored, then the tail read, both sequentially consistent:
	 * the other half of the mediator's tail store and flag load. */
	__atomic_store_n(index_at(s, VGPU_RING_OFF_CQ_FLAGS), on ? VGPU_RING_CQ_POLLING : 0,
			 __ATOMIC_SEQ_CST);
	if (on)
		return false;
	return __atomic_load_n(index_at(s, VGPU_RING_OFF_CQ_TAIL), __ATOMIC_SEQ_CST) != s->cq_head;
}

int vgpu_shm_wait(struct vgpu_shm *s, int timeout_ms)
{
	struct pollfd p[2] = {
		{ .fd = s->notify_fd, .events = POLLIN },
		{ .fd = s->sock_fd, .events = POLLIN },
	};
	uint64_t n;

	/* Completions published before this call left the counter non-zero. */
	if (poll(p, 2, timeout_ms) < 0 && errno != EINTR) {
		snprintf(s->why, sizeof(s->why), "waiting for completions failed: %s",
			 strerror(errno));
		return VGPU_IO_ERROR;
	}
	if (p[0].revents & (POLLERR | POLLHUP)) { /* dev: the window is gone */
		snprintf(s->why, sizeof(s->why), "the device's window is gone (the mediator went away)");
		return VGPU_IO_ERROR;
	}
	if ((p[0].revents & POLLIN) && s->sock_fd < 0) { /* dev: the driver's event count */
		if (read(s->notify_fd, &n, sizeof(n)) < 0) {
			/* EAGAIN: another reader took it; the ring says what is there. */
		}
	} else if (p[0].revents & POLLIN) { /* shm: the mediator's datagrams, all of them */
		char sig[64];

		while (recv(s->notify_fd, sig, sizeof(sig), MSG_DONTWAIT) > 0)
			;
	}
	if (p[1].revents) {
		snprintf(s->why, sizeof(s->why), "the mediator closed the connection");
		return VGPU_IO_ERROR;
	}
	return VGPU_OK;
}
