/* SPDX-License-Identifier: MIT */
/*
 * ring.c - serving a ring window (ring.h): taking descriptors, admitting
 * them, posting completions. Shared by the local shm: windows and the
 * device's windows in guest RAM.
 *
 * Must never: read a descriptor in place (each is copied out before it is
 * decoded, so the client cannot change it between check and use), trust an
 * index the client writes (its tail may only run ENTRIES ahead of our
 * head; our own indexes are kept privately and only published), take more
 * requests than the completion ring can answer, or let the window go while
 * a request still points into it (requests hold references). A backend
 * thread never drops the last reference: while the VM pointer is set the
 * owner holds one; once it is NULL, completions go through the loop.
 *
 * Never block on a descriptor the client shares. The client holds the
 * same open file description of the doorbell eventfd (and, for devices,
 * QEMU made it), so it can turn O_NONBLOCK off and empty or fill the
 * counter between our poll and our read or write: the doorbell is
 * therefore watched edge-triggered and never read or written here (every
 * write of the client's is a new edge); completions are signalled on a
 * datagram socket of our own end with MSG_DONTWAIT; and coming back for
 * more (a batch cut short, room made in a full completion ring) goes
 * through a private eventfd (again_fd) that no one else holds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ring.h"
#include "stream.h"
#include "vgpu_ring.h"
#include "vgpu_mutex.h"

#define BATCH 64 /* descriptors taken per doorbell round, for fairness */

static uint32_t *index_at(struct vgpu_ring_server *rs, size_t off)
{
	return (uint32_t *)(void *)(rs->mem + off);
}

