/* SPDX-License-Identifier: MIT */
/*
 * worker.c - the worker pool behind worker.h.
 *
 * One mutex guards the per-VM FIFOs, the round-robin list of VMs with
 * jobs, and the list of finished jobs; an eventfd tells the loop that
 * finished jobs wait. Must never: run a done() off the loop thread, or
 * drop a submitted job (every one reaches done(), also at shutdown).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "vgpu_error.h"
#include "worker.h"

#define MAX_THREADS 64
#define WORKER_NICE 10

struct slot_fifo {
	struct vgpu_job *head, *tail;
	int32_t next_active;          /* next slot in the round-robin list, -1 at its end */
	bool active;                  /* on that list */
	bool running;                 /* a job of this slot is on a worker */
};

struct vgpu_workers {
	struct vgpu_loop *loop;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;
	int n_threads;
	pthread_t threads[MAX_THREADS];
	int32_t active_head, active_tail; /* slots with queued jobs, round-robin */
	struct vgpu_job *done_head, *done_tail;
	uint32_t pending;             /* submitted, done() not yet run (loop thread) */
	int efd;
	struct vgpu_loop_watch watch;
	uint32_t max_vms;
	struct slot_fifo slot[];
};

/* Lock held: put slot @s at the back of the round-robin line. */
static void enqueue_slot_locked(struct vgpu_workers *w, int32_t s)
{
	struct slot_fifo *f = &w->slot[s];

	if (f->active || f->running || !f->head)
		return;
	if (w->active_tail >= 0)
		w->slot[w->active_tail].next_active = s;
	else
		w->active_head = s;
	w->active_tail = s;
	f->active = true;
}

/* Lock held: the next job, round-robin between slots. A slot whose job
 * runs is out of the line until it ends, so that one VM occupies one
 * worker at most. */
static struct vgpu_job *take_locked(struct vgpu_workers *w)
{
	int32_t s = w->active_head;

	if (s < 0)
		return NULL;
	struct slot_fifo *f = &w->slot[s];
	struct vgpu_job *job = f->head;

	f->head = job->next;
	if (!f->head)
		f->tail = NULL;
	w->active_head = f->next_active;
	if (w->active_head < 0)
		w->active_tail = -1;
	f->next_active = -1;
	f->active = false;
	f->running = true;
	return job;
}

/* Lock held: @job ran; its slot may go on. */
static void finished_locked(struct vgpu_workers *w, struct vgpu_job *job)
{
	int32_t s = (int32_t)(job->slot < w->max_vms ? job->slot : 0);

	w->slot[s].running = false;
	enqueue_slot_locked(w, s);
	if (w->slot[s].active)
		pthread_cond_signal(&w->cond);
}

static void *worker_main(void *arg)
{
	struct vgpu_workers *w = arg;
	uint64_t one = 1;

	pthread_setname_np(pthread_self(), "vgpu-worker");
	/* Linux: the nice value of this thread alone. The storm test's other
	 * VM kept a p99 1.2-2.6x of its own with nice 10, 3-6x without, on 2
	 * cores. The cost: under CPU contention a window's pinning, which
	 * holds back every GPU submission while it runs, may take longer. */
	setpriority(PRIO_PROCESS, 0, WORKER_NICE);
	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct vgpu_job *job = take_locked(w);

		if (!job) {
			if (w->stopping)
				break;
			pthread_cond_wait(&w->cond, &w->lock);
			continue;
		}
		pthread_mutex_unlock(&w->lock);
		job->run(job);
		pthread_mutex_lock(&w->lock);
		finished_locked(w, job);
		job->next = NULL;
		if (w->done_tail)
			w->done_tail->next = job;
		else
			w->done_head = job;
		w->done_tail = job;
		if (write(w->efd, &one, sizeof(one)) < 0) {
			/* saturated only if nobody reads: nothing to do */
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Loop thread: call done() of every finished job. */
static void deliver(void *ctx, uint32_t events)
{
	struct vgpu_workers *w = ctx;
	struct vgpu_job *list;
	uint64_t n;

	(void)events;
	if (read(w->efd, &n, sizeof(n)) < 0) {
		/* EAGAIN: taken in an earlier round */
	}
	pthread_mutex_lock(&w->lock);
	list = w->done_head;
	w->done_head = w->done_tail = NULL;
	pthread_mutex_unlock(&w->lock);
	while (list) {
		struct vgpu_job *job = list;

		list = job->next;
		w->pending--;
		job->done(job);
	}
}

int vgpu_workers_new(struct vgpu_loop *loop, int threads, uint32_t max_vms,
		     struct vgpu_workers **ret)
{
	struct vgpu_workers *w;
	size_t size;

	if (threads < 1 || threads > MAX_THREADS || max_vms == 0)
		return VGPU_INVALID_PARAM;
	if (__builtin_mul_overflow((size_t)max_vms, sizeof(w->slot[0]), &size) ||
	    __builtin_add_overflow(size, sizeof(*w), &size))
		return VGPU_NO_MEMORY;
	w = calloc(1, size);
	if (!w)
		return VGPU_NO_MEMORY;
	w->loop = loop;
	w->max_vms = max_vms;
	w->active_head = w->active_tail = -1;
	for (uint32_t i = 0; i < max_vms; i++)
		w->slot[i].next_active = -1;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	w->watch = (struct vgpu_loop_watch){ .fd = w->efd, .fn = deliver, .ctx = w };
	if (w->efd < 0 || vgpu_loop_add(loop, &w->watch, EPOLLIN) != VGPU_OK) {
		vgpu_workers_free(w);
		return VGPU_IO_ERROR;
	}
	for (int i = 0; i < threads; i++) {
		if (pthread_create(&w->threads[i], NULL, worker_main, w) != 0) {
			vgpu_workers_free(w);
			return VGPU_ERROR;
		}
		w->n_threads++;
	}
	*ret = w;
	return VGPU_OK;
}

void vgpu_workers_submit(struct vgpu_workers *w, struct vgpu_job *job)
{
	struct slot_fifo *f = &w->slot[job->slot < w->max_vms ? job->slot : 0];
	int32_t s = (int32_t)(f - w->slot);

	job->next = NULL;
	pthread_mutex_lock(&w->lock);
	if (f->tail)
		f->tail->next = job;
	else
		f->head = job;
	f->tail = job;
	enqueue_slot_locked(w, s);
	w->pending++;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

uint32_t vgpu_workers_pending(struct vgpu_workers *w)
{
	return w ? w->pending : 0;
}

void vgpu_workers_free(struct vgpu_workers *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	for (int i = 0; i < w->n_threads; i++)
		pthread_join(w->threads[i], NULL);
	/* The threads ran every queued job before they left; a done() may
	 * still submit another (a window's release): run those here. */
	for (;;) {
		struct vgpu_job *job;

		deliver(w, 0);
		pthread_mutex_lock(&w->lock);
		job = take_locked(w);
		pthread_mutex_unlock(&w->lock);
		if (!job)
			break;
		job->run(job);
		pthread_mutex_lock(&w->lock);
		finished_locked(w, job);
		pthread_mutex_unlock(&w->lock);
		w->pending--;
		job->done(job);
	}
	if (w->efd >= 0) {
		vgpu_loop_remove(w->loop, &w->watch);
		close(w->efd);
	}
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
