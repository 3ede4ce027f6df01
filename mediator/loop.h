/* SPDX-License-Identifier: MIT */
/*
 * loop.h - the mediator's event loop: one thread, epoll, a callback per fd.
 * Everything that touches VMs and connections runs on this thread; other
 * threads reach it only by writing to an eventfd that it watches: the
 * mediator's done_efd (backend threads, dispatch.c; read by
 * vgpu_deliver_done in request.c) and the worker pool's (worker.c).
 */
#ifndef VGPU_MEDIATOR_LOOP_H
#define VGPU_MEDIATOR_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct vgpu_loop;

/* Called on the loop thread with the epoll events that fired. */
typedef void (*vgpu_loop_fn)(void *ctx, uint32_t events);

struct vgpu_loop_watch {
	int fd;
	vgpu_loop_fn fn;
	void *ctx;
	/* The loop's, while paused (vgpu_loop_pause). */
	bool paused;
	uint32_t resume_events;
	uint64_t resume_ns;
	struct vgpu_loop_watch *next_paused;
};

int vgpu_loop_new(struct vgpu_loop **ret);
void vgpu_loop_free(struct vgpu_loop *loop);

/* Watch @w->fd for @events (EPOLLIN, EPOLLOUT...). @w must stay alive until
 * removed. modify changes the events of a watched fd. */
int vgpu_loop_add(struct vgpu_loop *loop, struct vgpu_loop_watch *w, uint32_t events);
int vgpu_loop_modify(struct vgpu_loop *loop, struct vgpu_loop_watch *w, uint32_t events);
void vgpu_loop_remove(struct vgpu_loop *loop, struct vgpu_loop_watch *w);
/* Stop dispatching @w for @ms milliseconds, then watch it for @events
 * again. For a level-triggered fd that stays ready while its handler can
 * do nothing (a listening socket whose accept() fails for want of file
 * descriptors), which would otherwise spin the loop. */
void vgpu_loop_pause(struct vgpu_loop *loop, struct vgpu_loop_watch *w, uint32_t events, int ms);

/* Run one round: wait up to @timeout_ms (less when a paused watch is due)
 * for events and dispatch them.
 * Returns how many fired (0 on timeout or EINTR), or VGPU_IO_ERROR. */
int vgpu_loop_run_once(struct vgpu_loop *loop, int timeout_ms);

#endif
