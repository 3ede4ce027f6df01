/*
 * loop.c - epoll behind loop.h. Must never dispatch a watch after it was
 * removed in the same round (a callback may remove other watches).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop.h"
#include "vgpu_error.h"

#define MAX_EVENTS 64

struct vgpu_loop {
	int epfd;
	/* Watches removed during the current round: skipped if still pending.
	 * When more are removed than fit, the round ends early; epoll is
	 * level-triggered, so the rest fire again in the next round. */
	struct vgpu_loop_watch *removed[MAX_EVENTS];
	int n_removed;
	bool dispatching, overflow;
};

int vgpu_loop_new(struct vgpu_loop **ret)
{
	struct vgpu_loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return VGPU_NO_MEMORY;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		free(loop);
		return VGPU_IO_ERROR;
	}
	*ret = loop;
	return VGPU_OK;
}

void vgpu_loop_free(struct vgpu_loop *loop)
{
	if (!loop)
		return;
	close(loop->epfd);
	free(loop);
}

int vgpu_loop_add(struct vgpu_loop *loop, struct vgpu_loop_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	return epoll_ctl(loop->epfd, EPOLL_CTL_ADD, w->fd, &ev) == 0 ? VGPU_OK : VGPU_IO_ERROR;
}

int vgpu_loop_modify(struct vgpu_loop *loop, struct vgpu_loop_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, w->fd, &ev) == 0 ? VGPU_OK : VGPU_IO_ERROR;
}

void vgpu_loop_remove(struct vgpu_loop *loop, struct vgpu_loop_watch *w)
{
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	if (!loop->dispatching)
		return;
	if (loop->n_removed < MAX_EVENTS)
		loop->removed[loop->n_removed++] = w;
	else
		loop->overflow = true;
}

static bool was_removed(const struct vgpu_loop *loop, const struct vgpu_loop_watch *w)
{
	for (int i = 0; i < loop->n_removed; i++)
		if (loop->removed[i] == w)
			return true;
	return false;
}

int vgpu_loop_run_once(struct vgpu_loop *loop, int timeout_ms)
{
	struct epoll_event events[MAX_EVENTS];
	int n = epoll_wait(loop->epfd, events, MAX_EVENTS, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : VGPU_IO_ERROR;
	loop->dispatching = true;
	loop->n_removed = 0;
	loop->overflow = false;
	for (int i = 0; i < n && !loop->overflow; i++) {
		struct vgpu_loop_watch *w = events[i].data.ptr;

		if (!was_removed(loop, w))
			w->fn(w->ctx, events[i].events);
	}
	loop->dispatching = false;
	return n;
}
