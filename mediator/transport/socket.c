/* SPDX-License-Identifier: MIT */
/*
 * socket.c - the socket transport: one Unix stream socket per registered
 * VM, RUNDIR/vm-<uuid>.sock. Whoever connects to a VM's socket speaks for
 * that VM (identity comes from the channel); the QEMU device and local
 * clients connect here. Requests stream in back to back; responses go out
 * in completion order, matched by request_id. A connection's first message
 * may instead ask for a shared-memory window (vgpu_ring.h): the reply
 * carries the window's descriptors, and from then on the connection only
 * stands for the session's life (transport/shm.c); a byte sent on it
 * after that ends both. The VM's vgpu-stub device (QEMU) connects here
 * too: its first message, DEVICE, comes with descriptors (SCM_RIGHTS,
 * received only with a connection's first bytes), and from then on the
 * connection carries its small device messages (vgpu_device.h), each read
 * whole into a buffer of at most VGPU_DEV_MAX_PAYLOAD bytes and handed to
 * transport/device.c, which answers on the connection.
 *
 * Dialing back: QEMU connects at start, before it drops its privileges
 * and chroots itself (XCP-ng), so it may not reach this socket again when
 * the mediator restarts. Its device therefore also listens, on
 * RUNDIR/vm-<uuid>.sock.dev (bound as root before the drop); every
 * DIAL_MS, a VM with no device connection is dialed there, and the
 * connection is then the device's, as if it had connected (the same
 * reading, budget and checks; its DEVICE message is due within
 * msg_timeout_ms).
 *
 * A message is read in steps, each checked before the next is read: the
 * header, then the parameter block, then (admission has checked the
 * limits and taken the payload's bytes from the VM's budget) the payload
 * into its buffer. A refused request's payload is read and dropped, never
 * stored. Buffers the backend must pin anew are made on a worker thread
 * (vgpu_request_alloc()); the connection is not read meanwhile. A message
 * must be complete within msg_timeout_ms of its first byte (its payload
 * within msg_timeout_ms of the end of a wait for a worker), or the
 * connection is closed (the VM's other connections go on).
 *
 * Back-pressure: while WQ_BACKLOG answers wait for the client to read them
 * (the socket is full), the connection is not read, so a client that
 * never reads its answers stops itself, holding at most its budget and
 * that many refusals. A client may pipeline up to WQ_BACKLOG requests
 * before it reads, as before. Answers that make no progress for
 * msg_timeout_ms close the connection, so that buffers held for a client
 * that does not read come back (the host-wide total is shared).
 *
 * Must never: block the loop (every fd is non-blocking), allocate for a
 * message before its head was checked, keep a connection whose framing is
 * broken (a malformed header closes it: the stream cannot be
 * resynchronised), spin on a listening socket whose accept() fails (it is
 * paused), or free a connection that requests still point at (reference
 * counts).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "mediator.h"
#include "vgpu_device.h"
#include "vgpu_ring.h"

#define SELF (&vgpu_transport_socket)
#define ACCEPT_PAUSE_MS 100 /* a listening socket's rest after accept() failed */
#define WQ_BACKLOG 64       /* unsent answers at which a connection is not read */
#define MAX_FDS (VGPU_DEV_MAX_REGIONS + 2) /* a DEVICE message's descriptors */
#define DIAL_MS 1000        /* how often a VM's device is dialed while it has no connection */

struct sock_global {
	uint64_t pending;            /* responses queued for writing */
	int timer_fd;                /* the message deadline sweep */
	struct vgpu_loop_watch timer_watch;
};

struct conn;

struct sock_vm {
	struct mediator *m;
	struct vgpu_vm *vm;
	int listen_fd;
	struct vgpu_loop_watch watch;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char dev_path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* the device's */
	uint64_t dialed_ns;          /* the last dial; 0: never */
	struct conn *conns;
};

