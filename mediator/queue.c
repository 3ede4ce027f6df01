/* SPDX-License-Identifier: MIT */
/*
 * queue.c - the mediator's bounded priority queue (see queue.h).
 *
 * One mutex guards everything: three intrusive FIFO lists (head and tail per
 * priority level), a queued-item count per VM slot and one in total. A
 * condition variable on CLOCK_MONOTONIC wakes poppers, so that a wall-clock
 * jump neither stretches nor cuts a pop's timeout.
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

#define QUEUE_LEVELS VGPU_PRIORITY_LEVELS

struct queue_level {
	struct vgpu_queue_item *head; /* oldest, popped first */
	struct vgpu_queue_item *tail; /* newest, where pushes go */
	uint32_t depth;
};

struct vgpu_queue {
	pthread_mutex_t lock;
	pthread_cond_t nonempty;      /* signalled on push, broadcast on close */
	struct queue_level level[QUEUE_LEVELS]; /* index = priority, 2 highest */
	uint32_t total;               /* items queued in all levels */
	uint32_t per_vm_cap;
	uint32_t total_cap;
	uint32_t max_vms;
	bool closed;                  /* set once by vgpu_queue_close */
	uint32_t per_vm[];            /* items queued per VM slot, max_vms of them */
};

int vgpu_queue_new(uint32_t max_vms, uint32_t per_vm_cap, uint32_t total_cap,
		   struct vgpu_queue **ret_queue)
{
	pthread_condattr_t attr;
	size_t size;
	struct vgpu_queue *q;

	if (!ret_queue || max_vms == 0 || per_vm_cap == 0 || total_cap == 0)
		return VGPU_INVALID_PARAM;
	if (__builtin_mul_overflow((size_t)max_vms, sizeof(q->per_vm[0]), &size) ||
	    __builtin_add_overflow(size, sizeof(*q), &size))
		return VGPU_NO_MEMORY;
	q = calloc(1, size);
	if (!q)
		return VGPU_NO_MEMORY;
	q->max_vms = max_vms;
	q->per_vm_cap = per_vm_cap;
	q->total_cap = total_cap;

	if (pthread_mutex_init(&q->lock, NULL) != 0)
		goto fail_free;
	if (pthread_condattr_init(&attr) != 0)
		goto fail_mutex;
	if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&q->nonempty, &attr) != 0) {
		pthread_condattr_destroy(&attr);
		goto fail_mutex;
	}
	pthread_condattr_destroy(&attr);
	*ret_queue = q;
	return VGPU_OK;

fail_mutex:
	pthread_mutex_destroy(&q->lock);
fail_free:
	free(q);
	return VGPU_ERROR;
}