/* Come back to @rs on the loop: its private eventfd. */
static void again(struct vgpu_ring_server *rs)
{
	uint64_t one = 1;

	if (write(rs->again_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: already due, which is all we want. */
	}
}

/* Tell the client completions were posted: one datagram on our own end of
 * the socket pair. A full queue (a client that does not read) is already
 * a signal; MSG_DONTWAIT holds whatever flags the client's end has. */
void vgpu_ring_signal(struct vgpu_ring_server *rs)
{
	static const char one = 1;

	if (send(rs->notify_fd, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		/* EAGAIN: the client has signals it has not read yet. */
	}
}

void vgpu_ring_init_window(uint8_t *mem, size_t size)
{
	uint64_t size64 = size;

	memset(mem, 0, VGPU_RING_PAGE);
	*(uint32_t *)(void *)(mem + VGPU_RING_OFF_MAGIC) = VGPU_RING_MAGIC;
	*(uint32_t *)(void *)(mem + VGPU_RING_OFF_VERSION) = VGPU_RING_VERSION;
	*(uint32_t *)(void *)(mem + VGPU_RING_OFF_ENTRIES) = VGPU_RING_ENTRIES;
	memcpy(mem + VGPU_RING_OFF_WINDOW, &size64, sizeof(size64));
}

/* Loop thread, the last reference gone. */
static void server_free(struct vgpu_ring_server *rs)
{
	if (rs->notify_fd >= 0)
		close(rs->notify_fd);
	rs->notify_fd = -1;
	if (rs->again_fd >= 0) {
		vgpu_loop_remove(rs->m->loop, &rs->again_watch);
		close(rs->again_fd);
	}
	rs->again_fd = -1;
	pthread_mutex_destroy(&rs->lock);
	rs->release(rs);
}

/* Loop thread. */
static void server_unref(struct vgpu_ring_server *rs)
{
	pthread_mutex_lock(&rs->lock);
	bool last = --rs->refs == 0;
	pthread_mutex_unlock(&rs->lock);
	if (last)
		server_free(rs);
}

static uint32_t *sq_flags(struct vgpu_ring_server *rs)
{
	return index_at(rs, VGPU_RING_OFF_SQ_FLAGS);
}

/* Loop thread: out of the list of served rings, the client told to ring
 * again (its doorbell is not watched either from now on: no matter). */
static void unlist(struct vgpu_ring_server *rs)
{
	if (!rs->pprev_served)
		return;
	if (rs->watched)
		__atomic_store_n(sq_flags(rs), 0, __ATOMIC_RELEASE);
	rs->watched = false;
	*rs->pprev_served = rs->next_served;
	if (rs->next_served)
		rs->next_served->pprev_served = rs->pprev_served;
	rs->next_served = NULL;
	rs->pprev_served = NULL;
	rs->m->rings_gen++;
}

/* Loop thread: stop taking descriptors; answers to what was taken still
 * go out. */
static void stop_serving(struct vgpu_ring_server *rs)
{
	int fd;

	unlist(rs);
	pthread_mutex_lock(&rs->lock);
	fd = rs->doorbell_fd;
	rs->doorbell_fd = -1;
	pthread_mutex_unlock(&rs->lock);
	vgpu_streams_close(rs);
	if (fd < 0)
		return;
	vgpu_loop_remove(rs->m->loop, &rs->watch);
	close(fd);
}

/* The client broke the ring's rules: no more service; its owner tells it.
 * Only while served, so the VM is set. */
static void abuse(struct vgpu_ring_server *rs, const char *why)
{
	vgpu_log_guest(&rs->vm->rl, LOG_WARNING, "VM %s: %s ring: %s; detaching", rs->vm->uuid,
		       rs->transport->name, why);
	stop_serving(rs);
	rs->abused(rs);
}

/* Move answers into the completion ring while it has room. Lock held;
 * the caller holds a reference besides the answers' own. */
static void flush_backlog_locked(struct vgpu_ring_server *rs)
{
	uint32_t cq_head;
	bool posted = false, was_full = rs->taken >= VGPU_RING_ENTRIES;

	if (!rs->backlog_head)
		return; /* the usual round: the head's line stays in the client's cache */
	cq_head = __atomic_load_n(index_at(rs, VGPU_RING_OFF_CQ_HEAD), __ATOMIC_ACQUIRE);

	while (rs->backlog_head && rs->cq_tail - cq_head < VGPU_RING_ENTRIES) {
		struct vgpu_request *req = rs->backlog_head;
		struct vgpu_ring_cqe e = {
			.request_id = req->request_id,
			.status = req->status,
			.queue_ns = req->queue_ns,
			.exec_ns = req->exec_ns,
		};
		uint8_t *slot = rs->mem + VGPU_RING_CQ_OFFSET +
				(size_t)(rs->cq_tail % VGPU_RING_ENTRIES) * VGPU_RING_CQE_SIZE;

		vgpu_ring_encode_cqe(&e, slot);
		rs->cq_tail++;
		rs->backlog_head = req->next_done;
		if (!rs->backlog_head)
			rs->backlog_tail = NULL;
		__atomic_sub_fetch(rs->pending, 1, __ATOMIC_RELAXED);
		rs->taken--;
		posted = true;
		vgpu_request_free(req);
		rs->refs--; /* never the last: the caller holds one */
	}
	if (!posted)
		return;
	/* The tail stored, then the client's flag read, both sequentially
	 * consistent (vgpu_ring.h): a client spinning on the tail needs no
	 * signal, and one about to sleep sees the tail. */
	__atomic_store_n(index_at(rs, VGPU_RING_OFF_CQ_TAIL), rs->cq_tail, __ATOMIC_SEQ_CST);
	if (!(__atomic_load_n(index_at(rs, VGPU_RING_OFF_CQ_FLAGS), __ATOMIC_SEQ_CST) &
	      VGPU_RING_CQ_POLLING))
		vgpu_ring_signal(rs);
	if (was_full && rs->doorbell_fd >= 0)
		again(rs); /* descriptors may wait for the room made */
}

/* A stream descriptor (stream.h): done or refused at once, answered in
 * the completion ring like any request. */
static void take_stream(struct vgpu_ring_server *rs, struct vgpu_request *req,
			const struct vgpu_ring_desc *d)
{
	struct vgpu_vm *vm = rs->vm;
	struct vgpu_stream_view v;
	int rc = vgpu_ring_check_stream(d, rs->size, &v);

	if (rc == VGPU_OK && d->params.vm_id != 0 && d->params.vm_id != (uint32_t)vm->vm_id)
		rc = VGPU_DENIED;
	if (rc == VGPU_OK)
		rc = vgpu_streams_desc(rs, &v);
	if (rc != VGPU_OK) {
		vgpu_request_reject(req, vm, rc,
				    rc == VGPU_PROTOCOL ? "malformed stream descriptor"
				    : rc == VGPU_DENIED ? "a stream descriptor naming another vm_id"
				    : rc == VGPU_BUSY	 ? "a stream opened twice"
				    : rc == VGPU_NOT_FOUND ? "a stream closed that is not open"
							   : "a stream's page or rings out of the window");
		return;
	}
	vgpu_request_fail(req, VGPU_OK); /* the answer: done */
}

/* Take one descriptor at sq_head and admit or refuse it; false (nothing
 * taken) when there is no memory to answer it with. */
static bool take_one(struct vgpu_ring_server *rs)
{
	struct mediator *m = rs->m;
	struct vgpu_vm *vm = rs->vm;
	uint8_t raw[VGPU_RING_DESC_SIZE];
	struct vgpu_ring_desc d;
	struct vgpu_ring_view rv;
	/* The request first: a descriptor is only taken once it can be answered. */
	struct vgpu_request *req = vgpu_request_new(m, vm, rs->transport, rs, 0, 0);
	int rc;

	if (!req)
		return false;
	/* Our copy: the client may rewrite the slot at any time from here on. */
	memcpy(raw, rs->mem + VGPU_RING_SQ_OFFSET +
			    (size_t)(rs->sq_head % VGPU_RING_ENTRIES) * VGPU_RING_DESC_SIZE,
	       sizeof(raw));
	rs->sq_head++;
	rc = vgpu_ring_decode_desc(raw, &d);
	req->request_id = d.request_id;
	req->op = d.op;
	pthread_mutex_lock(&rs->lock);
	rs->refs++;
	rs->taken++;
	pthread_mutex_unlock(&rs->lock);
	if (rc == VGPU_OK && d.op == VGPU_RING_OP_STREAM) {
		take_stream(rs, req, &d);
		return true;
	}
	if (rc == VGPU_OK)
		rc = vgpu_ring_check_desc(&d, &m->limits, rs->size, &rv);
	if (rc != VGPU_OK) {
		vgpu_request_reject(req, vm, rc,
				    rc == VGPU_LIMIT	   ? "over the size limits"
				    : rc == VGPU_PROTOCOL ? "malformed ring descriptor"
							  : "bad sizes or offsets in its descriptor");
		return true;
	}
	struct vgpu_request_view view = {
		.op = rv.op,
		.params = rv.params,
		.out_count = rv.out_count,
	};
	for (int i = 0; i < rv.n_inputs; i++) {
		view.in[i] = (const float *)(const void *)(rs->mem + rv.in_off[i]);
		view.in_count[i] = rv.in_count[i];
	}
	req->work.staged = rs->staged;
	vgpu_request_admit(req, vm, &view, (float *)(void *)(rs->mem + rv.out_off));
	return true;
}

/* How many more descriptors the completion ring can answer. Backend
 * threads only lower `taken`, so the figure stays safe while it ages. */
static uint32_t room(struct vgpu_ring_server *rs)
{
	pthread_mutex_lock(&rs->lock);
	uint32_t r = VGPU_RING_ENTRIES - rs->taken;
	pthread_mutex_unlock(&rs->lock);
	return r;
}

/* Take what the client published, as far as the completion ring can
 * answer it, at most BATCH per round; returns how many were taken. Loop
 * thread; rs->doorbell_fd is only written on it, so it reads it without
 * the lock. */
static int take_descriptors(struct vgpu_ring_server *rs)
{
	uint32_t tail = __atomic_load_n(index_at(rs, VGPU_RING_OFF_SQ_TAIL), __ATOMIC_ACQUIRE);
	uint32_t budget;
	bool oom = false;
	int n = 0;

	rs->stalled = false;
	if (tail - rs->sq_head > VGPU_RING_ENTRIES) {
		abuse(rs, "submission tail out of range");
		return 0;
	}
	budget = room(rs);
	while (rs->doorbell_fd >= 0 && rs->sq_head != tail && budget > 0 && n < BATCH) {
		if (!take_one(rs)) {
			oom = true; /* logged; left in the ring for the next doorbell */
			break;
		}
		budget--;
		n++;
	}
	if (!oom && rs->doorbell_fd >= 0 && rs->sq_head != tail) {
		if (room(rs) > 0)
			again(rs); /* more to take: come back next round */
		else
			rs->stalled = true; /* flush_backlog_locked() calls again() */
	}
	__atomic_store_n(index_at(rs, VGPU_RING_OFF_SQ_HEAD), rs->sq_head, __ATOMIC_RELEASE);
	return n;
}

/* One round: post what waited for room, take what the client published.
 * Whether a descriptor was taken (rs may be gone on return). */
static bool take_round(struct vgpu_ring_server *rs)
{
	int n = 0;

	pthread_mutex_lock(&rs->lock);
	rs->refs++; /* hold rs across the callbacks below */
	flush_backlog_locked(rs);
	pthread_mutex_unlock(&rs->lock);
	if (rs->doorbell_fd >= 0) {
		n = take_descriptors(rs);
		vgpu_streams_pump(rs);
	}
	server_unref(rs);
	return n > 0;
}

/* Take what the served rings published, doorbell or not; whether any
 * descriptor was taken. Every ring is looked at (unwatch's promise): a
 * walk whose callouts removed a ring from the list starts again (each
 * restart is one removal fewer left). */
static bool take_published(struct mediator *m)
{
	bool took = false;
	uint64_t gen;

	do {
		gen = m->rings_gen;
		for (struct vgpu_ring_server *rs = m->rings, *next; rs && m->rings_gen == gen;
		     rs = next) {
			next = rs->next_served;
			/* Sequentially consistent: after the flag's store in unwatch. */
			if (!rs->stalled &&
			    __atomic_load_n(index_at(rs, VGPU_RING_OFF_SQ_TAIL), __ATOMIC_SEQ_CST) !=
				    rs->sq_head)
				took |= take_round(rs);
		}
	} while (m->rings_gen != gen);
	return took;
}

bool vgpu_rings_watch(struct mediator *m)
{
	for (struct vgpu_ring_server *rs = m->rings; rs; rs = rs->next_served)
		if (!rs->watched) {
			__atomic_store_n(sq_flags(rs), VGPU_RING_SQ_WATCHED, __ATOMIC_RELEASE);
			rs->watched = true;
		}
	m->rings_watched = m->rings != NULL;
	return take_published(m);
}

bool vgpu_rings_unwatch(struct mediator *m)
{
	if (!m->rings_watched)
		return false;
	m->rings_watched = false;
	for (struct vgpu_ring_server *rs = m->rings; rs; rs = rs->next_served)
		if (rs->watched) {
			/* Before the tails are read: the other half of the
			 * client's tail store and flag load (vgpu_ring_publish()). */
			__atomic_store_n(sq_flags(rs), 0, __ATOMIC_SEQ_CST);
			rs->watched = false;
		}
	return take_published(m);
}

/* The doorbell rang: an edge, not read (see the top). */
static void doorbell_event(void *ctx, uint32_t events)
{
	(void)events;
	take_round(ctx);
}

/* We asked to come back: our own eventfd, emptied. */
static void again_event(void *ctx, uint32_t events)
{
	struct vgpu_ring_server *rs = ctx;
	uint64_t n;

	(void)events;
	if (read(rs->again_fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: nothing due; look anyway. */
	}
	take_round(rs);
}

/* Drop the answers that found no room in the completion ring (a closing
 * client, or one that asked to stop and does not take them). Lock held;
 * the caller holds a reference besides the answers' own. */
static void drop_backlog_locked(struct vgpu_ring_server *rs)
{
	while (rs->backlog_head) {
		struct vgpu_request *req = rs->backlog_head;

		rs->backlog_head = req->next_done;
		__atomic_sub_fetch(rs->pending, 1, __ATOMIC_RELAXED);
		rs->taken--;
		vgpu_request_free(req);
		rs->refs--; /* never the last: the caller's is still held */
	}
	rs->backlog_tail = NULL;
}

int vgpu_ring_serve(struct vgpu_ring_server *rs, struct vgpu_vm *vm, int doorbell_fd,
		    int notify_fd)
{
	rs->next_served = NULL;
	rs->pprev_served = NULL;
	if (vgpu_mutex_init(&rs->lock) != 0) {
		close(doorbell_fd);
		close(notify_fd);
		return VGPU_NO_MEMORY;
	}
	rs->doorbell_fd = doorbell_fd;
	rs->notify_fd = notify_fd;
	rs->sq_head = rs->cq_tail = rs->taken = 0;
	rs->backlog_head = rs->backlog_tail = NULL;
	rs->streams = NULL;
	rs->again_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	rs->watch = (struct vgpu_loop_watch){ .fd = doorbell_fd, .fn = doorbell_event, .ctx = rs };
	rs->again_watch = (struct vgpu_loop_watch){ .fd = rs->again_fd, .fn = again_event, .ctx = rs };
	if (rs->again_fd < 0 || vgpu_loop_add(rs->m->loop, &rs->again_watch, EPOLLIN) != VGPU_OK) {
		if (rs->again_fd >= 0)
			close(rs->again_fd);
		close(doorbell_fd);
		close(notify_fd);
		pthread_mutex_destroy(&rs->lock);
		return VGPU_IO_ERROR;
	}
	if (vgpu_loop_add(rs->m->loop, &rs->watch, EPOLLIN | EPOLLET) != VGPU_OK) {
		vgpu_loop_remove(rs->m->loop, &rs->again_watch);
		close(rs->again_fd);
		close(doorbell_fd);
		close(notify_fd);
		pthread_mutex_destroy(&rs->lock);
		return VGPU_IO_ERROR;
	}
	rs->vm = vm;
	rs->refs = 1;
	rs->draining = false;
	rs->watched = false;
	rs->stalled = false;
	rs->next_served = rs->m->rings;
	if (rs->next_served)
		rs->next_served->pprev_served = &rs->next_served;
	rs->pprev_served = &rs->m->rings;
	rs->m->rings = rs;
	/* Descriptors published before we watched: look once. */
	again(rs);
	return VGPU_OK;
}

void vgpu_ring_drain(struct vgpu_ring_server *rs)
{
	stop_serving(rs);
	pthread_mutex_lock(&rs->lock);
	rs->draining = true;
	/* What fits goes out now; what does not is dropped: the client asked
	 * to stop and no doorbell of its will move it any more. */
	flush_backlog_locked(rs);
	drop_backlog_locked(rs);
	bool done = rs->taken == 0;
	pthread_mutex_unlock(&rs->lock);
	if (done)
		rs->drained(rs);
}

void vgpu_ring_close(struct vgpu_ring_server *rs)
{
	/* Closed and drained in one step: from here on backend threads hand
	 * their completions to the loop, and answers that found no room are
	 * dropped with the client. */
	pthread_mutex_lock(&rs->lock);
	rs->vm = NULL;
	drop_backlog_locked(rs); /* the owner's reference is dropped below */
	pthread_mutex_unlock(&rs->lock);
	stop_serving(rs);
	server_unref(rs);
}

/* Queue @req's answer and post what fits. Lock held, VM set. */
static void answer_locked(struct vgpu_ring_server *rs, struct vgpu_request *req)
{
	req->next_done = NULL;
	if (rs->backlog_tail)
		rs->backlog_tail->next_done = req;
	else
		rs->backlog_head = req;
	rs->backlog_tail = req;
	__atomic_add_fetch(rs->pending, 1, __ATOMIC_RELAXED);
	flush_backlog_locked(rs);
}

/* A backend thread: post the completion now, unless the server is
 * closing or draining (then the loop answers, and may free it). */
bool vgpu_ring_complete(struct mediator *m, struct vgpu_request *req)
{
	struct vgpu_ring_server *rs = req->reply_ctx;

	(void)m;
	pthread_mutex_lock(&rs->lock);
	if (!rs->vm || rs->draining) {
		pthread_mutex_unlock(&rs->lock);
		return false;
	}
	/* The owner's reference outlives this: vm is set. */
	answer_locked(rs, req);
	pthread_mutex_unlock(&rs->lock);
	return true;
}

/* Loop thread: refusals at admission, and completions that a backend
 * thread left to the loop: posted, or dropped with a closed server. */
void vgpu_ring_respond(struct mediator *m, struct vgpu_request *req)
{
	struct vgpu_ring_server *rs = req->reply_ctx;

	if (vgpu_ring_complete(m, req))
		return;
	pthread_mutex_lock(&rs->lock);
	if (rs->vm && rs->draining) {
		rs->refs++; /* across drained(), which may close */
		answer_locked(rs, req);
		drop_backlog_locked(rs); /* no room: the client asked to stop */
		bool done = rs->taken == 0;
		pthread_mutex_unlock(&rs->lock);
		if (done)
			rs->drained(rs);
		server_unref(rs);
		return;
	}
	rs->taken--;
	pthread_mutex_unlock(&rs->lock);
	vgpu_request_free(req);
	server_unref(rs);
}