enum conn_state {
	READ_HEADER,    /* hdr[0..hdr_got) */
	READ_PARAMS,    /* params[0..params_got) */
	READ_PAYLOAD,   /* req->payload[0..payload_got) */
	SKIP_PAYLOAD,   /* a refused request: skip bytes are left to drop */
	ALLOCATING,     /* the request's buffers are being made on a worker: not read */
	ATTACHING,      /* a window is being made (transport/shm.c): not read */
	ATTACHED,       /* the connection stands for the window's session */
	READ_CONTROL,   /* a device message's payload: ctl[0..ctl_got) */
};

struct conn {
	struct sock_vm *sv;          /* NULL once the VM is gone */
	struct mediator *m;
	uint32_t slot;               /* the VM's, for its budget */
	int fd;
	struct vgpu_loop_watch watch;
	int refs;                    /* the open socket + each request not yet answered
				      * + a window being made */
	bool open;
	uint32_t events;             /* armed in epoll */
	bool used;                   /* a request came: no attach any more */
	bool dialed;                 /* we connected to the device's socket */
	enum conn_state state;
	uint64_t msg_start_ns;       /* first byte of the message being read; 0: none */
	void *session;               /* transport/shm.c's, once attached */
	void *device;                /* transport/device.c's, once DEVICE was accepted */
	uint8_t *ctl;                /* READ_CONTROL: a device message's payload */
	size_t ctl_got;
	int fds[MAX_FDS];            /* descriptors that came with the first bytes */
	int n_fds;
	uint8_t hdr[VGPU_PROTO_HEADER_SIZE];
	size_t hdr_got;
	struct vgpu_msg_header h;
	uint8_t params[VGPU_PROTO_PARAMS_SIZE];
	size_t params_got;
	struct vgpu_request *req;    /* READ_PAYLOAD: the request being read */
	size_t payload_got;
	uint64_t skip;               /* SKIP_PAYLOAD: bytes left */
	uint64_t window_want;        /* ATTACHING: the data area asked for */
	struct vgpu_request *wq_head, *wq_tail;
	uint32_t wq_count;           /* answers queued, not yet sent whole */
	uint64_t out_stuck_ns;       /* since when a send found no room; 0: it has */
	size_t wq_off;               /* bytes of wq_head's response written */
	struct conn *next;
};

static struct sock_global *global(struct mediator *m)
{
	return vgpu_transport_ctx(m, SELF);
}

static void conn_unref(struct conn *c)
{
	if (--c->refs == 0)
		free(c);
}

/* Descriptors received and not taken by anyone. */
static void close_fds(struct conn *c)
{
	for (int i = 0; i < c->n_fds; i++)
		if (c->fds[i] >= 0)
			close(c->fds[i]);
	c->n_fds = 0;
}

static void conn_close(struct conn *c)
{
	struct mediator *m = c->m;

	if (!c->open)
		return;
	c->open = false;
	vgpu_loop_remove(m->loop, &c->watch);
	vgpu_shm_detach(c->session);
	c->session = NULL;
	vgpu_device_detach(c->device);
	c->device = NULL;
	close_fds(c);
	free(c->ctl);
	c->ctl = NULL;
	close(c->fd);
	if (c->req) { /* a payload half read */
		vgpu_request_free(c->req);
		c->req = NULL;
		c->refs--; /* its reference; never the last */
	}
	while (c->wq_head) {
		struct vgpu_request *req = c->wq_head;

		c->wq_head = req->next_done;
		global(m)->pending--;
		vgpu_request_free(req);
		c->refs--; /* never the last: the socket's own ref is still held */
	}
	c->wq_tail = NULL;
	c->wq_count = 0;
	vgpu_budget_give(m->budget, c->slot, VGPU_BUDGET_CONNS, 1);
	if (c->sv) {
		struct conn **pp = &c->sv->conns;

		while (*pp && *pp != c)
			pp = &(*pp)->next;
		if (*pp)
			*pp = c->next;
		c->sv = NULL;
	}
	conn_unref(c);
}

/* Whether the connection is read: not while WQ_BACKLOG answers are
 * blocked (back-pressure), nor while a window or a request's buffers are
 * being made. */
static bool readable(const struct conn *c)
{
	return c->wq_count < WQ_BACKLOG && c->state != ATTACHING && c->state != ALLOCATING;
}

/* Arm what the connection waits for: room for blocked answers, and the
 * next bytes when it is read (a hang-up epoll always reports). */
