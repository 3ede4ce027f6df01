/* SPDX-License-Identifier: MIT */
/*
 * queue.c - the mediator's queue (see queue.h): the scheduling policy and
 * the cost estimates (scheduler.c, cost.c, neither thread-safe) behind one
 * mutex, the caps on what is queued, and the waiting of the poppers.
 *
 * A condition variable on CLOCK_MONOTONIC wakes poppers, so that a
 * wall-clock jump neither stretches nor cuts a pop's timeout, nor the wait
 * for held-back work. Every popper is woken (broadcast): each GPU has its
 * own, and only the scheduler knows which of them can take a work.
 *
 * Never: allocate after vgpu_queue_new (a full queue answers VGPU_BUSY, the
 * caller owns every item), touch an item it does not hold, or change the
 * queue when a push is refused.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "queue.h"
#include "vgpu_clock.h"
#include "vgpu_error.h"
#include "vgpu_mutex.h"

struct vgpu_queue {
	pthread_mutex_t lock;
	pthread_cond_t changed;   /* pushes woken for, settings, close */
	struct vgpu_sched *sched;
	struct vgpu_cost cost;
	uint32_t per_vm_cap;
	uint32_t total_cap;
	uint32_t max_vms;
	bool closed;              /* set once by vgpu_queue_close */
};

int vgpu_queue_new(uint32_t max_vms, uint32_t max_pools, uint32_t n_gpus, uint32_t per_vm_cap,
		   uint32_t total_cap, const struct vgpu_sched_params *params,
		   struct vgpu_queue **ret_queue)
{
	pthread_condattr_t attr;
	struct vgpu_queue *q;
	int rc;

	if (!ret_queue || per_vm_cap == 0 || total_cap == 0)
		return VGPU_INVALID_PARAM;
	q = calloc(1, sizeof(*q));
	if (!q)
		return VGPU_NO_MEMORY;
	rc = vgpu_sched_new(max_vms, max_pools, n_gpus, params, &q->sched);
	if (rc != VGPU_OK) {
		free(q);
		return rc;
	}
	vgpu_cost_init(&q->cost);
	q->max_vms = max_vms;
	q->per_vm_cap = per_vm_cap;
	q->total_cap = total_cap;

	if (vgpu_mutex_init(&q->lock) != 0)
		goto fail_free;
	if (pthread_condattr_init(&attr) != 0)
		goto fail_mutex;
	if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&q->changed, &attr) != 0) {
		pthread_condattr_destroy(&attr);
		goto fail_mutex;
	}
	pthread_condattr_destroy(&attr);
	*ret_queue = q;
	return VGPU_OK;

fail_mutex:
	pthread_mutex_destroy(&q->lock);
fail_free:
	vgpu_sched_free(q->sched);
	free(q);
	return VGPU_ERROR;
}

void vgpu_queue_free(struct vgpu_queue *q)
{
	if (!q)
		return;
	pthread_cond_destroy(&q->changed);
	pthread_mutex_destroy(&q->lock);
	vgpu_sched_free(q->sched);
	free(q);
}

int vgpu_queue_set_pool(struct vgpu_queue *q, uint32_t pool, uint32_t weight,
			uint32_t cap_permille, uint64_t gpus)
{
	int rc;

	pthread_mutex_lock(&q->lock);
	rc = vgpu_sched_set_pool(q->sched, pool, weight, cap_permille, gpus, vgpu_now_ns());
	pthread_cond_broadcast(&q->changed);
	pthread_mutex_unlock(&q->lock);
	return rc;
}

int vgpu_queue_set_vm(struct vgpu_queue *q, uint32_t slot, uint32_t pool, int level,
		      uint32_t weight, uint64_t rate_ns_per_s)
{
	int rc;

	pthread_mutex_lock(&q->lock);
	rc = vgpu_sched_set_vm(q->sched, slot, pool, level, weight, rate_ns_per_s, vgpu_now_ns());
	pthread_cond_broadcast(&q->changed);
	pthread_mutex_unlock(&q->lock);
	return rc;
}

int vgpu_queue_set_vm_quota(struct vgpu_queue *q, uint32_t slot, uint64_t quota_bytes)
{
	int rc;

	pthread_mutex_lock(&q->lock);
	rc = vgpu_sched_set_vm_quota(q->sched, slot, quota_bytes);
	pthread_cond_broadcast(&q->changed);
	pthread_mutex_unlock(&q->lock);
	return rc;
}

int vgpu_queue_remove_vm(struct vgpu_queue *q, uint32_t slot)
{
	int rc;

	pthread_mutex_lock(&q->lock);
	rc = vgpu_sched_remove_vm(q->sched, slot);
	pthread_mutex_unlock(&q->lock);
	return rc;
}

/* Whether @slot may queue one more. Caller holds the lock. */
static int room_locked(struct vgpu_queue *q, uint32_t slot)
{
	if (q->closed)
		return VGPU_SHUTDOWN;
	if (vgpu_sched_depth(q->sched, UINT32_MAX) >= q->total_cap ||
	    vgpu_sched_depth(q->sched, slot) >= q->per_vm_cap)
		return VGPU_BUSY;
	return VGPU_OK;
}

