/* SPDX-License-Identifier: MIT */
/*
 * call.c - the process's calls to its VM's host side (cuda_call.h): one
 * connection (chan.c: a socket, or a stream through the device) to where
 * cuInit() took the description from, opened by the first
 * call that needs the host with OPEN, then one call and its reply at a
 * time (a lock: calls of the process's threads take turns), or calls
 * posted without waiting for their replies (launches, memsets, device
 * copies, event records and waits), whose replies are read before the
 * next call's and whose first error the next synchronizing call returns.
 * A connection
 * that breaks (the host's worker died) fails the call with
 * CUDA_ERROR_LAUNCH_FAILED, and every later one too: the context is gone,
 * as it is after a fault under NVIDIA's driver.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cuda_ring.h"
#include "shim.h"
#include "transport.h"
#include "vgpu_clock.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct vgpu_cuda_chan conn = { .fd = -1, .slot = -1 };
static CUresult broken = CUDA_SUCCESS; /* sticky: the connection is gone */
static uint64_t next_id = 1;

/* Posted calls whose replies are not read yet, in order: at most
 * POST_MAX, so that the replies waiting in the socket (80 bytes each, some
 * 770 of the socket's buffer) stay well within it; and a call with bytes
 * of its own reads them first (exchange()). */
#define POST_MAX 128
static struct {
	uint64_t id;
	uint16_t call;
	bool quiet;            /* its error is the quiet error, not deferred */
} posted[POST_MAX];
static uint32_t posted_head, n_posted;
/* The first error a posted call's reply brought, for the next
 * synchronizing call to return. */
static CUresult deferred = CUDA_SUCCESS;
/* The first error a quiet post's reply brought (vgpu_cuda_quiet_take). */
static CUresult quiet_error = CUDA_SUCCESS;

/* @m's header and block (its id set here) and @data out on @c, in one
 * send where a socket takes it, with descriptor @pass (-1: none; a
 * socket's only). Lock held. */
static int send_call(struct vgpu_cuda_chan *c, struct vgpu_cuda_msg *m, const void *data, int pass)
{
	uint8_t head[VGPU_CUDA_MSG_HEAD];
	int rc;

	struct iovec iov[2] = { { head, sizeof(head) }, { (void *)data, m->data_len } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = m->data_len ? 2 : 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	ssize_t n;

	if (pass >= 0) {
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pass, sizeof(int));
	}

	m->id = next_id++;
	vgpu_cuda_encode(m, false, head);
	if (c->fd < 0) { /* a stream: the bytes into its ring */
		rc = pass >= 0 ? VGPU_INVALID_PARAM
			       : vgpu_cuda_chan_io(c, head, sizeof(head), true, UINT64_MAX);
		if (rc == VGPU_OK && m->data_len)
			rc = vgpu_cuda_chan_io(c, (void *)data, m->data_len, true, UINT64_MAX);
		return rc;
	}
	int fd = c->fd;

	/* Both in one system call where the socket takes them; the rest, if
	 * any, as it makes room. */
	do
		n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno != EAGAIN || pass >= 0))
		return VGPU_IO_ERROR;
	if (n < 0)
		n = 0;
	if ((size_t)n < sizeof(head))
		rc = vgpu_cuda_chan_io(c, head + n, sizeof(head) - (size_t)n, true, UINT64_MAX);
	else
		rc = VGPU_OK;
	n = (size_t)n > sizeof(head) ? n - (ssize_t)sizeof(head) : 0;
	if (rc == VGPU_OK && m->data_len > (size_t)n)
		rc = vgpu_cuda_chan_io(c, (char *)data + n, m->data_len - (size_t)n, true, UINT64_MAX);
	return rc;
}

/* Read the replies of the posted calls up to @until's (0: all), keeping
 * the first error. Lock held. */
