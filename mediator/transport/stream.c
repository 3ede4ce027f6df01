/* SPDX-License-Identifier: MIT */
/*
 * stream.c - byte streams through a ring window (stream.h): opening and
 * closing them, handing each to the VM's CUDA worker, moving its bytes.
 *
 * Must never: block (the worker's end may be full or silent), read a
 * guest index twice in one decision, write outside the stream's rings
 * (offsets are positions modulo the ring's size, the rings checked within
 * the window when opened), or keep a socket once its stream or window is
 * gone.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "stream.h"

struct stream {
	struct vgpu_ring_server *rs;
	uint32_t index;
	bool open;
	uint8_t *ctl, *tx, *rx;       /* in the window */
	uint64_t size;                /* each ring's bytes, a power of two */
	uint64_t tx_head, rx_tail;    /* ours: published, never read back */
	int fd;                       /* our end of the pair with the worker; -1 before */
	bool watched;                 /* fd is in the loop */
	uint32_t events;              /* what the loop watches fd for */
	bool stalled;                 /* RX full: waiting for the guest to read */
	bool ended;                   /* no more bytes either way (end()) */
	struct vgpu_loop_watch watch;
};

struct vgpu_streams {
	struct stream s[VGPU_STREAMS_MAX];
};

static _Atomic uint64_t *u64_at(struct stream *s, size_t off)
{
	return (_Atomic uint64_t *)(void *)(s->ctl + off);
}

static _Atomic uint32_t *u32_at(struct stream *s, size_t off)
{
	return (_Atomic uint32_t *)(void *)(s->ctl + off);
}

/* The guest sleeps for bytes or room: wake it. Our index was published
 * before this is read (both sequentially consistent, as the guest's
 * WAITING and its reading of our index are). */
static void wake(struct stream *s, bool always)
{
	if (always || atomic_load(u32_at(s, VGPU_STREAM_OFF_WAITING)))
		vgpu_ring_signal(s->rs);
}

static void watch_for(struct stream *s, uint32_t events)
{
	if (!s->watched || events == s->events)
		return;
	if (vgpu_loop_modify(s->rs->m->loop, &s->watch, events) == VGPU_OK)
		s->events = events;
}

/* The host's end is gone, or the guest broke the stream's rules: no more
 * bytes either way; the guest sees CLOSED once it has read RX's. */
static void unwatch(struct stream *s)
{
	if (s->watched)
		vgpu_loop_remove(s->rs->m->loop, &s->watch);
	s->watched = false;
	s->events = 0;
}

static void end(struct stream *s)
{
	s->ended = true;
	if (s->fd >= 0) {
		unwatch(s);
		close(s->fd);
		s->fd = -1;
		s->events = 0;
	}
	atomic_store(u32_at(s, VGPU_STREAM_OFF_CLOSED), 1);
	wake(s, true);
}

static void broke(struct stream *s, const char *why)
{
	struct vgpu_vm *vm = s->rs->vm;

	if (vm)
		vgpu_log_guest(&vm->rl, LOG_WARNING, "VM %s: stream %u: %s; closed", vm->uuid,
			       s->index, why);
	end(s);
}

static void rx_pump(struct stream *s);
static void tx_pump(struct stream *s);

