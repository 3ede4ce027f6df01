/*
 * socket.c - the socket transport: one Unix stream socket per registered
 * VM, RUNDIR/vm-<uuid>.sock. Whoever connects to a VM's socket speaks for
 * that VM (identity comes from the channel); the QEMU device and local
 * clients connect here. Requests stream in back to back; responses go out
 * in completion order, matched by request_id. A connection's first message
 * may instead ask for a shared-memory window (vgpu_ring.h): the reply
 * carries the window's descriptors, and from then on the connection only
 * stands for the session's life (transport/shm.c); a byte sent on it
 * after that ends both.
 *
 * Must never: block the loop (every fd is non-blocking), read a payload
 * larger than the limits allow, keep a connection whose framing is broken
 * (a malformed header closes it: the stream cannot be resynchronised), or
 * free a connection that requests still point at (reference counts).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "mediator.h"
#include "vgpu_ring.h"

#define IDX 0  /* this transport's index in transport_state */

struct sock_global {
	uint64_t pending;            /* responses queued for writing */
};

struct conn;

struct sock_vm {
	struct mediator *m;
	struct vgpu_vm *vm;
	int listen_fd;
	struct vgpu_loop_watch watch;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct conn *conns;
	int n_conns;
};

struct conn {
	struct sock_vm *sv;          /* NULL once the VM is gone */
	struct mediator *m;
	int fd;
	struct vgpu_loop_watch watch;
	int refs;                    /* the open socket + each request not yet answered */
	bool open;
	bool want_out;               /* EPOLLOUT armed */
	bool used;                   /* a request came: no attach any more */
	void *session;               /* transport/shm.c's, once attached */
	uint8_t hdr[VGPU_PROTO_HEADER_SIZE];
	size_t hdr_got;
	struct vgpu_msg_header h;
	uint8_t *payload;            /* being read: h.payload_len bytes */
	size_t payload_got;
	struct vgpu_request *wq_head, *wq_tail;
	size_t wq_off;               /* bytes of wq_head's response written */
	struct conn *next;
};

static struct sock_global *global(struct mediator *m)
{
	return m->transport_ctx[IDX];
}

static void conn_unref(struct conn *c)
{
	if (--c->refs == 0)
		free(c);
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
	close(c->fd);
	m->backend->host_free(m->backend_ctx, c->payload, c->h.payload_len);
	c->payload = NULL;
	while (c->wq_head) {
		struct vgpu_request *req = c->wq_head;

		c->wq_head = req->next_done;
		global(m)->pending--;
		vgpu_request_free(req);
		c->refs--; /* never the last: the socket's own ref is still held */
	}
	c->wq_tail = NULL;
	if (c->sv) {
		struct conn **pp = &c->sv->conns;

		while (*pp && *pp != c)
			pp = &(*pp)->next;
		if (*pp)
			*pp = c->next;
		c->sv->n_conns--;
		c->sv = NULL;
	}
	conn_unref(c);
}

static void set_events(struct conn *c, bool out)
{
	if (c->want_out == out)
		return;
	c->want_out = out;
	vgpu_loop_modify(c->m->loop, &c->watch, EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0));
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
				set_events(c, true);
				return true;
			}
			conn_close(c);
			return false;
		}
		c->wq_off += (size_t)n;
		if (c->wq_off < req->resp_len)
			continue;
		c->wq_head = req->next_done;
		if (!c->wq_head)
			c->wq_tail = NULL;
		c->wq_off = 0;
		global(c->m)->pending--;
		vgpu_request_free(req);
		conn_unref(c); /* the socket's own ref keeps c alive here */
	}
	set_events(c, false);
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
	global(m)->pending++;
	if (!c->want_out)
		flush(c);
}

/* A guest broke the framing: log (rate-limited), count, close. */
static void refuse(struct conn *c, const char *why)
{
	struct vgpu_vm *vm = c->sv->vm;

	vgpu_log_guest(&vm->rl, LOG_WARNING, "VM %s: %s on its socket; closing the connection",
		       vm->uuid, why);
	vgpu_stats_record(c->m->stats, vm->slot, vm->priority, VGPU_OUTCOME_REJECTED, 0, 0, 0, 0);
	conn_close(c);
}

/* The attach message is in c->payload: make the window and answer with
 * its descriptors. false when the connection was closed. */
