/* SPDX-License-Identifier: MIT */
/*
 * scheduler.h - the scheduling policy: which queued work a GPU runs next.
 *
 * The model (docs/scheduler.md): pools, each with a weight (its share of
 * the GPU time when several pools wait), an optional cap (the most it may
 * use, even when the GPU is otherwise idle) and the GPUs it may use; VMs,
 * each in one pool, with a priority level, a weight within the pool and an
 * optional rate limit in GPU time per second. Every setting can change
 * while work is queued; the change applies to that queued work too.
 *
 * When a GPU asks for work (vgpu_sched_pick), in this order:
 *  1. aging: the oldest work of a level below the highest waiting one, if
 *     it has waited aging_ns or more and that level's floor (a small share
 *     of GPU time kept for starved levels) has room: low priority never
 *     starves, and high priority loses at most the floor to it;
 *  2. strict priority: the highest level with eligible work;
 *  3. between the pools waiting at that level, the one with the least
 *     virtual time (GPU time it used at that level / its weight), among
 *     pools allowed on this GPU and under their cap;
 *  4. within that pool, the VM with the least virtual time (its GPU time at
 *     that level / its weight), among VMs under their rate limit;
 *  5. that VM's oldest work.
 * Between equal virtual times, the oldest work goes first.
 * In-flight budget: a GPU is given work while the estimated time of what
 * it runs is below inflight_ns (inflight_min works always: a backend
 * that runs several at once, the CPU's threads, is kept busy), so that the backlog
 * stays here, where weights apply, and not in the GPU's own queues; work
 * of a level above everything running is not held back by it.
 * Guard (guard_ns > 0): while a level has work running on a GPU, or was
 * given work there within guard_ns, the levels below it get at most one
 * work running there in all: the GPU's own queues then hold little for a high-priority
 * work to wait behind (its latency), and still some work between its
 * requests (the GPU's use).
 *
 * Work-conserving: a pool or VM held back by its cap or limit leaves the
 * GPU to the others; when everything queued is held back, pick says when
 * to ask again.
 *
 * GPU time is charged twice: the caller's estimate of the work's cost at
 * pick (so that decisions between completions are already fair), then the
 * difference to the measured time at vgpu_sched_done. A pool or VM that
 * was idle resumes at the virtual time of those that kept working (no
 * credit saved up while idle).
 *
 * Memory quotas: a VM with a quota runs a work only while the device
 * memory its running works hold, plus this one's, fits the quota (or while
 * it holds none: a quota lowered below queued work must not strand it). A
 * work larger than the quota is refused at push (VGPU_NO_MEMORY). One
 * choke point: every GPU work passes here, and only the VM over its quota
 * waits or is refused.
 *
 * The same interface admits any unit of GPU work: a request of the
 * built-in ops, or a launch or copy of a VM's own CUDA program (issue 12),
 * each pushed with its estimated cost and completed with its measured one.
 *
 * Not thread-safe (queue.c holds its lock around every call); never
 * allocates after vgpu_sched_new; the clock is the caller's (a virtual one
 * in the simulation test), in nanoseconds.
 */
#ifndef VGPU_SCHEDULER_H
#define VGPU_SCHEDULER_H

#include <stdbool.h>
#include <stdint.h>

#define VGPU_SCHED_LEVELS 3       /* priorities 0 (low) .. 2 (high) */
#define VGPU_SCHED_MAX_GPUS 64    /* a pool's GPUs are a 64-bit mask */
#define VGPU_SCHED_WEIGHT_MAX 10000
#define VGPU_SCHED_COST_MAX_NS 1000000000000ull /* one work charged at most 1000 s */

struct vgpu_sched_item {
	struct vgpu_sched_item *next; /* the scheduler's, while queued */
	uint32_t vm_slot;             /* set by the caller */
	uint64_t cost_ns;             /* the caller's estimate, charged at pick */
	uint64_t mem_bytes;           /* the caller's: device memory it holds while it runs */
	uint64_t enqueued_ns;         /* set by push */
	uint64_t picked_ns;           /* set by pick: its time in the queue ends */
	/* Set by pick, read by done: where the charge went. */
	uint32_t pool;
	uint32_t gpu;
	uint32_t vm_gen;
	uint8_t level;
	bool aged;
};

struct vgpu_sched_params {
	uint64_t aging_ns;        /* work older than this may pass higher levels */
	uint32_t floor_permille;  /* GPU time per level kept for aged work */
	uint64_t burst_ns;        /* token buckets hold this much of their rate */
	uint64_t inflight_ns;     /* estimated GPU time one GPU may hold (0: no limit) */
	uint32_t inflight_min;    /* works a GPU is given whatever their time (>= 1) */
	uint64_t guard_ns;        /* a level counts as active this long after a pick */
};

/* Defaults: aging 50 ms, floor 5%, burst 100 ms, in flight 2 ms or 1 work,
 * no guard. */
void vgpu_sched_params_default(struct vgpu_sched_params *p);

struct vgpu_sched;

/* @max_vms VM slots, @max_pools pool slots, @n_gpus GPUs (1..64). */
int vgpu_sched_new(uint32_t max_vms, uint32_t max_pools, uint32_t n_gpus,
		   const struct vgpu_sched_params *params, struct vgpu_sched **ret);
void vgpu_sched_free(struct vgpu_sched *s);

/* Define or change pool @pool: @weight 1..VGPU_SCHED_WEIGHT_MAX,
 * @cap_permille 1..1000 (1000: no cap), @gpus a mask of GPUs below n_gpus
 * (at least one). VGPU_INVALID_PARAM for anything else, changing nothing. */
