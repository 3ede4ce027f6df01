/* SPDX-License-Identifier: MIT */
/*
 * queue.h - the mediator's one queue across pools A and B: three priority
 * levels, FIFO within a level, bounded per VM and in total.
 *
 * Thread-safe: any thread may push; the dispatcher pops. Items are the
 * caller's (an intrusive link): the queue never allocates.
 */
#ifndef VGPU_QUEUE_H
#define VGPU_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"

struct vgpu_queue_item {
	struct vgpu_queue_item *next; /* the queue's */
	int priority;                 /* 0..2, fixed when pushed */
	uint32_t vm_slot;             /* index of the VM, < max_vms */
	uint64_t enqueued_ns;         /* set by vgpu_queue_push */
};

struct vgpu_queue;

/* @max_vms VM slots; at most @per_vm_cap queued items per VM and @total_cap in all. */
int vgpu_queue_new(uint32_t max_vms, uint32_t per_vm_cap, uint32_t total_cap,
		   struct vgpu_queue **ret_queue);
void vgpu_queue_free(struct vgpu_queue *q);

/* Append @item (priority and vm_slot set by the caller). VGPU_BUSY when the
 * VM's or the total cap is reached (the caller answers busy at once),
 * VGPU_SHUTDOWN after vgpu_queue_close(), VGPU_INVALID_PARAM for a priority
 * outside 0..2 or vm_slot >= max_vms. A refused push changes nothing.
 * It wakes no sleeping popper: the pusher (the loop thread) pops the item
 * itself next and calls vgpu_queue_wake() only when it could not. Waking a
 * popper that then loses the race costs the request its wake-up latency
 * (measured on the H100: up to 30 us of queue time). */
int vgpu_queue_push(struct vgpu_queue *q, struct vgpu_queue_item *item);
/* Whether a push for @vm_slot would be taken now: VGPU_OK, or the error
 * the push would return. For checks before work is spent on a request
 * (reading its payload); the push itself checks again. */
int vgpu_queue_room(struct vgpu_queue *q, uint32_t vm_slot);
/* Wake one sleeping popper, to take what is queued. */
void vgpu_queue_wake(struct vgpu_queue *q);

/* The oldest item of the highest non-empty priority, waiting up to
 * @timeout_ms (0: not at all, -1: forever) for one. After close it still
 * hands out what is queued; NULL on timeout or once closed and empty. */
struct vgpu_queue_item *vgpu_queue_pop(struct vgpu_queue *q, int timeout_ms);

/* Remove every queued item of @vm_slot (VM removed from the registry),
 * linking them into *ret_list (highest level first, FIFO within a level)
 * for the caller to answer. Returns the count. vgpu_queue_free() never
 * touches queued items: drain them first. */
uint32_t vgpu_queue_drain_vm(struct vgpu_queue *q, uint32_t vm_slot,
			     struct vgpu_queue_item **ret_list);

/* Refuse further pushes and wake poppers. */
void vgpu_queue_close(struct vgpu_queue *q);

/* Items queued now: in all, and of one priority level. */
uint32_t vgpu_queue_depth(struct vgpu_queue *q, int priority /* -1: all */);

#endif