static void arm(struct conn *c)
{
	uint32_t ev = (c->wq_head ? EPOLLOUT : 0) | (readable(c) ? EPOLLIN | EPOLLRDHUP : 0);

	if (ev == c->events)
		return;
	c->events = ev;
	vgpu_loop_modify(c->m->loop, &c->watch, ev);
}

/* Write queued responses until done or EAGAIN. false: connection closed. */
static bool flush(struct conn *c)
{
	while (c->wq_head) {
		struct vgpu_request *req = c->wq_head;
		ssize_t n = send(c->fd, req->resp + c->wq_off, req->resp_len - c->wq_off,
				 MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (!c->out_stuck_ns)
					c->out_stuck_ns = vgpu_now_ns();
				break;
			}
			conn_close(c);
			return false;
		}
		c->out_stuck_ns = 0;
		c->wq_off += (size_t)n;
		if (c->wq_off < req->resp_len)
			continue;
		c->wq_head = req->next_done;
		if (!c->wq_head)
			c->wq_tail = NULL;
		c->wq_off = 0;
		c->wq_count--;
		global(c->m)->pending--;
		vgpu_request_free(req);
		conn_unref(c); /* the socket's own ref keeps c alive here */
	}
	arm(c);
	return true;
}

static void sock_respond(struct mediator *m, struct vgpu_request *req)
{
	struct conn *c = req->reply_ctx;

	if (!c->open) {
		vgpu_request_free(req);
		conn_unref(c);
		return;
	}
	req->next_done = NULL;
	if (c->wq_tail)
		c->wq_tail->next_done = req;
	else
		c->wq_head = req;
	c->wq_tail = req;
	c->wq_count++;
	global(m)->pending++;
	if (c->wq_head == req || c->wq_count >= WQ_BACKLOG)
		flush(c);
}

/* A guest broke the framing or the deadline: log (rate-limited), count,
 * close. */
static void refuse(struct conn *c, const char *why)
{
	struct vgpu_vm *vm = c->sv->vm;

	vgpu_log_guest(&vm->rl, LOG_WARNING, "VM %s: %s on its socket; closing the connection",
		       vm->uuid, why);
	vgpu_stats_record(c->m->stats, vm->slot, vm->priority, VGPU_OUTCOME_REJECTED, 0, 0, 0, 0);
	conn_close(c);
}

/* The message is done: the next one starts with a header. */
static void next_message(struct conn *c)
{
	c->state = READ_HEADER;
	c->hdr_got = 0;
	c->params_got = 0;
	c->payload_got = 0;
	c->skip = 0;
	c->msg_start_ns = 0;
}

/* transport/shm.c made the window (or could not): answer with its
 * descriptors. Loop thread. */