int vgpu_sched_set_pool(struct vgpu_sched *s, uint32_t pool, uint32_t weight,
			uint32_t cap_permille, uint64_t gpus, uint64_t now_ns);

/* Define or change VM @slot: in defined pool @pool, @level 0..2, @weight
 * 1..VGPU_SCHED_WEIGHT_MAX, @rate_ns_per_s GPU time per second (0: none).
 * A VM defined anew (after remove, or the first time) starts a new
 * generation: done() of work picked before is not charged to it. */
int vgpu_sched_set_vm(struct vgpu_sched *s, uint32_t slot, uint32_t pool, int level,
		      uint32_t weight, uint64_t rate_ns_per_s, uint64_t now_ns);
/* VM @slot's device-memory quota in bytes (0: none); defining the VM anew
 * clears it. */
int vgpu_sched_set_vm_quota(struct vgpu_sched *s, uint32_t slot, uint64_t quota_bytes);
/* Forget VM @slot; it must have no queued work (drain it first). */
int vgpu_sched_remove_vm(struct vgpu_sched *s, uint32_t slot);

/* Queue @item (vm_slot, cost_ns and mem_bytes set) behind its VM's other
 * work. VGPU_INVALID_PARAM for an undefined VM, VGPU_NO_MEMORY for a work
 * larger than the VM's memory quota. */
int vgpu_sched_push(struct vgpu_sched *s, struct vgpu_sched_item *item, uint64_t now_ns);

/* The work GPU @gpu runs next, charged; NULL when there is none it may
 * run now. Then *ret_retry_ns (if not NULL) is when held-back work may run
 * (a bucket refilled); UINT64_MAX when work is held back only by memory
 * quotas or the in-flight budget (it may run after a done()); 0 when there
 * is nothing for this GPU at all. */
struct vgpu_sched_item *vgpu_sched_pick(struct vgpu_sched *s, uint32_t gpu, uint64_t now_ns,
					uint64_t *ret_retry_ns);

/* @item, picked before, finished after @measured_ns of GPU time. */
void vgpu_sched_done(struct vgpu_sched *s, const struct vgpu_sched_item *item,
		     uint64_t measured_ns);

/*
 * GPU time used outside the queue: a VM's own CUDA programs, whose kernels
 * reach the GPU from the VM's worker (docs/scheduler.md, "A CUDA worker's
 * work"). The caller measures; these charge, answer and compare, with the
 * same virtual times and buckets as queued work, so a VM's rate limit and
 * its pool's weight and cap cover both.
 */
/* VM @slot's level; -1 for a VM not defined. */
int vgpu_sched_level(const struct vgpu_sched *s, uint32_t slot);
/* VM @slot used @ns of GPU @gpu: charged as a finished work's time is. */
void vgpu_sched_charge(struct vgpu_sched *s, uint32_t slot, uint32_t gpu, uint64_t ns);
/* VM @slot's room under its rate limit and its pool's cap at @now_ns, in
 * ns of GPU time (INT64_MAX: neither set, or no such VM); *@opens_ns: when
 * it has @want_ns (or as much as the buckets hold, if less), 0 if now. */
int64_t vgpu_sched_room(struct vgpu_sched *s, uint32_t slot, uint64_t now_ns, uint64_t want_ns,
			uint64_t *opens_ns);
/* How far VM @a is ahead of VM @b in its share at @a's level, in ns of
 * GPU time at @a's weight: their pools' when the pools differ, else the
 * VMs' within the pool (negative: behind). 0 when either is not defined. */
int64_t vgpu_sched_ahead(const struct vgpu_sched *s, uint32_t a, uint32_t b);
/* No credit for idling, for VMs outside the queue too: each step, the VMs
 * running outside it are told between begin and end, and the levels'
 * floors (where a pool or VM that starts waiting resumes, in the queue
 * as here) rise to the least of them; resume moves VM @slot's virtual
 * time at its level, and its pool's, up to those floors, as a VM that
 * starts waiting in the queue is. */
void vgpu_sched_outside_begin(struct vgpu_sched *s);
void vgpu_sched_outside_running(struct vgpu_sched *s, uint32_t slot);
void vgpu_sched_outside_end(struct vgpu_sched *s);
void vgpu_sched_resume(struct vgpu_sched *s, uint32_t slot);

/* Unlink every queued item of VM @slot into *ret_list (oldest first). */
uint32_t vgpu_sched_drain_vm(struct vgpu_sched *s, uint32_t slot,
			     struct vgpu_sched_item **ret_list);

/* Queued items: of VM @slot, or in all (slot UINT32_MAX). */
uint32_t vgpu_sched_depth(const struct vgpu_sched *s, uint32_t slot);
/* Queued items of the VMs at @level now. */
uint32_t vgpu_sched_level_depth(const struct vgpu_sched *s, int level);

/* GPU time charged so far (estimates corrected by measurements). */
struct vgpu_sched_usage {
	uint64_t vm_ns, pool_ns, gpu_ns; /* of the VM, the pool, the GPU */
	uint64_t picks, aged;            /* the VM's works picked; of them, aged */
	uint64_t mem_held, mem_quota;    /* the VM's device memory in running works; quota */
	uint64_t vm_gpus;                /* the GPUs the VM's works went to, a mask */
	uint64_t pool_gpu_ns;            /* the pool's on the GPU */
	uint32_t gpu_running;            /* works the GPU was given, not done */
};
/* Of VM @slot, pool @pool and GPU @gpu; each may be UINT32_MAX for none. */
void vgpu_sched_usage(const struct vgpu_sched *s, uint32_t slot, uint32_t pool, uint32_t gpu,
		      struct vgpu_sched_usage *ret);

#endif