static bool attach(struct conn *c)
{
	struct mediator *m = c->m;
	struct vgpu_vm *vm = c->sv->vm;
	uint8_t reply[VGPU_RING_ATTACH_MSG];
	union {
		char buf[CMSG_SPACE(3 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = reply, .iov_len = sizeof(reply) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	void *session = NULL;
	uint64_t want = 0;
	int fds[3] = { -1, -1, -1 };
	int rc = vgpu_ring_parse_attach(c->hdr, &c->h, c->payload, &want);

	m->backend->host_free(m->backend_ctx, c->payload, c->h.payload_len);
	c->payload = NULL;
	c->hdr_got = 0;
	if (rc != VGPU_OK) {
		refuse(c, "malformed attach message");
		return false;
	}
	rc = vgpu_shm_attach(m, vm, want, c->fd, &session, fds);
	if (rc != VGPU_OK)
		vgpu_log_guest(&vm->rl, LOG_WARNING,
			       "VM %s: shared-memory window of %llu bytes refused: %s", vm->uuid,
			       (unsigned long long)want, vgpu_strerror(rc));
	vgpu_ring_encode_attached(rc, rc == VGPU_OK ? VGPU_RING_DATA_OFFSET + want : 0, reply);
	if (rc == VGPU_OK) {
		struct cmsghdr *cm;

		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof(ctl.buf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(3 * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	}
	/* Nothing else was ever written here: the socket buffer has room. */
	ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	c->session = session;
	if (n != (ssize_t)sizeof(reply)) {
		conn_close(c);
		return false;
	}
	return true;
}

/* One read step; false when the connection was closed. */
static bool read_some(struct conn *c)
{
	struct mediator *m = c->m;
	struct vgpu_vm *vm = c->sv->vm;
	ssize_t n;

	if (c->session) {
		uint8_t byte;

		/* Attached: the connection only says when the client is gone. */
		n = recv(c->fd, &byte, 1, 0);
		if (n > 0) {
			refuse(c, "data after the window was attached");
			return false;
		}
	} else if (c->hdr_got < sizeof(c->hdr)) {
		n = recv(c->fd, c->hdr + c->hdr_got, sizeof(c->hdr) - c->hdr_got, 0);
	} else {
		n = recv(c->fd, c->payload + c->payload_got, c->h.payload_len - c->payload_got, 0);
	}
	if (n == 0) {
		conn_close(c);
		return false;
	}
	if (n < 0) {
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
			return errno == EINTR;
		conn_close(c);
		return false;
	}
	if (c->hdr_got < sizeof(c->hdr)) {
		c->hdr_got += (size_t)n;
		if (c->hdr_got < sizeof(c->hdr))
			return true;
		int rc = vgpu_proto_decode_header(c->hdr, &m->limits, &c->h);
		if (rc != VGPU_OK || (c->h.type != VGPU_MSG_REQUEST && c->h.type != VGPU_MSG_ATTACH)) {
			refuse(c, rc == VGPU_LIMIT ? "oversized header" : "malformed header");
			return false;
		}
		if (c->h.type == VGPU_MSG_ATTACH &&
		    (c->used || c->h.payload_len != VGPU_PROTO_PARAMS_SIZE)) {
			refuse(c, c->used ? "attach message after requests" : "malformed attach message");
			return false;
		}
		c->payload = m->backend->host_alloc(m->backend_ctx, c->h.payload_len ? c->h.payload_len : 1);
		if (!c->payload) {
			vgpu_log(LOG_ERR, "VM %s: no memory for a %u-byte request; closing", vm->uuid,
				 c->h.payload_len);
			conn_close(c);
			return false;
		}
		c->payload_got = 0;
	} else {
		c->payload_got += (size_t)n;
	}
	if (c->payload_got < c->h.payload_len)
		return true;
	if (c->h.type == VGPU_MSG_ATTACH)
		return attach(c);
	/* A whole message: admission takes the payload. */
	c->used = true;
	uint8_t *payload = c->payload;
	c->payload = NULL;
	c->hdr_got = 0;
	c->refs++;
	vgpu_admit(m, vm, &vgpu_transport_socket, c, c->hdr, &c->h, payload);
	return c->open;
}

static void conn_event(void *ctx, uint32_t events)
{
	struct conn *c = ctx;

	c->refs++; /* hold c across the callbacks below */
	if ((events & EPOLLOUT) && c->open)
		flush(c);
	if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && c->open) {
		/* Bounded work per event, for fairness between connections. */
		for (int i = 0; i < 64 && c->open && c->sv && read_some(c); i++)
			;
	}
	conn_unref(c);
}

static void accept_event(void *ctx, uint32_t events)
{
	struct sock_vm *sv = ctx;
	struct mediator *m = sv->m;
	int fd;

	(void)events;
	fd = accept4(sv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (sv->n_conns >= m->set.max_conns_per_vm || m->stopping) {
		vgpu_log_guest(&sv->vm->rl, LOG_WARNING, "VM %s: connection refused (%s)",
			       sv->vm->uuid, m->stopping ? "stopping" : "too many connections");
		close(fd);
		return;
	}
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->sv = sv;
	c->m = m;
	c->fd = fd;
	c->refs = 1;
	c->open = true;
	c->watch = (struct vgpu_loop_watch){ .fd = fd, .fn = conn_event, .ctx = c };
	if (vgpu_loop_add(m->loop, &c->watch, EPOLLIN | EPOLLRDHUP) != VGPU_OK) {
		close(fd);
		free(c);
		return;
	}
	c->next = sv->conns;
	sv->conns = c;
	sv->n_conns++;
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
			     vm->uuid) >= sizeof(sv->path)) {
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
	vm->transport_state[IDX] = sv;
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
	struct sock_vm *sv = vm->transport_state[IDX];

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
	vm->transport_state[IDX] = NULL;
}

static int sock_start(struct mediator *m)
{
	m->transport_ctx[IDX] = calloc(1, sizeof(struct sock_global));
	return m->transport_ctx[IDX] ? VGPU_OK : VGPU_NO_MEMORY;
}

/* Shutdown: no new connections or requests; connections stay open so that
 * answers to what was accepted still reach their clients. */
static void sock_stop_accepting(struct mediator *m)
{
	for (long long i = 0; i < m->set.max_vms; i++) {
		struct sock_vm *sv = vgpu_vm_state(m, i, IDX);

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
	free(m->transport_ctx[IDX]);
	m->transport_ctx[IDX] = NULL;
}

static uint64_t sock_pending(struct mediator *m)
{
	return global(m)->pending;
}

const struct vgpu_transport vgpu_transport_socket = {
	.name = "socket",
	.index = IDX,
	.start = sock_start,
	.stop_accepting = sock_stop_accepting,
	.stop = sock_stop,
	.vm_added = sock_vm_added,
	.vm_removed = sock_vm_removed,
	.respond = sock_respond,
	.pending = sock_pending,
};
