/* SPDX-License-Identifier: MIT */
/*
 * call.c - the process's calls to its VM's host side (cuda_call.h): one
 * connection to the socket cuInit() described from, opened by the first
 * call that needs the host with OPEN, then one call and its reply at a
 * time (a lock: calls of the process's threads take turns). A connection
 * that breaks (the host's worker died) fails the call with
 * CUDA_ERROR_LAUNCH_FAILED, and every later one too: the context is gone,
 * as it is after a fault under NVIDIA's driver.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shim.h"
#include "transport.h"
#include "vgpu_clock.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int conn = -1;
static CUresult broken = CUDA_SUCCESS; /* sticky: the connection is gone */
static uint64_t next_id = 1;

/* Move @len bytes to or from @fd before @deadline_ns of the monotonic clock. */
int vgpu_cuda_io(int fd, void *buf, size_t len, bool out, uint64_t deadline_ns)
{
	char *p = buf;

	while (len > 0) {
		struct pollfd pfd = { fd, out ? POLLOUT : POLLIN, 0 };
		uint64_t now = vgpu_now_ns();
		ssize_t n;

		if (now >= deadline_ns)
			return VGPU_TIMEOUT;
		int ms = deadline_ns == UINT64_MAX ? -1 : (int)((deadline_ns - now) / 1000000u) + 1;

		if (poll(&pfd, 1, ms) < 0 && errno != EINTR)
			return VGPU_IO_ERROR;
		if (!pfd.revents)
			continue;
		n = out ? send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT)
			: recv(fd, p, len, MSG_DONTWAIT);
		if (n == 0 && !out)
			return VGPU_IO_ERROR;
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return VGPU_IO_ERROR;
		}
		p += n;
		len -= (size_t)n;
	}
	return VGPU_OK;
}

/* One exchange on @fd: @m (and @data) out, the reply's head into @r and
 * its data (at most @cap bytes) into @out. Lock held. */
static int exchange(int fd, struct vgpu_cuda_msg *m, const void *data, struct vgpu_cuda_msg *r,
		    void *out, uint32_t cap)
{
	uint8_t head[VGPU_CUDA_MSG_HEAD];
	int rc;

	m->id = next_id++;
	vgpu_cuda_encode(m, false, head);
	rc = vgpu_cuda_io(fd, head, sizeof(head), true, UINT64_MAX);
	if (rc == VGPU_OK && m->data_len)
		rc = vgpu_cuda_io(fd, (void *)data, m->data_len, true, UINT64_MAX);
	if (rc == VGPU_OK)
		rc = vgpu_cuda_io(fd, head, sizeof(head), false, UINT64_MAX);
	if (rc == VGPU_OK)
		rc = vgpu_cuda_decode(head, true, r);
	if (rc == VGPU_OK && (r->id != m->id || r->call != m->call || r->data_len > cap))
		rc = VGPU_PROTOCOL;
	if (rc == VGPU_OK && r->data_len)
		rc = vgpu_cuda_io(fd, out, r->data_len, false, UINT64_MAX);
	return rc;
}

CUresult vgpu_cuda_call(struct vgpu_cuda_msg *m, const void *data, struct vgpu_cuda_msg *r,
			void *out, uint32_t cap)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	pthread_mutex_lock(&lock);
	if (broken == CUDA_SUCCESS && conn < 0) {
		struct vgpu_cuda_msg open = { .call = VGPU_CUDA_OPEN }, ok;
		int fd = -1, io;

		io = vgpu_unix_connect(vgpu_cuda.socket_path, &fd);
		if (io == VGPU_OK) {
			io = exchange(fd, &open, NULL, &ok, NULL, 0);
			if (io != VGPU_OK || ok.status != CUDA_SUCCESS) {
				vgpu_cuda_log(true, "the host refused this process's calls: %s",
					      io != VGPU_OK ? vgpu_strerror(io) : "see its log");
				close(fd);
				fd = -1;
				broken = io != VGPU_OK ? CUDA_ERROR_NOT_SUPPORTED : (CUresult)ok.status;
			}
		} else {
			vgpu_cuda_log(true, "cannot reach the host: %s", vgpu_strerror(io));
			broken = CUDA_ERROR_NOT_SUPPORTED;
		}
		conn = fd;
	}
	if (broken != CUDA_SUCCESS) {
		pthread_mutex_unlock(&lock);
		return broken;
	}
	if (m->call != VGPU_CUDA_OPEN)
		m->v[5] = (uint64_t)vgpu_cuda_current_device();
	if (exchange(conn, m, data, r, out, cap) != VGPU_OK) {
		vgpu_cuda_log(true, "the connection to the host broke: the context is lost");
		close(conn);
		conn = -1;
		broken = CUDA_ERROR_LAUNCH_FAILED;
		pthread_mutex_unlock(&lock);
		return broken;
	}
	pthread_mutex_unlock(&lock);
	return (CUresult)r->status;
}