static int drain_to(struct vgpu_cuda_chan *c, uint64_t until)
{
	uint8_t head[VGPU_CUDA_MSG_HEAD];
	struct vgpu_cuda_msg r;

	while (n_posted > 0 && (until == 0 || posted[posted_head].id <= until)) {
		int rc = vgpu_cuda_chan_io(c, head, sizeof(head), false, UINT64_MAX);

		if (rc == VGPU_OK)
			rc = vgpu_cuda_decode(head, true, &r);
		if (rc == VGPU_OK && (r.id != posted[posted_head].id ||
				      r.call != posted[posted_head].call || r.data_len))
			rc = VGPU_PROTOCOL;
		if (rc != VGPU_OK)
			return rc;
		CUresult *first = posted[posted_head].quiet ? &quiet_error : &deferred;

		if (r.status != CUDA_SUCCESS)
			vgpu_cuda_log(false, "posted call %u: the host said %d", r.call, r.status);

		if (r.status != CUDA_SUCCESS && *first == CUDA_SUCCESS)
			*first = (CUresult)r.status;
		posted_head = (posted_head + 1) % POST_MAX;
		n_posted--;
	}
	return VGPU_OK;
}

static int drain(struct vgpu_cuda_chan *c)
{
	return drain_to(c, 0);
}

/* One exchange on @c: @m (and @data) out, the replies of the calls
 * posted before it, then its own: the head into @r and its data (at most
 * @cap bytes) into @out. Lock held. */
static int exchange(struct vgpu_cuda_chan *c, struct vgpu_cuda_msg *m, const void *data, struct vgpu_cuda_msg *r,
		    void *out, uint32_t cap, int pass)
{
	uint8_t head[VGPU_CUDA_MSG_HEAD];
	/* Replies first when the call carries bytes: the worker writes each
	 * reply before it reads the next call, and its socket may not hold
	 * all of them while ours fills with the bytes. */
	int rc = m->data_len ? drain(c) : VGPU_OK;

	if (rc == VGPU_OK)
		rc = send_call(c, m, data, pass);
	if (rc == VGPU_OK)
		rc = drain(c);
	if (rc == VGPU_OK)
		rc = vgpu_cuda_chan_io(c, head, sizeof(head), false, UINT64_MAX);
	if (rc == VGPU_OK)
		rc = vgpu_cuda_decode(head, true, r);
	if (rc == VGPU_OK && (r->id != m->id || r->call != m->call || r->data_len > cap))
		rc = VGPU_PROTOCOL;
	if (rc == VGPU_OK && r->data_len)
		rc = vgpu_cuda_chan_io(c, out, r->data_len, false, UINT64_MAX);
	return rc;
}

/* The window, offered to the worker on connection @c: without one (the
 * worker refused it, this process has none, or its calls go through the
 * device, whose window is the mediator's) copies carry their bytes.
 * Lock held. */
static void open_window(struct vgpu_cuda_chan *c)
{
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_WINDOW }, r;
	size_t bytes, ring;
	void *at;
	int mfd;

	if (c->fd < 0)
		return;
	if (vgpu_cuda_window_make(&mfd, &bytes, &ring, &at) != 0)
		return;
	m.v[0] = bytes;
	m.v[1] = ring;
	m.v[2] = (uint64_t)(uintptr_t)at; /* the worker maps it there too if it can */
	if (exchange(c, &m, NULL, &r, NULL, 0, mfd) == VGPU_OK && r.status == CUDA_SUCCESS) {
		vgpu_cuda_window_ready(r.v[0]);
	} else {
		vgpu_cuda_log(false, "no window: copies carry their bytes");
		vgpu_cuda_window_drop(); /* closes mfd */
	}
}

/* fork(): the child has no CUDA context (as under NVIDIA's driver, its
 * calls fail with CUDA_ERROR_NOT_INITIALIZED); the parent's connection,
 * window and ring stay the parent's. */
static void before_fork(void)
{
	pthread_mutex_lock(&lock);
	vgpu_cuda_window_hold(true);
}

static void after_fork_parent(void)
{
	vgpu_cuda_window_hold(false);
	pthread_mutex_unlock(&lock);
}

