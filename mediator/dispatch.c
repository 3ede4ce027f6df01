/* SPDX-License-Identifier: MIT */
/*
 * dispatch.c - the dispatcher thread: takes requests from the queue in
 * the scheduler's order (scheduler.h) and hands them to the backend, keeping at most
 * max_inflight of them there; and the backend's completion callback, which
 * records the outcome and queues finished requests for the loop thread,
 * unless their transport answers them there.
 *
 * vgpu_dispatch_now() does the same on the loop thread right after
 * admission when the backend has room: an idle mediator then starts a
 * request without waking the dispatcher thread (one thread hand-off less
 * on the latency of small requests). The queue still decides what runs,
 * whichever thread pops; each finished work's GPU time goes back to it.
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
#include <unistd.h>

#include "mediator.h"

/* Backend threads: a work finished. */
static void work_done(struct vgpu_work *work, int status, uint64_t exec_ns)
{
	struct vgpu_request *req = work->user;
	struct mediator *m = req->m;
	uint64_t one = 1;

	req->status = status;
	req->exec_ns = exec_ns;
	vgpu_queue_done(m->queue, &req->item, exec_ns);
	vgpu_request_record(req);
	/* A zero-copy transport may answer right here, with no hand-off to the
	 * loop thread. From a true return on, req may be gone. */
	bool answered = req->transport->complete && req->transport->complete(m, req);

	pthread_mutex_lock(&m->done_lock);
	if (!answered) {
		req->next_done = NULL;
		if (m->done_tail)
			m->done_tail->next_done = req;
		else
			m->done_head = req;
		m->done_tail = req;
	}
	m->inflight--;
	pthread_cond_signal(&m->inflight_cond);
	pthread_mutex_unlock(&m->done_lock);
	if (!answered && write(m->done_efd, &one, sizeof(one)) < 0) {
		/* The counter is saturated only if the loop is gone; nothing to do. */
	}
}

/* Hand @item (popped, and counted in m->inflight) to the backend. */
static void submit(struct mediator *m, struct vgpu_queue_item *item)
{
	struct vgpu_request *req = (struct vgpu_request *)item;
	int rc;

	req->queue_ns = vgpu_now_ns() - item->sched.enqueued_ns;
	req->work.done = work_done;
	/* Never VGPU_BUSY: a backend frees a work's slot before calling its
	 * done(), and m->inflight reserves a slot before every pop. */
	rc = m->backend->submit(m->backend_ctx, &req->work);
	if (rc != VGPU_OK)
		work_done(&req->work, rc, 0);
}

static void *dispatcher_main(void *arg)
{
	struct mediator *m = arg;

	pthread_setname_np(pthread_self(), "vgpu-dispatch");
	for (;;) {
		/* Reserve a backend slot, then wait for work to fill it: the loop
		 * thread (vgpu_dispatch_now) reserves the same way, so together
		 * they never hand the backend more than max_inflight works. */
		pthread_mutex_lock(&m->done_lock);
		while (m->inflight >= (uint32_t)m->set.max_inflight)
			pthread_cond_wait(&m->inflight_cond, &m->done_lock);
		m->inflight++;
		m->idle_reserved = true;
		pthread_mutex_unlock(&m->done_lock);

		struct vgpu_queue_item *item = vgpu_queue_pop(m->queue, 0, -1);
		pthread_mutex_lock(&m->done_lock);
		m->idle_reserved = false;
		pthread_mutex_unlock(&m->done_lock);
		if (!item)
			break; /* closed and empty */
		submit(m, item);
	}
	pthread_mutex_lock(&m->done_lock);
	m->inflight--; /* the slot reserved for the pop that found nothing */
	m->dispatcher_exited = true;
	pthread_mutex_unlock(&m->done_lock);
	return NULL;
}

bool vgpu_dispatch_now(struct mediator *m)
{
	struct vgpu_queue_item *item;

	pthread_mutex_lock(&m->done_lock);
	if (m->inflight >= (uint32_t)m->set.max_inflight) {
		pthread_mutex_unlock(&m->done_lock);
		return false;
	}
	m->inflight++;
	pthread_mutex_unlock(&m->done_lock);
	item = vgpu_queue_pop(m->queue, 0, 0);
	if (item) {
		submit(m, item);
		return true;
	}
	pthread_mutex_lock(&m->done_lock);
	m->inflight--;
	pthread_cond_signal(&m->inflight_cond);
	pthread_mutex_unlock(&m->done_lock);
	return true; /* the dispatcher took it already */
}

int vgpu_dispatcher_start(struct mediator *m)
{
	return pthread_create(&m->dispatcher, NULL, dispatcher_main, m) == 0 ? VGPU_OK
									     : VGPU_ERROR;
}

bool vgpu_dispatcher_drained(struct mediator *m)
{
	bool drained;

	pthread_mutex_lock(&m->done_lock);
	drained = m->dispatcher_exited && m->inflight == 0 && !m->done_head;
	pthread_mutex_unlock(&m->done_lock);
	return drained;
}

void vgpu_dispatcher_join(struct mediator *m)
{
	pthread_join(m->dispatcher, NULL);
}