static void window_ready(void *ctx, int rc, void *session, int fds[3])
{
	struct conn *c = ctx;
	uint8_t reply[VGPU_RING_ATTACH_MSG];
	union {
		char buf[CMSG_SPACE(3 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = reply, .iov_len = sizeof(reply) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (!c->open) { /* the client left meanwhile */
		vgpu_shm_detach(session);
		for (int i = 0; rc == VGPU_OK && i < 3; i++)
			close(fds[i]);
		conn_unref(c);
		return;
	}
	if (rc != VGPU_OK)
		vgpu_log_guest(&c->sv->vm->rl, LOG_WARNING,
			       "VM %s: shared-memory window of %llu bytes refused: %s",
			       c->sv->vm->uuid, (unsigned long long)c->window_want,
			       vgpu_strerror(rc));
	vgpu_ring_encode_attached(rc, rc == VGPU_OK ? VGPU_RING_DATA_OFFSET + c->window_want : 0,
				  reply);
	if (rc == VGPU_OK) {
		struct cmsghdr *cm;

		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof(ctl.buf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(3 * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, 3 * sizeof(int));
	}
	/* Nothing else was ever written here: the socket buffer has room. */
	ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	for (int i = 0; rc == VGPU_OK && i < 3; i++)
		close(fds[i]);
	c->session = session;
	if (rc == VGPU_OK)
		c->state = ATTACHED;
	else
		next_message(c); /* refused: the connection may go on with requests */
	if (n != (ssize_t)sizeof(reply))
		conn_close(c);
	else
		arm(c);
	conn_unref(c);
}

/* The attach message is whole (its block in c->params): have the window
 * made. false when the connection was closed. */
static bool attach(struct conn *c)
{
	struct vgpu_vm *vm = c->sv->vm;
	uint64_t want = 0;

	if (vgpu_ring_parse_attach(c->hdr, &c->h, c->params, &want) != VGPU_OK) {
		refuse(c, "malformed attach message");
		return false;
	}
	c->msg_start_ns = 0;
	c->state = ATTACHING;
	c->window_want = want;
	c->refs++;      /* window_ready()'s */
	int rc = vgpu_shm_attach(c->m, vm, want, c->fd, window_ready, c);
	if (rc != VGPU_OK)
		window_ready(c, rc, NULL, NULL);
	else
		arm(c);
	return false; /* nothing more to read until the window is there */
}

/* A guest's libcuda.so.1 speaks on this connection (DESCRIBE or OPEN, as
 * its first message): the VM's CUDA worker takes it over (cuda_host.c).
 * Our side is closed either way: false. */
static bool cuda_handoff(struct conn *c)
{
	if (c->used || c->h.op > VGPU_CUDA_OPEN) {
		refuse(c, c->used ? "a CUDA call after other messages" : "a CUDA call before OPEN");
		return false;
	}
	if (vgpu_cuda_handoff(c->m, c->sv->vm, c->fd, c->hdr) != VGPU_OK)
		vgpu_log_guest(&c->sv->vm->rl, LOG_WARNING,
			       "VM %s: a CUDA program's connection is closed: no CUDA worker for it",
			       c->sv->vm->uuid);
	conn_close(c);
	return false;
}

/* The header is whole: check it. false when the connection was closed. */
static bool header_done(struct conn *c)
{
	int rc = vgpu_proto_decode_header(c->hdr, &c->m->limits, &c->h);
	bool device_msg = c->h.type == VGPU_MSG_DEVICE || c->h.type == VGPU_MSG_WINDOW;

	if (rc == VGPU_OK && c->h.type == VGPU_MSG_CUDA && !c->device)
		return cuda_handoff(c);
	if (rc != VGPU_OK || (c->h.type != VGPU_MSG_REQUEST && c->h.type != VGPU_MSG_ATTACH &&
			      !device_msg)) {
		refuse(c, rc == VGPU_LIMIT ? "oversized header" : "malformed header");
		return false;
	}
	/* DEVICE first, then WINDOW messages only; nothing else carries fds. */
	if (c->n_fds && c->h.type != VGPU_MSG_DEVICE)
		close_fds(c);
	if (device_msg || c->device) {
		bool first = c->h.type == VGPU_MSG_DEVICE && !c->used && !c->device;

		if (!(first || (c->device && c->h.type == VGPU_MSG_WINDOW)) ||
		    !vgpu_dev_header_ok(&c->h, c->h.type)) {
			refuse(c, "a device message out of place or malformed");
			return false;
		}
		c->used = true;
		if (!c->ctl && !(c->ctl = malloc(VGPU_DEV_MAX_PAYLOAD))) {
			conn_close(c);
			return false;
		}
		c->ctl_got = 0;
		c->state = READ_CONTROL;
		return true;
	}
	if (c->h.type == VGPU_MSG_ATTACH &&
	    (c->used || c->h.payload_len != VGPU_PROTO_PARAMS_SIZE)) {
		refuse(c, c->used ? "attach message after requests" : "malformed attach message");
		return false;
	}
	if (c->h.payload_len < VGPU_PROTO_PARAMS_SIZE) {
		refuse(c, "request without a parameter block");
		return false;
	}
	c->state = READ_PARAMS;
	return true;
}

/* The request was answered already: its data is read and dropped. */
static void skip_payload(struct conn *c)
{
	c->skip = c->h.payload_len - VGPU_PROTO_PARAMS_SIZE;
	c->state = SKIP_PAYLOAD;
}

/* vgpu_request_alloc() is done with @req: read its payload into its
 * buffer, or drop it (@rc: @req is answered). Maybe on a later loop turn,
 * then the connection may have closed meanwhile. */
static void buffers_ready(void *ctx, struct vgpu_request *req, int rc)
{
	struct conn *c = ctx;

	if (!c->open) {
		if (rc == VGPU_OK) { /* else the answer drops it */
			vgpu_request_free(req);
			conn_unref(c); /* the request's */
		}
		return;
	}
	if (rc != VGPU_OK) {
		skip_payload(c);
	} else {
		c->req = req;
		c->payload_got = VGPU_PROTO_PARAMS_SIZE;
		c->state = READ_PAYLOAD;
	}
	if (!c->msg_start_ns) /* it waited for a worker: the client's time starts now */
		c->msg_start_ns = vgpu_now_ns();
	arm(c);
}

/* The parameter block is whole: admission decides, before any allocation,
 * whether the payload is stored or dropped. */
static bool params_done(struct conn *c)
{
	struct mediator *m = c->m;
	struct vgpu_request *req = NULL;

	if (c->h.type == VGPU_MSG_ATTACH)
		return attach(c);
	c->used = true;
	c->refs++; /* the request's, dropped when it is answered */
	int rc = vgpu_request_head(m, c->sv->vm, &vgpu_transport_socket, c, c->hdr, &c->h,
				   c->params, &req);
	if (rc == VGPU_ERROR) { /* not even the request: nothing can answer it */
		c->refs--;
		conn_close(c);
		return false;
	}
	if (!c->open)
		return false;
	if (rc != VGPU_OK) {
		skip_payload(c);
		return true;
	}
	c->state = ALLOCATING;
	vgpu_request_alloc(req, buffers_ready);
	if (c->state != ALLOCATING)
		return c->open; /* done at once */
	c->msg_start_ns = 0; /* the client waits for us, not we for it: no deadline */
	arm(c);
	return false;
}

/* The payload is whole (or dropped): hand it on, start the next message. */
static bool payload_done(struct conn *c)
{
	struct vgpu_request *req = c->req;

	c->req = NULL;
	next_message(c);
	if (req)
		vgpu_request_submit(req, c->sv->vm);
	return c->open;
}

/* A device message is whole: hand it to transport/device.c. false when
 * the connection was closed. */
static bool control_done(struct conn *c)
{
	if (c->h.type == VGPU_MSG_DEVICE) {
		c->device = vgpu_device_hello(c->m, c->sv->vm, c->fd, c->hdr, &c->h, c->ctl, c->fds,
					      c->n_fds);
		c->n_fds = 0; /* taken over */
		if (!c->device) {
			conn_close(c);
			return false;
		}
	} else {
		vgpu_device_window(c->device, c->hdr, &c->h, c->ctl);
	}
	next_message(c);
	return c->open;
}

/* recv() for a connection's first bytes: the descriptors that may come
 * with them (a device's DEVICE message) are kept in c->fds. */
static ssize_t recv_first(struct conn *c, void *dst, size_t want)
{
	union {
		char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = dst, .iov_len = want };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			      .msg_controllen = sizeof(ctl.buf) };
	ssize_t n = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC);

	for (struct cmsghdr *cm = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL; cm;
	     cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			if (c->n_fds < MAX_FDS)
				c->fds[c->n_fds++] = fd;
			else
				close(fd);
		}
	}
	if (n >= 0 && (msg.msg_flags & MSG_CTRUNC))
		close_fds(c); /* more than any message carries: a DEVICE then has too few */
	return n;
}

/* One read step; false when reading should stop (closed, blocked, or
 * nothing more to read now). */
static bool read_some(struct conn *c)
{
	uint8_t scratch[4096];
	void *dst;
	size_t want;
	ssize_t n;

	switch (c->state) {
	case READ_HEADER:
		dst = c->hdr + c->hdr_got;
		want = sizeof(c->hdr) - c->hdr_got;
		break;
	case READ_PARAMS:
		dst = c->params + c->params_got;
		want = sizeof(c->params) - c->params_got;
		break;
	case READ_PAYLOAD:
		dst = c->req->payload + c->payload_got;
		want = c->h.payload_len - c->payload_got;
		break;
	case SKIP_PAYLOAD:
		dst = scratch;
		want = c->skip < sizeof(scratch) ? (size_t)c->skip : sizeof(scratch);
		break;
	case ATTACHED:
		dst = scratch; /* the connection only says when the client is gone */
		want = 1;
		break;
	case READ_CONTROL:
		dst = c->ctl + c->ctl_got;
		want = c->h.payload_len - c->ctl_got;
		break;
	default: /* ALLOCATING, ATTACHING: not read */
		return false;
	}
	if (c->state == READ_HEADER && !c->used && c->hdr_got == 0)
		n = recv_first(c, dst, want);
	else
		n = want ? recv(c->fd, dst, want, 0) : 0;
	if (n == 0 && want) {
		conn_close(c);
		return false;
	}
	if (n < 0) {
		if (errno == EINTR)
			return true;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			conn_close(c);
		return false;
	}
	if (c->state == ATTACHED) {
		refuse(c, "data after the window was attached");
		return false;
	}
	if (!c->msg_start_ns)
		c->msg_start_ns = vgpu_now_ns();
	switch (c->state) {
	case READ_HEADER:
		c->hdr_got += (size_t)n;
		return c->hdr_got < sizeof(c->hdr) || header_done(c);
	case READ_PARAMS:
		c->params_got += (size_t)n;
		if (c->params_got < sizeof(c->params))
			return true;
		if (!params_done(c))
			return false;
		break;
	case READ_PAYLOAD:
		c->payload_got += (size_t)n;
		break;
	case READ_CONTROL:
		c->ctl_got += (size_t)n;
		return c->ctl_got < c->h.payload_len || control_done(c);
	default: /* SKIP_PAYLOAD */
		c->skip -= (uint64_t)n;
		break;
	}
	if ((c->state == READ_PAYLOAD && c->payload_got == c->h.payload_len) ||
	    (c->state == SKIP_PAYLOAD && c->skip == 0))
		return payload_done(c);
	return true;
}

static void conn_event(void *ctx, uint32_t events)
{
	struct conn *c = ctx;

	c->refs++; /* hold c across the callbacks below */
	if ((events & EPOLLOUT) && c->open)
		flush(c);
	if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && c->open) {
		/* Bounded work per event, for fairness between connections; none
		 * while an answer is blocked (back-pressure). */
		for (int i = 0; i < 64 && c->open && c->sv && readable(c) && read_some(c); i++)
			;
		/* Not read, and gone both ways: it cannot take its answers or its
		 * window, and epoll would report the hang-up again and again. */
		if (c->open && (events & (EPOLLHUP | EPOLLERR)) && !readable(c))
			conn_close(c);
	}
	conn_unref(c);
}