static void after_fork_child(void)
{
	vgpu_cuda_window_forked();
	vgpu_cuda_window_hold(false);
	vgpu_cuda_chan_forget(&conn);
	vgpu_cuda_chan_forked();
	n_posted = 0;
	broken = CUDA_ERROR_NOT_INITIALIZED;
	pthread_mutex_unlock(&lock);
}

static void watch_forks(void)
{
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

/* The connection, opened with OPEN on first use; CUDA_SUCCESS, or the
 * sticky error of a connection that could not be made or broke. Lock held. */
static CUresult connected(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	if (broken == CUDA_SUCCESS && !vgpu_cuda_chan_open(&conn)) {
		pthread_once(&once, watch_forks);
		struct vgpu_cuda_msg open = { .call = VGPU_CUDA_OPEN }, ok;
		struct vgpu_cuda_chan c;
		int io;

		io = vgpu_cuda_chan_connect(&vgpu_cuda.where, &c);
		if (io == VGPU_OK) {
			io = exchange(&c, &open, NULL, &ok, NULL, 0, -1);
			if (io != VGPU_OK || ok.status != CUDA_SUCCESS) {
				vgpu_cuda_log(true, "the host refused this process's calls: %s",
					      io != VGPU_OK ? vgpu_strerror(io) : "see its log");
				vgpu_cuda_chan_close(&c);
				broken = io != VGPU_OK ? CUDA_ERROR_NOT_SUPPORTED : (CUresult)ok.status;
			}
		} else {
			vgpu_cuda_log(true, "cannot reach the host: %s", vgpu_strerror(io));
			broken = CUDA_ERROR_NOT_SUPPORTED;
		}
		conn = c;
		if (vgpu_cuda_chan_open(&conn))
			open_window(&conn);
	}
	return broken;
}

CUresult vgpu_cuda_connect(void)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	pthread_mutex_lock(&lock);
	rc = connected();
	pthread_mutex_unlock(&lock);
	return rc;
}

/* The connection broke under a call: the context is lost. Lock held. */
static CUresult lost(void)
{
	vgpu_cuda_log(true, "the connection to the host broke: the context is lost");
	vgpu_cuda_chan_close(&conn);
	n_posted = 0;
	broken = CUDA_ERROR_LAUNCH_FAILED;
	return broken;
}

/* The ring's tail as this process wrote it (the control page's copy is
 * for the worker). Lock held. */
static uint64_t ring_tail;

/* KICK: the worker sleeps on the connection while its ring has entries.
 * Lock held. */
static int kick(struct vgpu_cuda_chan *c)
{
	struct vgpu_cuda_msg k = { .call = VGPU_CUDA_KICK };

	return send_call(c, &k, NULL, -1);
}

/* Post @m through the ring (cuda_ring.h) if it may go that way and the
 * process has one: 1 when posted, 0 when it must go on the connection,
 * -1 when the connection broke. Lock held. */
static int ring_post(struct vgpu_cuda_msg *m, const void *data)
{
	struct vgpu_cuda_ring_ctl *ctl;
	uint8_t *ring;
	uint64_t size, len, pos, skip;

	if (!vgpu_cuda_ringable(m) || !vgpu_cuda_window_ring(&ctl, &ring, &size))
		return 0;
	len = (VGPU_CUDA_RING_PREFIX + VGPU_CUDA_MSG_HEAD + m->data_len + 15) / 16 * 16;
	if (len > size / 4)
		return 0;
	/* Calls posted on the connection run before the ring's next entry:
	 * their replies in first. */
	if (n_posted && drain(&conn) != VGPU_OK)
		return -1;
	pos = ring_tail & (size - 1);
	skip = size - pos < len ? size - pos : 0;
	for (unsigned spins = 0;
	     ring_tail + skip + len - atomic_load_explicit(&ctl->head, memory_order_acquire) > size;
	     spins++) {
		if (atomic_load(&ctl->sleeping) && kick(&conn) != VGPU_OK)
			return -1;
		if (spins > 64) {
			/* A worker that is gone takes nothing more. */
			struct pollfd pfd = { conn.fd, 0, 0 };

			if (poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLHUP | POLLERR)))
				return -1;
			sched_yield();
		}
	}
	if (skip) {
		memset(ring + pos, 0, 8);
		ring_tail += skip;
		pos = 0;
	}
	m->id = next_id++;
	vgpu_cuda_encode(m, false, ring + pos + VGPU_CUDA_RING_PREFIX);
	if (m->data_len) /* data may be NULL when there is none */
		memcpy(ring + pos + VGPU_CUDA_RING_PREFIX + VGPU_CUDA_MSG_HEAD, data, m->data_len);
	memcpy(ring + pos, &len, sizeof(len));
	memset(ring + pos + 8, 0, 8);
	ring_tail += len;
	/* The worker's "sleeping" and our tail, each written before the other
	 * is read (sequentially consistent): one of us sees the other's. */
	atomic_store(&ctl->tail, ring_tail);
	if (atomic_load(&ctl->sleeping) && kick(&conn) != VGPU_OK)
		return -1;
	return 1;
}