static void socket_event(void *ctx, uint32_t events)
{
	struct stream *s = ctx;

	if (events & EPOLLOUT)
		tx_pump(s);
	if (s->fd >= 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		rx_pump(s);
	/* The worker's end is gone but RX is full: epoll reports the hang-up
	 * whatever we watch, so stop watching; the guest's reads (its
	 * doorbell, vgpu_streams_pump) drain the rest and find the end. */
	if (s->fd >= 0 && s->stalled && (events & (EPOLLHUP | EPOLLERR)))
		unwatch(s);
}

/* Copy @len bytes at position @pos of ring @ring (of s->size) to @out. */
static void ring_read(const struct stream *s, const uint8_t *ring, uint64_t pos, void *out,
		      size_t len)
{
	size_t off = (size_t)(pos & (s->size - 1)), first = s->size - off < len ? s->size - off : len;

	memcpy(out, ring + off, first);
	memcpy((uint8_t *)out + first, ring, len - first);
}

/* The stream's first message header is in TX: hand the stream to the
 * VM's worker with it. false when the stream ended. */
static bool hand_over(struct stream *s)
{
	struct vgpu_ring_server *rs = s->rs;
	uint8_t head[VGPU_PROTO_HEADER_SIZE];
	struct vgpu_msg_header h;
	int sv[2];

	/* Our copy: the guest may rewrite the ring at any time. */
	ring_read(s, s->tx, s->tx_head, head, sizeof(head));
	if (vgpu_proto_decode_header(head, &rs->m->limits, &h) != VGPU_OK ||
	    h.type != VGPU_MSG_CUDA || h.op < VGPU_CUDA_DESCRIBE || h.op > VGPU_CUDA_OPEN) {
		broke(s, "its first message is not DESCRIBE or OPEN");
		return false;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
		vgpu_log(LOG_WARNING, "VM %s: stream %u: no socket pair: %s", rs->vm->uuid, s->index,
			 strerror(errno));
		end(s);
		return false;
	}
	int rc = vgpu_cuda_handoff(rs->m, rs->vm, sv[1], head);

	close(sv[1]);
	if (rc != VGPU_OK) {
		close(sv[0]);
		end(s);
		return false;
	}
	s->fd = sv[0];
	s->watch = (struct vgpu_loop_watch){ .fd = s->fd, .fn = socket_event, .ctx = s };
	if (vgpu_loop_add(rs->m->loop, &s->watch, EPOLLIN) != VGPU_OK) {
		end(s);
		return false;
	}
	s->watched = true;
	s->events = EPOLLIN;
	s->tx_head += sizeof(head);
	return true;
}

/* Move TX's bytes to the worker, as far as its socket takes them. */
static void tx_pump(struct stream *s)
{
	uint64_t tail = atomic_load_explicit(u64_at(s, VGPU_STREAM_OFF_TX_TAIL),
					     memory_order_acquire);
	uint64_t was = s->tx_head;
	bool blocked = false;

	if (s->ended)
		return;
	if (tail - s->tx_head > s->size) {
		broke(s, "TX tail out of range");
		return;
	}
	if (s->fd < 0 && (tail - s->tx_head < VGPU_PROTO_HEADER_SIZE || !hand_over(s)))
		return;
	while (s->tx_head != tail) {
		size_t off = (size_t)(s->tx_head & (s->size - 1));
		size_t n = tail - s->tx_head < s->size - off ? (size_t)(tail - s->tx_head)
							      : s->size - off;
		ssize_t k = send(s->fd, s->tx + off, n, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN) {
			blocked = true;
			break;
		}
		if (k <= 0) {
			end(s); /* the worker's end is gone */
			return;
		}
		s->tx_head += (uint64_t)k;
	}
	watch_for(s, (s->stalled ? 0 : EPOLLIN) | (blocked ? EPOLLOUT : 0));
	if (s->tx_head != was) {
		atomic_store(u64_at(s, VGPU_STREAM_OFF_TX_HEAD), s->tx_head);
		wake(s, false);
	}
}

/* Move the worker's bytes into RX, as far as it has room: one ring's
 * worth at most per call while the loop watches the socket (it then
 * serves others and comes back: the socket is still readable); to the
 * end once it does not (unwatch()). */
static void rx_pump(struct stream *s)
{
	uint64_t was = s->rx_tail;

	while (!s->watched || s->rx_tail - was < s->size) {
		uint64_t head = atomic_load(u64_at(s, VGPU_STREAM_OFF_RX_HEAD));
		uint64_t held = s->rx_tail - head;

		if (held > s->size) {
			broke(s, "RX head out of range");
			return;
		}
		if (held == s->size) {
			/* Full: say so, then look once more (the guest reads
			 * STALLED after it moves its head). */
			if (!s->stalled) {
				s->stalled = true;
				atomic_store(u32_at(s, VGPU_STREAM_OFF_STALLED), 1);
				continue;
			}
			watch_for(s, s->events & ~(uint32_t)EPOLLIN);
			break;
		}
		if (s->stalled) {
			s->stalled = false;
			atomic_store(u32_at(s, VGPU_STREAM_OFF_STALLED), 0);
			watch_for(s, s->events | EPOLLIN);
		}
		size_t off = (size_t)(s->rx_tail & (s->size - 1));
		size_t room = s->size - held;
		size_t n = room < s->size - off ? room : s->size - off;
		ssize_t k = recv(s->fd, s->rx + off, n, MSG_DONTWAIT);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN)
			break;
		if (k <= 0) {
			if (s->rx_tail != was)
				atomic_store(u64_at(s, VGPU_STREAM_OFF_RX_TAIL), s->rx_tail);
			end(s); /* the worker closed it, or died */
			return;
		}
		s->rx_tail += (uint64_t)k;
	}
	if (s->rx_tail != was) {
		atomic_store(u64_at(s, VGPU_STREAM_OFF_RX_TAIL), s->rx_tail);
		wake(s, false);
	}
}