/* Make @fd (connected, non-blocking) a connection of @sv's VM, whose
 * budget already counts it. NULL (fd closed, budget given back) on failure. */
static struct conn *conn_new(struct sock_vm *sv, int fd)
{
	struct mediator *m = sv->m;
	struct conn *c = calloc(1, sizeof(*c));

	if (!c) {
		vgpu_budget_give(m->budget, sv->vm->slot, VGPU_BUDGET_CONNS, 1);
		close(fd);
		return NULL;
	}
	c->sv = sv;
	c->m = m;
	c->slot = sv->vm->slot;
	c->fd = fd;
	c->refs = 1;
	c->open = true;
	c->events = EPOLLIN | EPOLLRDHUP;
	c->watch = (struct vgpu_loop_watch){ .fd = fd, .fn = conn_event, .ctx = c };
	if (vgpu_loop_add(m->loop, &c->watch, c->events) != VGPU_OK) {
		vgpu_budget_give(m->budget, sv->vm->slot, VGPU_BUDGET_CONNS, 1);
		close(fd);
		free(c);
		return NULL;
	}
	c->next = sv->conns;
	sv->conns = c;
	return c;
}

/* Dial @sv's device (see the top), unless it has a connection that is or
 * may become its device's, or was dialed less than DIAL_MS ago. Quiet
 * when nothing listens there (no device, or its QEMU is gone). */
