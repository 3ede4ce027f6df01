/* SPDX-License-Identifier: MIT */
/*
 * stats.c - counters and latency histograms per VM slot and per priority
 * level (see stats.h).
 *
 * Histograms: bucket 0 holds samples below 1 us; bucket i (1..126) holds
 * [1 us * 2^((i-1)/4), 1 us * 2^(i/4)); the last bucket (127) holds everything
 * from ~50.6 min up. A quantile is reported as the upper bound of the bucket
 * holding it, so it is never below the true sample and at most 2^(1/4) - 1,
 * i.e. within 19%, above it (the last bucket reports ~60.2 min, whatever its
 * samples were).
 *
 * One mutex guards every series, so that a snapshot is consistent and a
 * record touches its VM's and its level's series atomically; each record is
 * a few additions. Never: allocate after vgpu_stats_new, or write outside the
 * series when given a bad slot or level (the bad part is ignored).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "stats.h"
#include "vgpu_error.h"
#include "vgpu_mutex.h"

struct vgpu_stats {
	pthread_mutex_t lock;
	uint32_t max_vms;
	struct vgpu_series level[VGPU_PRIORITY_LEVELS]; /* index = priority */
	struct vgpu_series vm[];                        /* max_vms of them */
};

/* 1000 ns * 2^(j/4) in 44.20 fixed point, j = 0..3. */
static const uint64_t quarter_octave[4] = {
	1048576000u, 1246974040u, 1482910400u, 1763487599u,
};

/* Upper bound (exclusive) of bucket @i in ns: 1 us * 2^(i/4). */
static uint64_t bucket_bound(unsigned int i)
{
	return (quarter_octave[i & 3] << (i >> 2)) >> 20;
}

static unsigned int bucket_of(uint64_t ns)
{
	unsigned int lo = 0, hi = VGPU_HIST_BUCKETS - 1, mid;

	/* The first bucket whose bound exceeds ns; the last takes the rest. */
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (ns < bucket_bound(mid))
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

void vgpu_hist_add(struct vgpu_hist *h, uint64_t ns)
{
	if (!h)
		return;
	h->buckets[bucket_of(ns)]++;
	h->count++;
	h->sum_ns = ns > UINT64_MAX - h->sum_ns ? UINT64_MAX : h->sum_ns + ns; /* saturates */
}

uint64_t vgpu_hist_count_below(const struct vgpu_hist *h, uint64_t ns)
{
	uint64_t n = 0;

	for (unsigned int i = 0; i < VGPU_HIST_BUCKETS && bucket_bound(i) <= ns; i++)
		n += h->buckets[i];
	return n;
}

uint64_t vgpu_hist_quantile(const struct vgpu_hist *h, double q)
{
	uint64_t rank, seen = 0;
	double want;
	unsigned int i;

	if (!h || h->count == 0)
		return 0;
	if (!(q > 0.0))
		q = 0.0;
	if (q > 1.0)
		q = 1.0;
	/* The rank-th smallest sample, rank = ceil(q * count), at least 1. */
	want = q * (double)h->count;
	rank = (uint64_t)want;
	if ((double)rank < want)
		rank++;
	if (rank == 0)
		rank = 1;
	for (i = 0; i < VGPU_HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank)
			return bucket_bound(i);
	}
	return bucket_bound(VGPU_HIST_BUCKETS - 1);
}

int vgpu_stats_new(uint32_t max_vms, struct vgpu_stats **ret)
{
	struct vgpu_stats *s;
	size_t size;

	if (!ret || max_vms == 0)
		return VGPU_INVALID_PARAM;
	if (__builtin_mul_overflow((size_t)max_vms, sizeof(s->vm[0]), &size) ||
	    __builtin_add_overflow(size, sizeof(*s), &size))
		return VGPU_NO_MEMORY;
	s = calloc(1, size);
	if (!s)
		return VGPU_NO_MEMORY;
	if (vgpu_mutex_init(&s->lock) != 0) {
		free(s);
		return VGPU_ERROR;
	}
	s->max_vms = max_vms;
	*ret = s;
	return VGPU_OK;
}

void vgpu_stats_free(struct vgpu_stats *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static void series_add(struct vgpu_series *se, enum vgpu_outcome outcome, uint64_t queue_ns,
		       uint64_t exec_ns, uint64_t bytes_in, uint64_t bytes_out)
{
	switch (outcome) {
	case VGPU_OUTCOME_SUBMITTED:
		se->submitted++;
		return;
	case VGPU_OUTCOME_REJECTED:
		se->rejected++;
		return;
	case VGPU_OUTCOME_COMPLETED:
		se->completed++;
		break;
	case VGPU_OUTCOME_FAILED:
		se->failed++;
		break;
	default:
		return;
	}
	vgpu_hist_add(&se->queue_wait, queue_ns);
	vgpu_hist_add(&se->exec, exec_ns);
	se->bytes_in += bytes_in;
	se->bytes_out += bytes_out;
}

void vgpu_stats_record(struct vgpu_stats *s, uint32_t vm_slot, int priority,
		       enum vgpu_outcome outcome, uint64_t queue_ns, uint64_t exec_ns,
		       uint64_t bytes_in, uint64_t bytes_out)
{
	bool vm_ok, level_ok;

	if (!s)
		return;
	vm_ok = vm_slot < s->max_vms;
	level_ok = priority >= 0 && priority < VGPU_PRIORITY_LEVELS;
	pthread_mutex_lock(&s->lock);
	if (vm_ok)
		series_add(&s->vm[vm_slot], outcome, queue_ns, exec_ns, bytes_in, bytes_out);
	if (level_ok)
		series_add(&s->level[priority], outcome, queue_ns, exec_ns, bytes_in, bytes_out);
	pthread_mutex_unlock(&s->lock);
}

void vgpu_stats_reset_vm(struct vgpu_stats *s, uint32_t vm_slot)
{
	if (!s || vm_slot >= s->max_vms)
		return;
	pthread_mutex_lock(&s->lock);
	memset(&s->vm[vm_slot], 0, sizeof(s->vm[vm_slot]));
	pthread_mutex_unlock(&s->lock);
}

void vgpu_stats_vm(struct vgpu_stats *s, uint32_t vm_slot, struct vgpu_series *ret)
{
	if (!ret)
		return;
	if (!s || vm_slot >= s->max_vms) {
		memset(ret, 0, sizeof(*ret));
		return;
	}
	pthread_mutex_lock(&s->lock);
	*ret = s->vm[vm_slot];
	pthread_mutex_unlock(&s->lock);
}

void vgpu_stats_priority(struct vgpu_stats *s, int priority, struct vgpu_series *ret)
{
	if (!ret)
		return;
	if (!s || priority < 0 || priority >= VGPU_PRIORITY_LEVELS) {
		memset(ret, 0, sizeof(*ret));
		return;
	}
	pthread_mutex_lock(&s->lock);
	*ret = s->level[priority];
	pthread_mutex_unlock(&s->lock);
}