void vgpu_queue_free(struct vgpu_queue *q)
{
	if (!q)
		return;
	pthread_cond_destroy(&q->nonempty);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

int vgpu_queue_room(struct vgpu_queue *q, uint32_t vm_slot)
{
	int rc = VGPU_OK;

	if (!q || vm_slot >= q->max_vms)
		return VGPU_INVALID_PARAM;
	pthread_mutex_lock(&q->lock);
	if (q->closed)
		rc = VGPU_SHUTDOWN;
	else if (q->total >= q->total_cap || q->per_vm[vm_slot] >= q->per_vm_cap)
		rc = VGPU_BUSY;
	pthread_mutex_unlock(&q->lock);
	return rc;
}

int vgpu_queue_push(struct vgpu_queue *q, struct vgpu_queue_item *item)
{
	struct queue_level *lv;
	int rc = VGPU_OK;

	if (!q || !item || item->priority < 0 || item->priority >= QUEUE_LEVELS)
		return VGPU_INVALID_PARAM;
	if (item->vm_slot >= q->max_vms)
		return VGPU_INVALID_PARAM;

	pthread_mutex_lock(&q->lock);
	if (q->closed) {
		rc = VGPU_SHUTDOWN;
	} else if (q->total >= q->total_cap || q->per_vm[item->vm_slot] >= q->per_vm_cap) {
		rc = VGPU_BUSY;
	} else {
		lv = &q->level[item->priority];
		item->next = NULL;
		item->enqueued_ns = vgpu_now_ns();
		if (lv->tail)
			lv->tail->next = item;
		else
			lv->head = item;
		lv->tail = item;
		lv->depth++;
		q->per_vm[item->vm_slot]++;
		q->total++;
	}
	pthread_mutex_unlock(&q->lock);
	return rc;
}

void vgpu_queue_wake(struct vgpu_queue *q)
{
	pthread_mutex_lock(&q->lock);
	pthread_cond_signal(&q->nonempty);
	pthread_mutex_unlock(&q->lock);
}

/* Unlink the head of the highest non-empty level. Caller holds the lock. */
static struct vgpu_queue_item *take_locked(struct vgpu_queue *q)
{
	struct vgpu_queue_item *item;
	struct queue_level *lv;
	int p;

	for (p = QUEUE_LEVELS - 1; p >= 0; p--) {
		lv = &q->level[p];
		item = lv->head;
		if (!item)
			continue;
		lv->head = item->next;
		if (!lv->head)
			lv->tail = NULL;
		lv->depth--;
		q->per_vm[item->vm_slot]--;
		q->total--;
		item->next = NULL;
		return item;
	}
	return NULL;
}

struct vgpu_queue_item *vgpu_queue_pop(struct vgpu_queue *q, int timeout_ms)
{
	struct vgpu_queue_item *item;
	struct timespec deadline = { 0 };
	uint64_t end_ns;

	if (!q)
		return NULL;
	if (timeout_ms > 0) {
		end_ns = vgpu_now_ns() + (uint64_t)timeout_ms * 1000000u;
		deadline.tv_sec = (time_t)(end_ns / 1000000000u);
		deadline.tv_nsec = (long)(end_ns % 1000000000u);
	}

	pthread_mutex_lock(&q->lock);
	for (;;) {
		item = take_locked(q);
		if (item || q->closed || timeout_ms == 0)
			break;
		if (timeout_ms < 0) {
			pthread_cond_wait(&q->nonempty, &q->lock);
		} else if (pthread_cond_timedwait(&q->nonempty, &q->lock, &deadline) == ETIMEDOUT) {
			item = take_locked(q);
			break;
		}
	}
	pthread_mutex_unlock(&q->lock);
	return item;
}

uint32_t vgpu_queue_drain_vm(struct vgpu_queue *q, uint32_t vm_slot,
			     struct vgpu_queue_item **ret_list)
{
	struct vgpu_queue_item *head = NULL, **out = &head;
	struct vgpu_queue_item *item, **link;
	struct queue_level *lv;
	uint32_t count = 0;
	int p;

	if (!ret_list)
		return 0;
	if (!q || vm_slot >= q->max_vms) {
		*ret_list = NULL;
		return 0;
	}

	pthread_mutex_lock(&q->lock);
	/* Highest level first, oldest first: the order pop would have used. */
	for (p = QUEUE_LEVELS - 1; p >= 0 && q->per_vm[vm_slot] > 0; p--) {
		lv = &q->level[p];
		lv->tail = NULL;
		link = &lv->head;
		while ((item = *link)) {
			if (item->vm_slot != vm_slot) {
				lv->tail = item;
				link = &item->next;
				continue;
			}
			*link = item->next;
			item->next = NULL;
			*out = item;
			out = &item->next;
			lv->depth--;
			q->per_vm[vm_slot]--;
			q->total--;
			count++;
		}
	}
	pthread_mutex_unlock(&q->lock);
	*ret_list = head;
	return count;
}

void vgpu_queue_close(struct vgpu_queue *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_cond_broadcast(&q->nonempty);
	pthread_mutex_unlock(&q->lock);
}

uint32_t vgpu_queue_depth(struct vgpu_queue *q, int priority)
{
	uint32_t depth = 0;

	if (!q || priority < -1 || priority >= QUEUE_LEVELS)
		return 0;
	pthread_mutex_lock(&q->lock);
	depth = priority < 0 ? q->total : q->level[priority].depth;
	pthread_mutex_unlock(&q->lock);
	return depth;
}
