/* SPDX-License-Identifier: MIT */
/*
 * cuda_sched.c - the CUDA backend's threads: two launchers, and one waiter
 * per priority level.
 *
 * A launcher takes the oldest queued work of the highest level it serves
 * and enqueues it (cuda_launch.c). One serves the high level alone, the
 * other the levels below: enqueueing a large work takes tens to hundreds
 * of microseconds of API calls (its copies go in pieces, cuda_launch.c),
 * and a high-priority work that arrives meanwhile must not wait for them
 * (on the H200 that wait was most of high priority's p99 under load,
 * docs/performance.md run 34). CUDA priorities do not preempt
 * (ARCHITECTURE.md, principle 5), so it keeps at most LAUNCH_WINDOW works
 * on the GPU and lower levels fewer of them (16, 24, 32), leaving room for
 * high priority. A work whose device memory is held by others goes back to
 * the front of its level until one of them completes.
 *
 * Every work ends with an event on its level's first stream, so a level's
 * works finish in the order they were launched: its waiter waits for the
 * oldest one, polling it every POLL_NS for SPIN_NS (a small op is done
 * within microseconds), then gives the memory back and calls done(). A
 * wait that outlasts SPIN_NS sleeps: in cudaEventSynchronize() on the
 * work's blocking-sync event when it has one (works that move at least
 * VGPU_CUDA_BLOCKING_BYTES), else between polls for 1/32 of the time
 * waited so far (SLEEP_MIN_NS to SLEEP_MAX_NS). No stream callbacks: done()
 * runs on a thread of ours, and a device error reaches every waiting work
 * as an error status, exactly once.
 *
 * Why small works get no blocking-sync event: such an event makes the GPU
 * raise an interrupt when it completes (on the H100 machine, 3350
 * interrupts for 5050 small ops; plain events, none), and inside a VM an
 * interrupt delivered to the vCPU of one of the request's threads cost
 * about 30 us per request: the small-op slow mode of docs/performance.md,
 * runs 6 to 20. Why large works do: sleeping in steps instead cost the
 * pipelined 4 MiB and 64 MiB cases up to a quarter of their throughput
 * (run 21).
 *
 * Idle, the launcher and each waiter watch an atomic counter for
 * LAUNCH_SPIN_NS before sleeping on their condition variable, so that a
 * client submitting again right after its done() costs no thread wake-up
 * (on the H100 a 4 KiB vector_add went from native + 20 us to native + 3 us;
 * the price is up to LAUNCH_SPIN_NS of one core's time after each burst).
 * The window should outlast a request's whole round trip: at 50 us,
 * back-to-back requests of 40 to 60 us looked bistable on the H100 (a
 * missed window lengthens the cycle past the window, so the next one is
 * missed too); 200 us, like the mediator's poll_us and libvgpu's
 * VGPU_SPIN_US, closes that loop (docs/performance.md, run 12).
 *
 * An idle GPU's small works skip the launcher (vgpu_cuda_take_inline()):
 * when a work is the only one accepted and its launch is one kernel on
 * its host memory (vgpu_cuda_zerocopy(): a few microseconds of API calls,
 * no copies, no device memory), the thread that submits it launches it
 * itself, holding the launcher's token. A request then passes one thread
 * fewer between its doorbell and its completion (the device path's
 * overhead, issue 10: each hand-off is a core whose every pause the
 * request waits out); with other works accepted, the launchers keep the
 * order and the priorities as above.
 *
 * Never: call done() with a lock held, or wait on the GPU in the launcher.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "backend_internal.h"
#include "vgpu_spin.h"
#include "cuda_internal.h"

#define LAUNCH_WINDOW 32         /* works on the GPU at once, all levels */
#define SPIN_NS 100000u          /* a waiter polls this long before it sleeps */
#define POLL_NS 2000u            /* between two polls */
#define SLEEP_MIN_NS 20000u      /* then sleeping between polls, at least ... */
#define SLEEP_MAX_NS 250000u     /* ... and at most */
#define LAUNCH_SPIN_NS 200000u   /* an idle launcher or waiter watches for work this long */