static void dial(struct sock_vm *sv, uint64_t now)
{
	struct mediator *m = sv->m;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct conn *c;
	int fd;

	if (m->stopping || sv->listen_fd < 0 || !sv->dev_path[0] ||
	    (sv->dialed_ns && now - sv->dialed_ns < (uint64_t)DIAL_MS * 1000000u))
		return;
	for (c = sv->conns; c; c = c->next)
		if (c->device || c->dialed)
			return;
	sv->dialed_ns = now;
	memcpy(addr.sun_path, sv->dev_path, strlen(sv->dev_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		close(fd); /* ENOENT, ECONNREFUSED: no device; EAGAIN: next time */
		return;
	}
	if (vgpu_budget_take(m->budget, sv->vm->slot, VGPU_BUDGET_CONNS, 1) != VGPU_OK) {
		close(fd);
		return;
	}
	c = conn_new(sv, fd);
	if (!c)
		return;
	c->dialed = true;
	c->msg_start_ns = now; /* its DEVICE message is due within msg_timeout_ms */
	vgpu_log_guest(&sv->vm->rl, LOG_INFO, "VM %s: dialed its device at %s", sv->vm->uuid,
		       sv->dev_path);
}

/* Close connections whose message started, or whose answers stopped
 * moving, more than msg_timeout_ms ago. */
static void deadline_event(void *ctx, uint32_t events)
{
	struct mediator *m = ctx;
	uint64_t ticks, now = vgpu_now_ns();
	uint64_t limit = (uint64_t)m->set.msg_timeout_ms * 1000000u;

	(void)events;
	if (read(global(m)->timer_fd, &ticks, sizeof(ticks)) < 0) {
		/* EAGAIN */
	}
	for (long long i = 0; i < m->set.max_vms; i++) {
		struct sock_vm *sv = vgpu_vm_state(m, i, SELF);

		for (struct conn *c = sv ? sv->conns : NULL, *next; c; c = next) {
			next = c->next;
			if (c->msg_start_ns && now - c->msg_start_ns > limit)
				refuse(c, "a message not completed in time");
			else if (c->wq_head && c->out_stuck_ns && now - c->out_stuck_ns > limit)
				refuse(c, "answers not read in time");
		}
		if (sv)
			dial(sv, now);
	}
}

static void accept_event(void *ctx, uint32_t events)
{
	struct sock_vm *sv = ctx;
	struct mediator *m = sv->m;
	int fd;

	(void)events;
	fd = accept4(sv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			/* The connection stays in the backlog, so the socket stays
			 * ready: rest it, or the loop would spin. */
			vgpu_log_guest(&sv->vm->rl, LOG_ERR, "VM %s: cannot accept a connection: %s",
				       sv->vm->uuid, strerror(errno));
			vgpu_loop_pause(m->loop, &sv->watch, EPOLLIN, ACCEPT_PAUSE_MS);
		}
		return;
	}
	int rc = m->stopping ? VGPU_SHUTDOWN
			     : vgpu_budget_take(m->budget, sv->vm->slot, VGPU_BUDGET_CONNS, 1);
	if (rc != VGPU_OK) {
		vgpu_log_guest(&sv->vm->rl, LOG_WARNING, "VM %s: connection refused (%s)",
			       sv->vm->uuid, m->stopping ? "stopping" : "too many connections");
		close(fd);
		return;
	}
	conn_new(sv, fd);
}