int vgpu_queue_room(struct vgpu_queue *q, uint32_t vm_slot)
{
	int rc;

	if (!q || vm_slot >= q->max_vms)
		return VGPU_INVALID_PARAM;
	pthread_mutex_lock(&q->lock);
	rc = room_locked(q, vm_slot);
	pthread_mutex_unlock(&q->lock);
	return rc;
}

int vgpu_queue_push(struct vgpu_queue *q, struct vgpu_queue_item *item)
{
	int rc;

	if (!q || !item || item->sched.vm_slot >= q->max_vms)
		return VGPU_INVALID_PARAM;
	pthread_mutex_lock(&q->lock);
	rc = room_locked(q, item->sched.vm_slot);
	if (rc == VGPU_OK) {
		item->sched.cost_ns = vgpu_cost_estimate(&q->cost, item->op, item->units);
		rc = vgpu_sched_push(q->sched, &item->sched, vgpu_now_ns());
	}
	pthread_mutex_unlock(&q->lock);
	return rc;
}

void vgpu_queue_wake(struct vgpu_queue *q)
{
	pthread_mutex_lock(&q->lock);
	pthread_cond_broadcast(&q->changed);
	pthread_mutex_unlock(&q->lock);
}

static struct timespec ts_of(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u),
			       .tv_nsec = (long)(ns % 1000000000u) };
	return ts;
}

struct vgpu_queue_item *vgpu_queue_pop(struct vgpu_queue *q, uint32_t gpu, int timeout_ms)
{
	struct vgpu_sched_item *item;
	uint64_t end_ns = 0, retry, until;
	struct timespec ts;

	if (!q)
		return NULL;
	if (timeout_ms > 0)
		end_ns = vgpu_now_ns() + (uint64_t)timeout_ms * 1000000u;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		item = vgpu_sched_pick(q->sched, gpu, vgpu_now_ns(), &retry);
		if (item || timeout_ms == 0 || (q->closed && retry == 0))
			break;
		until = end_ns;
		/* UINT64_MAX: held by a memory quota, until a done() wakes us. */
		if (retry && retry != UINT64_MAX && (until == 0 || retry < until))
			until = retry;
		if (until == 0) {
			pthread_cond_wait(&q->changed, &q->lock);
			continue;
		}
		ts = ts_of(until);
		if (pthread_cond_timedwait(&q->changed, &q->lock, &ts) == ETIMEDOUT &&
		    until == end_ns) {
			item = vgpu_sched_pick(q->sched, gpu, vgpu_now_ns(), NULL);
			break;
		}
	}
	pthread_mutex_unlock(&q->lock);
	return (struct vgpu_queue_item *)item;
}

void vgpu_queue_done(struct vgpu_queue *q, struct vgpu_queue_item *item, uint64_t measured_ns)
{
	pthread_mutex_lock(&q->lock);
	vgpu_sched_done(q->sched, &item->sched, measured_ns);
	if (measured_ns > 0)
		vgpu_cost_learn(&q->cost, item->op, item->units, measured_ns);
	/* Memory released, or in-flight time, may let held work go on; with
	 * none queued there is nothing to wake a dispatcher for (a push that
	 * finds no room wakes it), and waking it would put its thread's
	 * wake-up on this completion's way to its client. */
	if (vgpu_sched_depth(q->sched, UINT32_MAX) > 0)
		pthread_cond_broadcast(&q->changed);
	pthread_mutex_unlock(&q->lock);
}

uint32_t vgpu_queue_drain_vm(struct vgpu_queue *q, uint32_t vm_slot,
			     struct vgpu_queue_item **ret_list)
{
	struct vgpu_sched_item *list = NULL;
	uint32_t n;

	if (!ret_list)
		return 0;
	*ret_list = NULL;
	if (!q || vm_slot >= q->max_vms)
		return 0;
	pthread_mutex_lock(&q->lock);
	n = vgpu_sched_drain_vm(q->sched, vm_slot, &list);
	pthread_mutex_unlock(&q->lock);
	*ret_list = (struct vgpu_queue_item *)list;
	return n;
}

void vgpu_queue_close(struct vgpu_queue *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_cond_broadcast(&q->changed);
	pthread_mutex_unlock(&q->lock);
}

uint32_t vgpu_queue_depth(struct vgpu_queue *q, int priority)
{
	uint32_t depth;

	if (!q || priority < -1 || priority >= VGPU_SCHED_LEVELS)
		return 0;
	pthread_mutex_lock(&q->lock);
	depth = priority < 0 ? vgpu_sched_depth(q->sched, UINT32_MAX)
			     : vgpu_sched_level_depth(q->sched, priority);
	pthread_mutex_unlock(&q->lock);
	return depth;
}

void vgpu_queue_pace(struct vgpu_queue *q, struct vgpu_pace_worker *list, uint64_t last_ns,
		     uint64_t now_ns)
{
	pthread_mutex_lock(&q->lock);
	vgpu_pace_step(q->sched, list, last_ns, now_ns);
	pthread_mutex_unlock(&q->lock);
}

void vgpu_queue_usage(struct vgpu_queue *q, uint32_t slot, uint32_t pool, uint32_t gpu,
		      struct vgpu_sched_usage *ret)
{
	pthread_mutex_lock(&q->lock);
	vgpu_sched_usage(q->sched, slot, pool, gpu, ret);
	pthread_mutex_unlock(&q->lock);
}