/* Works of @level on the GPU at most: 16, 24 and 32 of LAUNCH_WINDOW. */
static int window_of(int level)
{
	return LAUNCH_WINDOW * (level + 2) / 4;
}

/* Whether @job takes device memory from the pool. */
static bool uses_pool(const struct vgpu_cuda_job *job)
{
	return job->work->op == VGPU_OP_SGEMM || job->work->op == VGPU_OP_REDUCE_SUM;
}

/* The levels launcher @k serves: 0, the ones below high; 1, high. */
static int top_of(int k)
{
	return k ? VGPU_PRIORITY_LEVELS - 1 : VGPU_PRIORITY_LEVELS - 2;
}

static int bottom_of(int k)
{
	return k ? VGPU_PRIORITY_LEVELS - 1 : 0;
}

/*
 * Launcher @k's next job, or NULL: the oldest of the highest level it
 * serves that has room in the window. A level whose head waits for device
 * memory is skipped until a work completes, and while it waits, lower
 * levels (also the other launcher's) launch only works that need no pool
 * memory, so they cannot starve it. Lock held.
 */
static struct vgpu_cuda_job *next_job(struct vgpu_cuda_ctx *c, int k)
{
	bool blocked_above = false;

	for (int l = VGPU_PRIORITY_LEVELS - 1; l >= bottom_of(k); l--) {
		struct vgpu_cuda_level *lv = &c->level[l];
		struct vgpu_cuda_job *job = lv->head;

		if (lv->mem_blocked && lv->mem_gen != c->generation)
			lv->mem_blocked = false;
		if (lv->mem_blocked) {
			blocked_above = true;
			continue;
		}
		if (l > top_of(k) || !job || c->launched >= window_of(l) ||
		    (blocked_above && uses_pool(job)))
			continue;
		lv->head = job->next;
		if (!lv->head)
			lv->tail = NULL;
		c->launched++;
		return job;
	}
	return NULL;
}

/* The launcher that serves @level. */
static int launcher_of(int level)
{
	return level > top_of(0);
}

/* Wake launcher @k. Lock held. */
static void wake(struct vgpu_cuda_ctx *c, int k)
{
	atomic_fetch_add(&c->wake[k].seq, 1);
	pthread_cond_signal(&c->wake[k].cond);
}

void vgpu_cuda_wake_launcher(struct vgpu_cuda_ctx *c, int level)
{
	wake(c, launcher_of(level));
}

/* Whether launcher @k has works queued. Lock held. */
static bool has_queued(const struct vgpu_cuda_ctx *c, int k)
{
	for (int l = bottom_of(k); l <= top_of(k); l++)
		if (c->level[l].head)
			return true;
	return false;
}

bool vgpu_cuda_take_inline(struct vgpu_cuda_ctx *c, const struct vgpu_cuda_job *job)
{
	const struct vgpu_work *w = job->work;
	int k = launcher_of(w->priority);

	/* The only work accepted: nothing queued or on the GPU to keep order
	 * or priority with, no device memory anyone waits for. */
	if (c->inflight != 1 || c->launching[k] || w->staged || !vgpu_cuda_zerocopy(c, w))
		return false;
	c->launching[k] = true;
	c->launched++;
	c->in_submit++;
	return true;
}

void vgpu_cuda_end_inline(struct vgpu_cuda_ctx *c, int level)
{
	int k = launcher_of(level);

	c->launching[k] = false;
	if (has_queued(c, k))
		wake(c, k); /* submitted while we held its token */
	/* The work may be done already: fini waits for this too. */
	if (--c->in_submit == 0 && c->inflight == 0 && c->in_done == 0)
		pthread_cond_broadcast(&c->idle_cond);
}

/* Launcher @k has nothing to launch: watch its wake-up for LAUNCH_SPIN_NS
 * (a client that submits again as soon as its last work is done is served
 * without a thread wake-up), then sleep until a submit of its levels or a
 * completion that may let its queued work go. Lock held. */
