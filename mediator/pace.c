/* SPDX-License-Identifier: MIT */
/*
 * pace.c - shares, rate limits and caps for the VMs' CUDA workers (see
 * pace.h; docs/scheduler.md, "A CUDA worker's work").
 *
 * Never: read the clock, allocate, or pace a worker that is not busy (its
 * next launch would wait for nothing: it is paced at its next step).
 */
#include <stddef.h>

#include "pace.h"

/* @b is another VM's worker at @a's level on a GPU they share. */
static bool beside(const struct vgpu_sched *s, const struct vgpu_pace_worker *a,
		   const struct vgpu_pace_worker *b)
{
	return a != b && a->slot != b->slot && b->slot != UINT32_MAX && (a->gpus & b->gpus) &&
	       vgpu_sched_level(s, a->slot) == vgpu_sched_level(s, b->slot);
}

static uint32_t lowest_gpu(uint64_t mask)
{
	return mask ? (uint32_t)__builtin_ctzll(mask) : 0;
}

/* From when @w ran in [@last, @now): @now when it did not. */
static uint64_t ran_from(const struct vgpu_pace_worker *w, uint64_t last, uint64_t now)
{
	if (!w->was_busy || w->slot == UINT32_MAX)
		return now;
	if (w->paced_until > last)
		return w->paced_until < now ? w->paced_until : now;
	return last;
}

/* Charge: the GPU time-slices between the workers that run on it, so in
 * each part of the step each worker that runs then is charged that part
 * over k, the workers running then that share a GPU with it (itself
 * counted). A worker runs from ran_from() to @now, so the parts are cut
 * where one starts: usually none (every worker ran all the step or not at
 * all), a few where paced ones went on. */
static uint64_t share_of(const struct vgpu_pace_worker *list, const struct vgpu_pace_worker *w,
			 uint64_t last, uint64_t now)
{
	uint64_t at = ran_from(w, last, now), ns = 0;

	while (at < now) {
		uint64_t k = 0, cut = now;

		for (const struct vgpu_pace_worker *b = list; b; b = b->next) {
			uint64_t from = ran_from(b, last, now);

			if (!(b->gpus & w->gpus))
				continue;
			if (from <= at)
				k++;
			else if (from < cut)
				cut = from;
		}
		if (!k)
			break; /* w itself runs from at: it cannot be */
		ns += (cut - at) / k;
		at = cut;
	}
	return ns;
}

static void charge(struct vgpu_sched *s, struct vgpu_pace_worker *list, uint64_t last,
		   uint64_t now)
{
	for (struct vgpu_pace_worker *w = list; w; w = w->next) {
		uint64_t ns;

		if (w->was_busy && w->paced_until > last)
			w->paced_ns += ran_from(w, last, now) - last;
		ns = share_of(list, w, last, now);
		if (!ns)
			continue;
		w->gpu_ns += ns;
		vgpu_sched_charge(s, w->slot, lowest_gpu(w->gpus), ns);
	}
}

static bool runs(const struct vgpu_pace_worker *w, uint64_t now)
{
	return w->busy && w->slot != UINT32_MAX && w->paced_until <= now;
}

/* The most @w is ahead of a worker beside it that runs at @now and has a
 * slice's room under its limits (or all its buckets hold); INT64_MIN when
 * none does. */
static int64_t most_ahead(struct vgpu_sched *s, const struct vgpu_pace_worker *list,
			  const struct vgpu_pace_worker *w, uint64_t now)
{
	int64_t most = INT64_MIN;
	uint64_t opens;

	for (const struct vgpu_pace_worker *b = list; b; b = b->next) {
		int64_t a;

		if (!runs(b, now) || !beside(s, w, b))
			continue;
		vgpu_sched_room(s, b->slot, now, VGPU_PACE_SLICE_NS, &opens);
		if (opens)
			continue;
		a = vgpu_sched_ahead(s, w->slot, b->slot);
		if (a > most)
			most = a;
	}
	return most;
}

void vgpu_pace_step(struct vgpu_sched *s, struct vgpu_pace_worker *list, uint64_t last_ns,
		    uint64_t now_ns)
{
	charge(s, list, last_ns, now_ns);
	/* The floors from who ran; workers that became busy, or were let go
	 * by their limits, resume at them: no credit kept for the time they
	 * did not run. */
	vgpu_sched_outside_begin(s);
	for (struct vgpu_pace_worker *w = list; w; w = w->next)
		if (ran_from(w, last_ns, now_ns) < now_ns && !w->fixed)
			vgpu_sched_outside_running(s, w->slot);
	vgpu_sched_outside_end(s);
	for (struct vgpu_pace_worker *w = list; w; w = w->next) {
		bool released = w->paced_until && w->paced_until <= now_ns && !w->for_share;

		if (w->busy && (!w->was_busy || released) && w->slot != UINT32_MAX && !w->fixed) {
			if (!w->was_busy)
				w->paced_until = 0;
			vgpu_sched_resume(s, w->slot);
		}
	}
	/* Each decided from who runs now (before these decisions), then the
	 * decisions take effect together. */
	for (struct vgpu_pace_worker *w = list; w; w = w->next) {
		uint64_t until = 0;
		int64_t ahead;

		bool limited = w->paced_until > now_ns && !w->for_share;

		w->for_share = false;
		if (!w->busy && limited) {
			until = w->paced_until; /* its next launch waits too */
		} else if (w->busy && w->slot != UINT32_MAX && !w->fixed) {
			/* Over a limit: paced until a step's worth is back, not a
			 * step for every microsecond refilled. */
			int64_t room = vgpu_sched_room(s, w->slot, now_ns, VGPU_PACE_STEP_NS, &until);

			if (!limited && room > 0)
				until = 0;
			ahead = until ? 0 : most_ahead(s, list, w, now_ns);
			if (!until && ahead != INT64_MIN &&
			    ahead > (w->paced_until > now_ns ? 0 : (int64_t)VGPU_PACE_SLACK_NS)) {
				until = now_ns + VGPU_PACE_SLICE_NS;
				w->for_share = true;
			}
		}
		w->was_busy = w->busy; /* after: most_ahead reads paced_until */
		w->next_until = until;
	}
	for (struct vgpu_pace_worker *w = list; w; w = w->next)
		w->paced_until = w->next_until;
}

uint64_t vgpu_pace_next(const struct vgpu_pace_worker *list, uint64_t now_ns)
{
	uint64_t next = 0;

	for (const struct vgpu_pace_worker *w = list; w; w = w->next)
		if (w->paced_until > now_ns && (!next || w->paced_until < next))
			next = w->paced_until;
	return next;
}