static void close_one(struct stream *s)
{
	if (s->fd >= 0) {
		unwatch(s);
		close(s->fd);
	}
	*s = (struct stream){ .fd = -1 };
}

int vgpu_streams_desc(struct vgpu_ring_server *rs, const struct vgpu_stream_view *v)
{
	struct stream *s;

	if (!rs->streams) {
		if (!v->open)
			return VGPU_NOT_FOUND;
		rs->streams = calloc(1, sizeof(*rs->streams));
		if (!rs->streams)
			return VGPU_NO_MEMORY;
		for (int i = 0; i < VGPU_STREAMS_MAX; i++)
			rs->streams->s[i].fd = -1;
	}
	s = &rs->streams->s[v->index];
	if (!v->open) {
		if (!s->open)
			return VGPU_NOT_FOUND;
		close_one(s);
		return VGPU_OK;
	}
	if (s->open)
		return VGPU_BUSY;
	*s = (struct stream){
		.rs = rs, .index = v->index, .open = true, .fd = -1,
		.ctl = rs->mem + v->ctl_off, .size = v->ring_bytes,
	};
	s->tx = s->ctl + VGPU_STREAM_CTL;
	s->rx = s->tx + s->size;
	/* Our fields from 0, whatever the page held. */
	atomic_store(u64_at(s, VGPU_STREAM_OFF_TX_HEAD), 0);
	atomic_store(u64_at(s, VGPU_STREAM_OFF_RX_TAIL), 0);
	atomic_store(u32_at(s, VGPU_STREAM_OFF_STALLED), 0);
	atomic_store(u32_at(s, VGPU_STREAM_OFF_CLOSED), 0);
	return VGPU_OK;
}

void vgpu_streams_pump(struct vgpu_ring_server *rs)
{
	if (!rs->streams)
		return;
	for (int i = 0; i < VGPU_STREAMS_MAX; i++) {
		struct stream *s = &rs->streams->s[i];

		if (!s->open || s->ended)
			continue;
		tx_pump(s);
		if (s->fd >= 0 && (s->stalled || !s->watched))
			rx_pump(s);
	}
}

void vgpu_streams_close(struct vgpu_ring_server *rs)
{
	if (!rs->streams)
		return;
	for (int i = 0; i < VGPU_STREAMS_MAX; i++)
		if (rs->streams->s[i].open)
			close_one(&rs->streams->s[i]);
	free(rs->streams);
	rs->streams = NULL;
}