/* The first error of the calls that went through the ring, which the
 * worker leaves in its control page: the next synchronizing call's
 * (their work ran before that call's reply was sent). Lock held. */
static void ring_errors(void)
{
	struct vgpu_cuda_ring_ctl *ctl;
	uint8_t *ring;
	uint64_t size;

	if (vgpu_cuda_window_ring(&ctl, &ring, &size)) {
		CUresult e = (CUresult)atomic_exchange(&ctl->error, 0);

		if (e != CUDA_SUCCESS)
			vgpu_cuda_log(false, "a call through the ring: the host said %d", e);

		if (e != CUDA_SUCCESS && deferred == CUDA_SUCCESS)
			deferred = e;
	}
}

/* The calls that wait for the work before them, and so report what went
 * wrong in the posted ones (as CUDA reports an asynchronous error at the
 * next call that synchronizes). */
static bool synchronizing(const struct vgpu_cuda_msg *m)
{
	uint16_t call = m->call;

	return call == VGPU_CUDA_SYNC || call == VGPU_CUDA_DTOH || call == VGPU_CUDA_STREAM_SYNC ||
	       call == VGPU_CUDA_STREAM_QUERY || call == VGPU_CUDA_EVENT_SYNC ||
	       call == VGPU_CUDA_EVENT_QUERY || (call == VGPU_CUDA_DTOH_WIN && m->v[4] == 0);
}

CUresult vgpu_cuda_call(struct vgpu_cuda_msg *m, const void *data, struct vgpu_cuda_msg *r,
			void *out, uint32_t cap)
{
	return vgpu_cuda_call_on(vgpu_cuda_current_device(), m, data, r, out, cap);
}

/* VGPU_CUDA_LOG=2's line for @m ("call" with its reply @r, or "post"). */
static void trace(const char *what, const struct vgpu_cuda_msg *m, const struct vgpu_cuda_msg *r)
{
	char answer[80] = "";

	if (r)
		snprintf(answer, sizeof(answer), ": %d (%#llx %#llx)", r->status,
			 (unsigned long long)r->v[0], (unsigned long long)r->v[1]);
	vgpu_cuda_log(false, "%s %u (%#llx %#llx %#llx %#llx %#llx, %u bytes)%s", what, m->call,
		      (unsigned long long)m->v[0], (unsigned long long)m->v[1],
		      (unsigned long long)m->v[2], (unsigned long long)m->v[3],
		      (unsigned long long)m->v[4], m->data_len, answer);
}

static CUresult call_locked(CUdevice dev, struct vgpu_cuda_msg *m, const void *data,
			    struct vgpu_cuda_msg *r, void *out, uint32_t cap);

CUresult vgpu_cuda_call_on(CUdevice dev, struct vgpu_cuda_msg *m, const void *data,
			   struct vgpu_cuda_msg *r, void *out, uint32_t cap)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	vgpu_cuda_managed_before(m);
	rc = call_locked(dev, m, data, r, out, cap);
	vgpu_cuda_managed_after(m, rc);
	return rc;
}

