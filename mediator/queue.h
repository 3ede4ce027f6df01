/* SPDX-License-Identifier: MIT */
/*
 * queue.h - the mediator's one queue of admitted work: bounded per VM and
 * in total, ordered by the scheduling policy (scheduler.h: priority with aging,
 * pool and VM weights, caps, rate limits, GPUs), each work's cost
 * estimated from what its op cost before (cost.h).
 *
 * Thread-safe: any thread may push, set or drain; each GPU's dispatcher
 * pops for its GPU. Items are the caller's (an intrusive link): the queue
 * never allocates after vgpu_queue_new.
 */
#ifndef VGPU_QUEUE_H
#define VGPU_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cost.h"
#include "pace.h"
#include "scheduler.h"

struct vgpu_queue_item {
	struct vgpu_sched_item sched; /* first; the caller sets sched.vm_slot and
				       * sched.mem_bytes */
	int priority;                 /* the VM's level when pushed (statistics) */
	int op;                       /* the caller's: for the cost estimate */
	uint64_t units;               /* vgpu_cost_units() of the work */
};

struct vgpu_queue;

/* @max_vms VM slots, @max_pools pools, @n_gpus GPUs; at most @per_vm_cap
 * queued items per VM and @total_cap in all. */
int vgpu_queue_new(uint32_t max_vms, uint32_t max_pools, uint32_t n_gpus, uint32_t per_vm_cap,
		   uint32_t total_cap, const struct vgpu_sched_params *params,
		   struct vgpu_queue **ret_queue);
void vgpu_queue_free(struct vgpu_queue *q);

/* vgpu_sched_set_pool / _set_vm / _remove_vm, at the current time. A
 * change applies to the work already queued, and wakes the poppers (a
 * higher cap or limit may free held-back work). */
int vgpu_queue_set_pool(struct vgpu_queue *q, uint32_t pool, uint32_t weight,
			uint32_t cap_permille, uint64_t gpus);
int vgpu_queue_set_vm(struct vgpu_queue *q, uint32_t slot, uint32_t pool, int level,
		      uint32_t weight, uint64_t rate_ns_per_s);
int vgpu_queue_set_vm_quota(struct vgpu_queue *q, uint32_t slot, uint64_t quota_bytes);
int vgpu_queue_remove_vm(struct vgpu_queue *q, uint32_t slot);

/* Append @item (sched.vm_slot, sched.mem_bytes, op and units set) behind
 * its VM's work. VGPU_BUSY when the VM's or the total cap is reached (the
 * caller answers busy at once), VGPU_SHUTDOWN after vgpu_queue_close(),
 * VGPU_INVALID_PARAM for a VM not set, VGPU_NO_MEMORY for a work larger
 * than the VM's memory quota. A refused push changes nothing.
 * It wakes no sleeping popper: the pusher (the loop thread) pops the item
 * itself next and calls vgpu_queue_wake() only when it could not. Waking a
 * popper that then loses the race costs the request its wake-up latency
 * (measured on the H100: up to 30 us of queue time). */
int vgpu_queue_push(struct vgpu_queue *q, struct vgpu_queue_item *item);
/* Whether a push for @vm_slot would be taken now: VGPU_OK, or the error
 * the push would return. For checks before work is spent on a request
 * (reading its payload); the push itself checks again. */
int vgpu_queue_room(struct vgpu_queue *q, uint32_t vm_slot);
/* Wake the sleeping poppers, to take what is queued. */
void vgpu_queue_wake(struct vgpu_queue *q);

/* The work GPU @gpu runs next (scheduler.h's order), waiting up to @timeout_ms
 * (0: not at all, -1: forever) for one; work held back by a cap or rate
 * limit is waited for too. After close it still hands out what is queued;
 * NULL on timeout, or once closed with nothing queued for @gpu. */
struct vgpu_queue_item *vgpu_queue_pop(struct vgpu_queue *q, uint32_t gpu, int timeout_ms);
/* @item, popped, finished after @measured_ns on the GPU (0 if it never
 * ran): the scheduler's charge corrected, the op's estimate taught. */
void vgpu_queue_done(struct vgpu_queue *q, struct vgpu_queue_item *item, uint64_t measured_ns);

/* Remove every queued item of @vm_slot (VM removed from the registry),
 * linking them through sched.next into *ret_list, oldest first, for the
 * caller to answer. Returns the count. vgpu_queue_free() never touches
 * queued items: drain them first. */
uint32_t vgpu_queue_drain_vm(struct vgpu_queue *q, uint32_t vm_slot,
			     struct vgpu_queue_item **ret_list);

/* Refuse further pushes and wake poppers. */
void vgpu_queue_close(struct vgpu_queue *q);

/* vgpu_pace_step() (pace.h) on the queue's scheduler, now: the VMs' CUDA
 * workers charged since @last_ns and paced. */
void vgpu_queue_pace(struct vgpu_queue *q, struct vgpu_pace_worker *list, uint64_t last_ns,
		     uint64_t now_ns);

/* Items queued now: in all (-1), or of VMs at one priority level. */
uint32_t vgpu_queue_depth(struct vgpu_queue *q, int priority);
/* vgpu_sched_usage() under the queue's lock. */
void vgpu_queue_usage(struct vgpu_queue *q, uint32_t slot, uint32_t pool, uint32_t gpu,
		      struct vgpu_sched_usage *ret);

#endif