static int sock_vm_added(struct mediator *m, struct vgpu_vm *vm)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct sock_vm *sv = calloc(1, sizeof(*sv));
	int fd = -1;

	if (!sv)
		return VGPU_NO_MEMORY;
	sv->m = m;
	sv->vm = vm;
	if ((size_t)snprintf(sv->path, sizeof(sv->path), "%s/vm-%s.sock", m->set.run_dir,
			     vm->uuid) >= sizeof(sv->path) - 4) {
		vgpu_log(LOG_ERR, "run directory %s is too long for socket paths", m->set.run_dir);
		goto fail;
	}
	memcpy(addr.sun_path, sv->path, strlen(sv->path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	unlink(sv->path); /* a stale socket of an earlier run */
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || chmod(sv->path, 0660) != 0 ||
	    listen(fd, 16) != 0) {
		vgpu_log(LOG_ERR, "cannot listen on %s: %s", sv->path, strerror(errno));
		goto fail;
	}
	sv->listen_fd = fd;
	sv->watch = (struct vgpu_loop_watch){ .fd = fd, .fn = accept_event, .ctx = sv };
	if (vgpu_loop_add(m->loop, &sv->watch, EPOLLIN) != VGPU_OK)
		goto fail;
	vgpu_vm_set_state(m, vm, SELF, sv);
	if ((size_t)snprintf(sv->dev_path, sizeof(sv->dev_path), "%s.dev", sv->path) >=
	    sizeof(sv->dev_path))
		sv->dev_path[0] = '\0'; /* cannot happen: the path was checked above */
	dial(sv, vgpu_now_ns()); /* a device whose mediator restarted: at once */
	return VGPU_OK;
fail:
	if (fd >= 0) {
		close(fd);
		unlink(sv->path);
	}
	free(sv);
	return VGPU_IO_ERROR;
}

