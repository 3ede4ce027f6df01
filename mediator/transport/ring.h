/* SPDX-License-Identifier: MIT */
/*
 * ring.h - serving one ring window (vgpu_ring.h), whoever made it: the
 * local `shm:` transport's memfd windows (shm.c) and the windows a VM's
 * device registers in guest RAM (device.c) share this code, so that every
 * check a descriptor passes is the same on both paths.
 *
 * The owner (a transport) maps the window, fills in the server's fields
 * and calls vgpu_ring_serve(); from then on the doorbell eventfd wakes the
 * loop (edge-triggered, never read: ring.c says why), which copies descriptors out, checks them against the window and
 * admits them (vgpu_request_admit()); completions are posted by the
 * backend thread that finished the request (vgpu_ring_complete()), or by
 * the loop when the server is closing. The owner's transport uses
 * vgpu_ring_respond() and vgpu_ring_complete() as its respond() and
 * complete() ops: a request's reply_ctx is its ring server.
 *
 * Threads: the loop thread takes descriptors, serves and closes; a
 * backend thread that finishes a request posts its completion itself (one
 * thread hand-off less on every request). A server's lock guards what both
 * touch, the fields marked (L): references, the taken count, the
 * completion ring's tail and backlog, the VM pointer (NULL once closed)
 * and the doorbell. It is released (the owner's release()) only on the
 * loop thread, once the owner closed it and every request it took is
 * answered.
 */
#ifndef VGPU_TRANSPORT_RING_H
#define VGPU_TRANSPORT_RING_H

#include <pthread.h>
#include <stdint.h>

#include "mediator.h"

struct vgpu_ring_server {
	/* Set by the owner before vgpu_ring_serve(). */
	struct mediator *m;
	const struct vgpu_transport *transport;
	uint8_t *mem;                /* the window, mapped */
	size_t size;
	uint64_t *pending;           /* the transport's count of answers waiting for
				      * room in a completion ring (atomic) */
	bool staged;                 /* the backend could not pin mem (vgpu_work.staged) */
	/* The client broke the ring's rules: the server stopped serving; the
	 * owner tells the client (e.g. shuts its connection down). Loop thread. */
	void (*abused)(struct vgpu_ring_server *rs);
	/* The last reference is gone (loop thread): release the window. */
	void (*release)(struct vgpu_ring_server *rs);
	/* Optional, for vgpu_ring_drain(): every request taken is answered
	 * in the rings (loop thread). */
	void (*drained)(struct vgpu_ring_server *rs);

	/* The server's own. */
	pthread_mutex_t lock;
	struct vgpu_vm *vm;          /* (L) NULL once closed */
	int refs;                    /* (L) the owner's + each request not yet answered */
	int doorbell_fd;             /* (L) client -> mediator; -1 once no longer served
				      * (written on the loop thread only) */
	int notify_fd;               /* mediator -> client: our end of a datagram socket pair */
	int again_fd;                /* ours alone: come back to the ring (any thread) */
	struct vgpu_loop_watch watch, again_watch;
	uint32_t sq_head;            /* next descriptor to take (private copy) */
	uint32_t cq_tail;            /* (L) next completion slot (private copy) */
	uint32_t taken;              /* (L) descriptors taken, not yet completed */
	bool draining;               /* (L) vgpu_ring_drain(): answers go through the loop */
	struct vgpu_request *backlog_head, *backlog_tail; /* (L) answered, no CQ room yet */
	struct vgpu_streams *streams; /* stream.c's, loop thread only; NULL: none opened */
	/* Loop thread only: in the mediator's list of served rings (m->rings),
	 * and whether SQ_FLAGS says WATCHED (vgpu_rings_watch()). */
	struct vgpu_ring_server *next_served, **pprev_served;
	bool watched;
	/* Loop thread only: descriptors wait for room in the completion ring;
	 * the polling walk passes the ring by until a completion makes room
	 * (again()) or the client rings. */
	bool stalled;
};

/* Write a window's control page (magic, version, entries, size; indexes
 * from 0), whatever its last client left there. */
void vgpu_ring_init_window(uint8_t *mem, size_t size);

/* Loop thread: start serving @rs for @vm; the server takes @doorbell_fd
 * (an eventfd the client writes) and @notify_fd (our end of an AF_UNIX
 * datagram socket pair, the client's end readable when completions were
 * posted) over (closed at release; on failure too). The owner
 * holds the one reference. VGPU_IO_ERROR when the doorbell cannot be
 * watched (then release() was not called: the owner frees). */
int vgpu_ring_serve(struct vgpu_ring_server *rs, struct vgpu_vm *vm, int doorbell_fd,
		    int notify_fd);
/* Loop thread: the owner is done (its VM or client is gone): stop taking
 * descriptors, drop answers that found no room, and drop the owner's
 * reference; release() follows once the last request is answered. */
void vgpu_ring_close(struct vgpu_ring_server *rs);

/* Loop thread: the client asked to stop (a device unregistering its
 * window): take no more descriptors, but answer every one taken in the
 * rings, then call drained() (maybe at once), after which the owner
 * closes. Answers that find the completion ring full are dropped (the
 * client asked to stop, and its doorbell is not served any more), so a
 * client that does not take its completions cannot stall the drain. */
void vgpu_ring_drain(struct vgpu_ring_server *rs);

/* Tell the client something moved: one datagram on our end of the
 * notify pair (completions, or a stream's bytes: stream.c). */
void vgpu_ring_signal(struct vgpu_ring_server *rs);

/*
 * Loop thread: doorbell suppression (vgpu_ring.h). watch: while the loop
 * polls, mark every served ring's submission tail watched (SQ_FLAGS) and
 * take what was published there, doorbell or not; unwatch: before the
 * loop sleeps, clear the marks, then take what was published meanwhile.
 * Each returns whether it took a descriptor (unwatch: then the loop must
 * not sleep, the rings are to be watched again). A ring that only has
 * descriptors it cannot take yet (its completion ring full) does not
 * count and is not looked at again until room is made, so a client that
 * does not take its completions can neither keep the loop polling nor
 * slow its turns.
 */
bool vgpu_rings_watch(struct mediator *m);
bool vgpu_rings_unwatch(struct mediator *m);

/* The transport ops (struct vgpu_transport respond and complete). */
void vgpu_ring_respond(struct mediator *m, struct vgpu_request *req);
bool vgpu_ring_complete(struct mediator *m, struct vgpu_request *req);

#endif
