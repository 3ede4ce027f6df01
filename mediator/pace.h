/* SPDX-License-Identifier: MIT */
/*
 * pace.h - the scheduler's shares, rate limits and caps for work that does
 * not pass its queue: the VMs' own CUDA programs, whose kernels go to the
 * GPU from each VM's worker process (docs/scheduler.md, "A CUDA worker's
 * work").
 *
 * What is measured: a worker says when its processes have GPU work
 * outstanding (busy) and when not. While k workers that share a GPU run
 * (busy and not paced), the GPU time-slices between their contexts, so
 * each is charged 1/k of the time, to its VM in the scheduler (its
 * virtual time at its level, its rate limit, its pool's cap): an
 * estimate from the workers' own reports, not the GPU's counters.
 *
 * What is decided: a worker is paced (its next launches wait, up to a
 * deadline this gives) while its VM is over its rate limit or its pool
 * over its cap, until a step's worth is back in the bucket (its deadline
 * kept while it is idle); or, for its share, while it is
 * more than VGPU_PACE_SLACK_NS of GPU time ahead of a running worker of
 * another VM at its level on a GPU they share, until it is no longer
 * ahead. Work-conserving: a share is only paced in favour of a worker
 * that runs and has a slice's room under its limits (one about to be
 * paced by them would leave the GPU idle until the next step). A
 * worker that becomes busy, or is let go by its limits, resumes at its
 * level's floors (the least virtual time of those that ran, the floors the
 * queue uses too): no credit for the time it did not run, whoever starts
 * first. Between levels, priority is the hold's (cuda_host.c), not this.
 *
 * Pure policy: no clock, no locks, no I/O (the caller holds the
 * scheduler's lock: queue.c's vgpu_queue_pace), so that the simulation
 * test runs it with a virtual clock.
 */
#ifndef VGPU_PACE_H
#define VGPU_PACE_H

#include <stdbool.h>
#include <stdint.h>

#include "scheduler.h"

#define VGPU_PACE_STEP_NS (5ull * 1000000u)  /* a step at least this often while busy */
#define VGPU_PACE_SLACK_NS (10ull * 1000000u) /* ahead by this much: paced */
#define VGPU_PACE_SLICE_NS (20ull * 1000000u) /* a share's pacing, renewed each step */

struct vgpu_pace_worker {
	struct vgpu_pace_worker *next;
	/* The caller's: */
	uint32_t slot;         /* its VM's scheduler slot; UINT32_MAX: none (not charged or paced) */
	uint64_t gpus;         /* the GPUs it may use, a mask (charged to the lowest) */
	bool busy;             /* it says its processes have GPU work outstanding */
	bool fixed;            /* it cannot be told: charged, never paced */
	/* Kept here: */
	bool was_busy;         /* busy, as of the last step */
	bool for_share;        /* paced for its share, not a limit */
	uint64_t paced_until;  /* 0: not paced; the worker goes on by itself then */
	uint64_t next_until;   /* the step's decision, before it takes effect */
	uint64_t gpu_ns;       /* charged in all */
	uint64_t paced_ns;     /* paced in all, while busy */
};

/*
 * One step, at @now_ns: the time since @last_ns (the step before) charged
 * to the workers that ran in it, as they were then (busy, and not paced
 * or no longer: a worker goes on at its deadline by itself); then each
 * worker's pacing decided anew from who is busy now. The caller steps on
 * every change of a worker's busy and every few ms between.
 */
void vgpu_pace_step(struct vgpu_sched *s, struct vgpu_pace_worker *list, uint64_t last_ns,
		    uint64_t now_ns);
/* The first deadline after @now_ns of a paced worker (0: none): the
 * caller steps then too, so that what ran in each step is what ran
 * throughout it. */
uint64_t vgpu_pace_next(const struct vgpu_pace_worker *list, uint64_t now_ns);

#endif