static void sock_vm_removed(struct mediator *m, struct vgpu_vm *vm)
{
	struct sock_vm *sv = vgpu_vm_state(m, vm->slot, SELF);

	if (!sv)
		return;
	while (sv->conns)
		conn_close(sv->conns);
	if (sv->listen_fd >= 0) {
		vgpu_loop_remove(m->loop, &sv->watch);
		close(sv->listen_fd);
		unlink(sv->path);
	}
	free(sv);
	vgpu_vm_set_state(m, vm, SELF, NULL);
}

static int sock_start(struct mediator *m)
{
	struct sock_global *g = calloc(1, sizeof(*g));

	vgpu_transport_set_ctx(m, SELF, g);
	if (!g)
		return VGPU_NO_MEMORY;
	/* The deadline is checked four times per msg_timeout_ms (at least
	 * every 50 ms): a message is cut within 1.25 times it. */
	long long ms = m->set.msg_timeout_ms / 4 > 50 ? m->set.msg_timeout_ms / 4 : 50;
	struct itimerspec its = { .it_interval = { ms / 1000, (ms % 1000) * 1000000 },
				  .it_value = { ms / 1000, (ms % 1000) * 1000000 } };
	g->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	g->timer_watch = (struct vgpu_loop_watch){ .fd = g->timer_fd, .fn = deadline_event, .ctx = m };
	if (g->timer_fd < 0 || timerfd_settime(g->timer_fd, 0, &its, NULL) != 0 ||
	    vgpu_loop_add(m->loop, &g->timer_watch, EPOLLIN) != VGPU_OK)
		return VGPU_IO_ERROR;
	return VGPU_OK;
}

/* Shutdown: no new connections or requests; connections stay open so that
 * answers to what was accepted still reach their clients. */
static void sock_stop_accepting(struct mediator *m)
{
	for (long long i = 0; i < m->set.max_vms; i++) {
		struct sock_vm *sv = vgpu_vm_state(m, i, SELF);

		if (!sv || sv->listen_fd < 0)
			continue;
		vgpu_loop_remove(m->loop, &sv->watch);
		close(sv->listen_fd);
		unlink(sv->path);
		sv->listen_fd = -1;
	}
}

static void sock_stop(struct mediator *m)
{
	struct sock_global *g = global(m);

	if (g && g->timer_fd >= 0) {
		vgpu_loop_remove(m->loop, &g->timer_watch);
		close(g->timer_fd);
	}
	free(g);
	vgpu_transport_set_ctx(m, SELF, NULL);
}

static uint64_t sock_pending(struct mediator *m)
{
	return global(m)->pending;
}

const struct vgpu_transport vgpu_transport_socket = {
	.name = "socket",
	.start = sock_start,
	.stop_accepting = sock_stop_accepting,
	.stop = sock_stop,
	.vm_added = sock_vm_added,
	.vm_removed = sock_vm_removed,
	.respond = sock_respond,
	.pending = sock_pending,
};