static void idle(struct vgpu_cuda_ctx *c, int k)
{
	uint64_t seen = atomic_load(&c->wake[k].seq);
	uint64_t t0 = vgpu_now_ns();

	pthread_mutex_unlock(&c->lock);
	while (atomic_load(&c->wake[k].seq) == seen && vgpu_now_ns() - t0 < LAUNCH_SPIN_NS)
		vgpu_cpu_relax();
	pthread_mutex_lock(&c->lock);
	if (atomic_load(&c->wake[k].seq) == seen)
		pthread_cond_wait(&c->wake[k].cond, &c->lock);
}

struct launcher {
	struct vgpu_cuda_ctx *c;
	int k;
};

static void *launcher_main(void *arg)
{
	struct vgpu_cuda_ctx *c = ((struct launcher *)arg)->c;
	int k = ((struct launcher *)arg)->k;

	free(arg);
	pthread_setname_np(pthread_self(), k ? "vgpu-launch-hi" : "vgpu-launch");
	cudaSetDevice(c->device);
	pthread_mutex_lock(&c->lock);
	for (;;) {
		/* A submitter holding the token wakes us when it is done. */
		struct vgpu_cuda_job *job = c->launching[k] ? NULL : next_job(c, k);

		if (!job) {
			if (c->quit)
				break;
			idle(c, k);
			continue;
		}
		uint64_t generation = c->generation;
		bool others = c->launched > 1;

		c->launching[k] = true;
		pthread_mutex_unlock(&c->lock);
		int rc = vgpu_cuda_launch(c, job, others);

		pthread_mutex_lock(&c->lock);
		c->launching[k] = false;
		if (rc != VGPU_BUSY)
			continue;
		/* Its device memory is held by works on the GPU: back in front,
		 * until one of them completes. */
		struct vgpu_cuda_level *lv = &c->level[job->work->priority];

		job->next = lv->head;
		lv->head = job;
		if (!lv->tail)
			lv->tail = job;
		lv->mem_blocked = true;
		lv->mem_gen = generation;
		c->launched--;
		/* Nothing left on the GPU to give memory back (the two launchers
		 * each held part of what the other needed): every level tries
		 * again now, rather than wait for a completion that will not
		 * come; alone, a work that still does not fit fails. */
		if (c->launched == 0)
			c->generation++;
		/* Room in the window for the other launcher's works. */
		for (int o = 0; o < VGPU_CUDA_LAUNCHERS; o++)
			if (o != k && has_queued(c, o))
				wake(c, o);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

void vgpu_cuda_track(struct vgpu_cuda_job *job)
{
	struct vgpu_cuda_ctx *c = job->c;
	struct vgpu_cuda_level *lv = &c->level[job->work->priority];

	pthread_mutex_lock(&c->fly_lock);
	job->next = NULL;
	if (lv->fly_tail)
		lv->fly_tail->next = job;
	else
		lv->fly_head = job;
	lv->fly_tail = job;
	atomic_fetch_add(&lv->fly_seq, 1);
	pthread_cond_signal(&lv->fly_cond);
	pthread_mutex_unlock(&c->fly_lock);
}

/* Busy-wait @ns on the clock alone: no CUDA call, no lock. */
static void pause_ns(uint64_t ns)
{
	uint64_t t0 = vgpu_now_ns();

	while (vgpu_now_ns() - t0 < ns)
		vgpu_cpu_relax();
}

/* Poll @job's done_ev every POLL_NS for SPIN_NS (a tighter loop of
 * cudaEventQuery contends with the launcher's calls for the driver), then
 * sleep on its block_ev if it has one, else between polls for 1/32 of the
 * time waited, within SLEEP_MIN_NS..SLEEP_MAX_NS. A work of a held level
 * (cuda_hold.c) never sleeps on its event: its waiter re-derives the
 * gates at every poll once SPIN_NS has passed, so that a gate closed on it opens when its time
 * is up even if nothing else happens on the GPU. */
static cudaError_t wait_job(struct vgpu_cuda_ctx *c, const struct vgpu_cuda_level *lv,
			    const struct vgpu_cuda_job *job)
{
	bool held = vgpu_cuda_held(&lv->lane[0]);
	uint64_t t0 = vgpu_now_ns();
	cudaError_t e;

	while ((e = cudaEventQuery(job->done_ev)) == cudaErrorNotReady) {
		uint64_t waited = vgpu_now_ns() - t0, ns = waited / 32;
		struct timespec ts = { 0, 0 };

		if (waited < SPIN_NS) {
			pause_ns(POLL_NS);
			continue;
		}
		if (held)
			vgpu_cuda_hold_update(c);
		if (job->blocking && !held) {
			/* block_ev follows done_ev on the same stream. */
			e = cudaEventSynchronize(job->block_ev);
			return e == cudaSuccess ? cudaEventQuery(job->done_ev) : e;
		}
		ts.tv_nsec = (long)(ns < SLEEP_MIN_NS ? SLEEP_MIN_NS : ns > SLEEP_MAX_NS ? SLEEP_MAX_NS : ns);
		nanosleep(&ts, NULL);
	}
	return e;
}

/* The GPU is through with @job: give back what it held, then done(). */
static void complete(struct vgpu_cuda_ctx *c, struct vgpu_cuda_job *job)
{
	struct vgpu_work *w = job->work;
	int status = job->status;

	if (status == VGPU_OK && job->gpu_status != cudaSuccess)
		status = vgpu_cuda_status(job->gpu_status);
	if (status == VGPU_OK && w->op == VGPU_OP_REDUCE_SUM)
		w->out[0] = job->result[0];
	vgpu_cuda_stage_finish(job, status);
	for (int i = 0; i < job->n_dev; i++)
		vgpu_cuda_pool_put(c->dev_pool, job->dev[i], job->dev_size[i]);
	job->n_dev = 0;
	uint64_t exec_ns = job->end_ns > job->start_ns ? job->end_ns - job->start_ns : 0;

	vgpu_cuda_hold_end(c, w->priority, job->end_ns);
	pthread_mutex_lock(&c->lock);
	job->next = c->free_jobs;
	c->free_jobs = job;
	c->inflight--;
	c->launched--;
	c->generation++;
	c->in_done++;
	/* Room in the window and memory back: only a launcher with queued
	 * works has a use for them. */
	for (int k = 0; k < VGPU_CUDA_LAUNCHERS; k++)
		if (has_queued(c, k))
			wake(c, k);
	pthread_mutex_unlock(&c->lock);

	w->done(w, status, exec_ns);

	pthread_mutex_lock(&c->lock);
	if (--c->in_done == 0 && c->inflight == 0)
		pthread_cond_broadcast(&c->idle_cond);
	pthread_mutex_unlock(&c->lock);
}

/* Wait on @cond (with @lock held) for at most @ns. */
static void wait_for_ns(pthread_cond_t *cond, pthread_mutex_t *lock, uint64_t ns)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ns += (uint64_t)ts.tv_nsec;
	ts.tv_sec += (time_t)(ns / 1000000000u);
	ts.tv_nsec = (long)(ns % 1000000000u);
	pthread_cond_timedwait(cond, lock, &ts);
}

static void *waiter_main(void *arg)
{
	struct vgpu_cuda_level *lv = arg;
	struct vgpu_cuda_ctx *c = lv->c;
	char name[16];

	snprintf(name, sizeof(name), "vgpu-wait%d", lv->index);
	pthread_setname_np(pthread_self(), name);
	cudaSetDevice(c->device); /* done() may call host_free() */
	pthread_mutex_lock(&c->fly_lock);
	for (;;) {
		struct vgpu_cuda_job *job = lv->fly_head;

		if (!job) {
			if (c->fly_quit)
				break;
			/* Like the launcher's idle(): watch, then sleep. With the
			 * hold on, the gates below this level open hold_ns
			 * after its last work (cuda_hold.c): re-derived once
			 * that time is up, waiting for it if need be. */
			uint64_t seen = atomic_load(&lv->fly_seq), t0 = vgpu_now_ns(), now;
			bool reopen = c->wait_value != NULL;

			pthread_mutex_unlock(&c->fly_lock);
			while (atomic_load(&lv->fly_seq) == seen &&
			       (now = vgpu_now_ns()) - t0 < LAUNCH_SPIN_NS) {
				if (reopen && now - t0 > c->hold_ns) {
					vgpu_cuda_hold_update(c);
					reopen = false;
				}
				vgpu_cpu_relax();
			}
			pthread_mutex_lock(&c->fly_lock);
			if (reopen && atomic_load(&lv->fly_seq) == seen) {
				uint64_t spent = vgpu_now_ns() - t0;

				if (spent < c->hold_ns)
					wait_for_ns(&lv->fly_cond, &c->fly_lock, c->hold_ns - spent);
				if (atomic_load(&lv->fly_seq) != seen)
					continue; /* more work: its completion opens them */
				pthread_mutex_unlock(&c->fly_lock);
				vgpu_cuda_hold_update(c);
				pthread_mutex_lock(&c->fly_lock);
			}
			if (atomic_load(&lv->fly_seq) == seen)
				pthread_cond_wait(&lv->fly_cond, &c->fly_lock);
			continue;
		}
		pthread_mutex_unlock(&c->fly_lock);
		if (!job->waited) {
			vgpu_cuda_hold_oldest(c, lv->index, job->start_ns);
			job->gpu_status = wait_job(c, lv, job);
			if (job->gpu_status != cudaSuccess)
				cudaGetLastError();
			job->end_ns = vgpu_now_ns();
		}
		/* Only this thread removes from the list; the launcher appends. */
		pthread_mutex_lock(&c->fly_lock);
		lv->fly_head = job->next;
		if (!lv->fly_head)
			lv->fly_tail = NULL;
		pthread_mutex_unlock(&c->fly_lock);
		complete(c, job);
		pthread_mutex_lock(&c->fly_lock);
	}
	pthread_mutex_unlock(&c->fly_lock);
	return NULL;
}

int vgpu_cuda_start_threads(struct vgpu_cuda_ctx *c)
{
	int rc;

	for (int k = 0; k < VGPU_CUDA_LAUNCHERS; k++) {
		struct launcher *arg = malloc(sizeof(*arg));

		if (!arg)
			return ENOMEM;
		*arg = (struct launcher){ c, k };
		rc = pthread_create(&c->launcher[k], NULL, launcher_main, arg);
		if (rc != 0) {
			free(arg);
			return rc;
		}
		c->launchers_started = k + 1;
	}
	for (int l = 0; l < VGPU_PRIORITY_LEVELS; l++) {
		rc = pthread_create(&c->level[l].waiter, NULL, waiter_main, &c->level[l]);
		if (rc != 0)
			return rc;
		c->waiters_started = l + 1;
	}
	return 0;
}

void vgpu_cuda_stop_threads(struct vgpu_cuda_ctx *c)
{
	if (c->launchers_started) {
		pthread_mutex_lock(&c->lock);
		c->quit = true;
		for (int k = 0; k < VGPU_CUDA_LAUNCHERS; k++)
			wake(c, k);
		pthread_mutex_unlock(&c->lock);
		for (int k = 0; k < c->launchers_started; k++)
			pthread_join(c->launcher[k], NULL);
		c->launchers_started = 0;
	}
	pthread_mutex_lock(&c->fly_lock);
	c->fly_quit = true;
	for (int l = 0; l < c->waiters_started; l++) {
		atomic_fetch_add(&c->level[l].fly_seq, 1);
		pthread_cond_broadcast(&c->level[l].fly_cond);
	}
	pthread_mutex_unlock(&c->fly_lock);
	for (int l = 0; l < c->waiters_started; l++)
		pthread_join(c->level[l].waiter, NULL);
	c->waiters_started = 0;
}