static CUresult call_locked(CUdevice dev, struct vgpu_cuda_msg *m, const void *data,
			    struct vgpu_cuda_msg *r, void *out, uint32_t cap)
{
	CUresult rc;

	pthread_mutex_lock(&lock);
	rc = connected();
	if (rc != CUDA_SUCCESS) {
		pthread_mutex_unlock(&lock);
		return rc;
	}
	m->v[5] = (uint64_t)dev;
	if (exchange(&conn, m, data, r, out, cap, -1) != VGPU_OK) {
		rc = lost();
		pthread_mutex_unlock(&lock);
		return rc;
	}
	rc = (CUresult)r->status;
	if (vgpu_cuda_log_level() == 2)
		trace("call", m, r);
	else if (rc != CUDA_SUCCESS && rc != CUDA_ERROR_NOT_READY)
		vgpu_cuda_log(false, "call %u (a0 %#llx a1 %#llx): the host said %d", m->call,
			      (unsigned long long)m->v[0], (unsigned long long)m->v[1], rc);
	/* (Not a copy of managed memory the library makes on its own: the
	 * errors wait for the program's next synchronize.) */
	bool reports = synchronizing(m) && !vgpu_cuda_managed_inside();

	if (reports)
		ring_errors();
	/* A call that failed on its own says so; the posted calls' error
	 * waits for the next one. A query's "not ready" is no failure. */
	if (reports && deferred != CUDA_SUCCESS &&
	    (rc == CUDA_SUCCESS || rc == CUDA_ERROR_NOT_READY)) {
		rc = deferred;
		deferred = CUDA_SUCCESS;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

CUresult vgpu_cuda_call_args(uint16_t call, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t *ret)
{
	struct vgpu_cuda_msg m = { .call = call, .v = { a0, a1, a2 } }, r;
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	rc = vgpu_cuda_call(&m, NULL, &r, NULL, 0);
	if (rc == CUDA_SUCCESS && ret)
		*ret = r.v[0];
	return rc;
}

/* Post @m (and @data), its reply's error @quiet or deferred. */
static CUresult post(struct vgpu_cuda_msg *m, const void *data, bool quiet)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	vgpu_cuda_managed_before(m);
	pthread_mutex_lock(&lock);
	rc = connected();
	if (rc == CUDA_SUCCESS) {
		m->v[5] = (uint64_t)vgpu_cuda_current_device();
		if (vgpu_cuda_log_level() == 2)
			trace("post", m, NULL);
		int ringed = quiet ? 0 : ring_post(m, data);

		if (ringed < 0 || (ringed == 0 && ((n_posted == POST_MAX && drain(&conn) != VGPU_OK) ||
						   send_call(&conn, m, data, -1) != VGPU_OK))) {
			rc = lost();
		} else if (ringed == 0) {
			uint32_t at = (posted_head + n_posted) % POST_MAX;

			posted[at].id = m->id;
			posted[at].call = m->call;
			posted[at].quiet = quiet;
			n_posted++;
		}
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

CUresult vgpu_cuda_post(struct vgpu_cuda_msg *m, const void *data)
{
	return post(m, data, false);
}

CUresult vgpu_cuda_post_quiet(struct vgpu_cuda_msg *m, uint64_t *id)
{
	CUresult rc = post(m, NULL, true);

	*id = m->id;
	return rc;
}

CUresult vgpu_cuda_wait_quiet(uint64_t id)
{
	CUresult rc;

	pthread_mutex_lock(&lock);
	rc = broken;
	if (rc == CUDA_SUCCESS && vgpu_cuda_chan_open(&conn) && drain_to(&conn, id) != VGPU_OK)
		rc = lost();
	pthread_mutex_unlock(&lock);
	return rc;
}

CUresult vgpu_cuda_quiet_take(void)
{
	CUresult rc;

	pthread_mutex_lock(&lock);
	rc = quiet_error;
	quiet_error = CUDA_SUCCESS;
	pthread_mutex_unlock(&lock);
	return rc;
}
