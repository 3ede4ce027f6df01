/* SPDX-License-Identifier: MIT */
/*
 * dispatch.c - one dispatcher thread per GPU: each takes requests from the
 * queue in the scheduler's order for its GPU (scheduler.h: a pool's work
 * goes only to its GPUs) and hands them to that GPU's backend instance,
 * keeping at most max_inflight of them there; and the backends' completion
 * callback, which records the outcome and queues finished requests for the
 * loop thread, unless their transport answers them there.
 *
 * vgpu_dispatch_now() does the same on the loop thread right after
 * admission when a GPU has room: an idle mediator then starts a request
 * without waking a dispatcher thread (one thread hand-off less on the
 * latency of small requests). The queue still decides what runs, whichever
 * thread pops; each finished work's GPU time goes back to it.
 *
 * A request of a zero-copy transport is answered by that transport on the
 * backend thread that finished it (vgpu_transport.complete); others go
 * to the loop thread through the completion list.
 *
 * Must never: block on the GPU (submit is asynchronous), call into a
 * transport except through its thread-safe complete(), or lose a popped
 * request (every one is answered by complete() or reaches the completion
 * list, with an error status if the backend refused it).
 */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "mediator.h"

/* Backend threads: a work finished. */
static void work_done(struct vgpu_work *work, int status, uint64_t exec_ns)
{
	struct vgpu_request *req = work->user;
	struct mediator *m = req->m;
	struct vgpu_gpu *g = &m->gpu[req->item.sched.gpu];
	uint64_t one = 1;

	req->status = status;
	req->exec_ns = exec_ns;
	vgpu_request_record(req);
	/* A zero-copy transport may answer right here, with no hand-off to the
	 * loop thread, and before the scheduler hears of it: its bookkeeping
	 * is not on the client's way. From a true return on, req may be gone:
	 * the scheduler gets a copy of its item. */
	struct vgpu_queue_item item = req->item;
	bool answered = req->transport->complete && req->transport->complete(m, req);

	vgpu_queue_done(m->queue, &item, exec_ns);

	pthread_mutex_lock(&m->done_lock);
	if (!answered) {
		req->next_done = NULL;
		if (m->done_tail)
			m->done_tail->next_done = req;
		else
			m->done_head = req;
		m->done_tail = req;
	}
	g->inflight--;
	pthread_cond_signal(&g->room_cond);
	pthread_mutex_unlock(&m->done_lock);
	if (!answered && write(m->done_efd, &one, sizeof(one)) < 0) {
		/* The counter is saturated only if the loop is gone; nothing to do. */
	}
}

/* Hand @item (popped for @g, and counted in g->inflight) to @g's backend. */
static void submit(struct vgpu_gpu *g, struct vgpu_queue_item *item)
{
	struct vgpu_request *req = (struct vgpu_request *)item;
	struct mediator *m = g->m;
	int rc;

	/* The pick's time: no clock read of its own on the request's way. */
	req->queue_ns = item->sched.picked_ns - item->sched.enqueued_ns;
	req->work.done = work_done;
	/* Never VGPU_BUSY: a backend frees a work's slot before calling its
	 * done(), and g->inflight reserves a slot before every pop. */
	rc = m->backend->submit(g->ctx, &req->work);
	if (rc != VGPU_OK)
		work_done(&req->work, rc, 0);
}

static void *dispatcher_main(void *arg)
{
	struct vgpu_gpu *g = arg;
	struct mediator *m = g->m;
	char name[16];

	snprintf(name, sizeof(name), "vgpu-dispatch%u", g->index);
	pthread_setname_np(pthread_self(), name);
	for (;;) {
		/* Reserve a backend slot, then wait for work to fill it: the loop
		 * thread (vgpu_dispatch_now) reserves the same way, so together
		 * they never hand the backend more than max_inflight works. */
		pthread_mutex_lock(&m->done_lock);
		while (g->inflight >= (uint32_t)m->set.max_inflight)
			pthread_cond_wait(&g->room_cond, &m->done_lock);
		g->inflight++;
		g->idle_reserved = true;
		pthread_mutex_unlock(&m->done_lock);

		struct vgpu_queue_item *item = vgpu_queue_pop(m->queue, g->index, -1);
		pthread_mutex_lock(&m->done_lock);
		g->idle_reserved = false;
		pthread_mutex_unlock(&m->done_lock);
		if (!item)
			break; /* closed and empty */
		submit(g, item);
	}
	pthread_mutex_lock(&m->done_lock);
	g->inflight--; /* the slot reserved for the pop that found nothing */
	g->exited = true;
	pthread_mutex_unlock(&m->done_lock);
	return NULL;
}

bool vgpu_dispatch_now(struct mediator *m)
{
	/* Each GPU in turn, from the one after the last that took work. */
	for (uint32_t i = 0; i < m->n_gpus; i++) {
		struct vgpu_gpu *g = &m->gpu[(m->next_gpu + i) % m->n_gpus];
		struct vgpu_queue_item *item;

		pthread_mutex_lock(&m->done_lock);
		if (g->inflight >= (uint32_t)m->set.max_inflight) {
			pthread_mutex_unlock(&m->done_lock);
			continue;
		}
		g->inflight++;
		pthread_mutex_unlock(&m->done_lock);
		item = vgpu_queue_pop(m->queue, g->index, 0);
		if (item) {
			m->next_gpu = (g->index + 1) % m->n_gpus;
			submit(g, item);
			return true;
		}
		pthread_mutex_lock(&m->done_lock);
		g->inflight--;
		pthread_cond_signal(&g->room_cond);
		pthread_mutex_unlock(&m->done_lock);
	}
	/* No GPU had room, or none may run the work now (a dispatcher took
	 * it already, or it is held back by a limit): the caller wakes the
	 * dispatchers, which wait for room or for when it may run. */
	return false;
}

int vgpu_dispatcher_start(struct mediator *m)
{
	for (uint32_t i = 0; i < m->n_gpus; i++) {
		struct vgpu_gpu *g = &m->gpu[i];

		if (pthread_create(&g->dispatcher, NULL, dispatcher_main, g) != 0)
			return VGPU_ERROR;
		g->started = true;
	}
	return VGPU_OK;
}

bool vgpu_dispatcher_drained(struct mediator *m)
{
	bool drained;

	pthread_mutex_lock(&m->done_lock);
	drained = !m->done_head;
	for (uint32_t i = 0; i < m->n_gpus; i++)
		drained = drained && m->gpu[i].exited && m->gpu[i].inflight == 0;
	pthread_mutex_unlock(&m->done_lock);
	return drained;
}

uint32_t vgpu_dispatcher_inflight(struct mediator *m, uint32_t gpu)
{
	uint32_t n = 0;

	pthread_mutex_lock(&m->done_lock);
	for (uint32_t i = 0; i < m->n_gpus; i++)
		if (gpu == UINT32_MAX || gpu == i)
			n += m->gpu[i].inflight - m->gpu[i].idle_reserved;
	pthread_mutex_unlock(&m->done_lock);
	return n;
}

void vgpu_dispatcher_join(struct mediator *m)
{
	for (uint32_t i = 0; i < m->n_gpus; i++)
		if (m->gpu[i].started) {
			pthread_join(m->gpu[i].dispatcher, NULL);
			m->gpu[i].started = false;
		}
}
