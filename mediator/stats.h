/* SPDX-License-Identifier: MIT */
/*
 * stats.h - counters and latency distributions per VM and per priority
 * level: submitted, completed, failed, rejected, bytes moved, queue wait and
 * execution time (p50, p99). Thread-safe; fixed memory per series.
 */
#ifndef VGPU_STATS_H
#define VGPU_STATS_H

#include <stdint.h>

/* Latencies from 1 us to ~1 h in log buckets (4 per power of two). */
#define VGPU_HIST_BUCKETS 128

struct vgpu_hist {
	uint64_t count;
	uint64_t sum_ns;               /* of the samples (Prometheus' _sum) */
	uint64_t buckets[VGPU_HIST_BUCKETS];
};

struct vgpu_series {
	uint64_t submitted, completed, failed, rejected;
	uint64_t bytes_in, bytes_out;
	struct vgpu_hist queue_wait;   /* ns */
	struct vgpu_hist exec;         /* ns */
};

enum vgpu_outcome {
	VGPU_OUTCOME_SUBMITTED,  /* accepted into the queue */
	VGPU_OUTCOME_REJECTED,   /* refused: busy, malformed, denied */
	VGPU_OUTCOME_COMPLETED,  /* answered with VGPU_OK */
	VGPU_OUTCOME_FAILED,     /* answered with an error after acceptance */
};

struct vgpu_stats;

int vgpu_stats_new(uint32_t max_vms, struct vgpu_stats **ret);
void vgpu_stats_free(struct vgpu_stats *s);

/* Count one event for VM slot @vm_slot at @priority. For COMPLETED and
 * FAILED only, @queue_ns and @exec_ns are recorded and @bytes_in/@bytes_out
 * added (once per request). An invalid slot or priority is ignored, the
 * other half still counted. */
void vgpu_stats_record(struct vgpu_stats *s, uint32_t vm_slot, int priority,
		       enum vgpu_outcome outcome, uint64_t queue_ns, uint64_t exec_ns,
		       uint64_t bytes_in, uint64_t bytes_out);

/* Zero a VM slot's series (slot reused for another VM). */
void vgpu_stats_reset_vm(struct vgpu_stats *s, uint32_t vm_slot);

/* Consistent copies of one VM's or one priority level's series. */
void vgpu_stats_vm(struct vgpu_stats *s, uint32_t vm_slot, struct vgpu_series *ret);
void vgpu_stats_priority(struct vgpu_stats *s, int priority, struct vgpu_series *ret);

/* The @q-quantile (0 < q < 1) of @h in ns: the upper bound of its bucket,
 * so never below the true value and at most 19% above; 0 when empty. */
uint64_t vgpu_hist_quantile(const struct vgpu_hist *h, double q);
/* Add one sample (ns). */
void vgpu_hist_add(struct vgpu_hist *h, uint64_t ns);
/* How many of @h's samples lie in buckets that end at or below @ns: those
 * below @ns exactly when @ns is a bucket's bound (1 us * 2^(i/4); every
 * power of two of microseconds is one). */
uint64_t vgpu_hist_count_below(const struct vgpu_hist *h, uint64_t ns);

#endif
