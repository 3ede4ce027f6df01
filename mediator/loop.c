/* SPDX-License-Identifier: MIT */
/*
 * loop.c - epoll behind loop.h. Must never dispatch a watch after it was
 * removed in the same round (a callback may remove other watches).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop.h"
#include "vgpu_clock.h"
#include "vgpu_error.h"

#define MAX_EVENTS 64

struct vgpu_loop {
	int epfd;
	/* Watches removed during the current round: skipped if still pending.
	 * The list grows as needed: a round must not end early, since an
	 * edge-triggered watch (a ring's doorbell) would not fire again. Only
	 * when it cannot grow (no memory) does the round end early. */
	struct vgpu_loop_watch **removed;
	int n_removed, cap_removed;
	bool dispatching, overflow;
	struct vgpu_loop_watch *paused;     /* vgpu_loop_pause()d, unordered */
};

int vgpu_loop_new(struct vgpu_loop **ret)
{
	struct vgpu_loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return VGPU_NO_MEMORY;
	loop->cap_removed = MAX_EVENTS;
	loop->removed = calloc((size_t)loop->cap_removed, sizeof(*loop->removed));
	loop->epfd = loop->removed ? epoll_create1(EPOLL_CLOEXEC) : -1;
	if (loop->epfd < 0) {
		int rc = loop->removed ? VGPU_IO_ERROR : VGPU_NO_MEMORY;

		free(loop->removed);
		free(loop);
		return rc;
	}
	*ret = loop;
	return VGPU_OK;
}

void vgpu_loop_free(struct vgpu_loop *loop)
{
	if (!loop)
		return;
	close(loop->epfd);
	free(loop->removed);
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

static void unpause(struct vgpu_loop *loop, struct vgpu_loop_watch *w)
{
	struct vgpu_loop_watch **pp = &loop->paused;

	while (*pp && *pp != w)
		pp = &(*pp)->next_paused;
	if (*pp)
		*pp = w->next_paused;
	w->paused = false;
	w->next_paused = NULL;
}

void vgpu_loop_pause(struct vgpu_loop *loop, struct vgpu_loop_watch *w, uint32_t events, int ms)
{
	/* Events 0: epoll keeps the fd but reports nothing but errors. */
	vgpu_loop_modify(loop, w, 0);
	w->resume_events = events;
	w->resume_ns = vgpu_now_ns() + (uint64_t)ms * 1000000u;
	if (!w->paused) {
		w->paused = true;
		w->next_paused = loop->paused;
		loop->paused = w;
	}
}

/* Watch again what is due; returns ms until the next one is (-1: none). */
static int resume_due(struct vgpu_loop *loop)
{
	uint64_t now = vgpu_now_ns(), next = UINT64_MAX;

	for (struct vgpu_loop_watch *w = loop->paused, *nx; w; w = nx) {
		nx = w->next_paused;
		if (w->resume_ns <= now) {
			unpause(loop, w);
			vgpu_loop_modify(loop, w, w->resume_events);
		} else if (w->resume_ns < next) {
			next = w->resume_ns;
		}
	}
	return next == UINT64_MAX ? -1 : (int)((next - now) / 1000000u) + 1;
}

void vgpu_loop_remove(struct vgpu_loop *loop, struct vgpu_loop_watch *w)
{
	if (w->paused)
		unpause(loop, w);
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	if (!loop->dispatching)
		return;
	if (loop->n_removed == loop->cap_removed) {
		struct vgpu_loop_watch **more = realloc(loop->removed, 2 * (size_t)loop->cap_removed *
								      sizeof(*more));

		if (!more) {
			loop->overflow = true;
			return;
		}
		loop->removed = more;
		loop->cap_removed *= 2;
	}
	loop->removed[loop->n_removed++] = w;
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
	int due = loop->paused ? resume_due(loop) : -1;

	if (due >= 0 && (timeout_ms < 0 || due < timeout_ms))
		timeout_ms = due;
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
