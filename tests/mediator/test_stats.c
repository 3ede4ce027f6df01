/* SPDX-License-Identifier: MIT */
/*
 * test_stats.c - the mediator's statistics: counters per VM and per priority
 * level, bytes and latencies recorded only for finished work, histogram
 * quantiles on known distributions (within the 19% bucket resolution, never
 * below the true value), empty histograms, samples below 1 us and above the
 * range, reset of a VM slot, bad slots and levels, and recording from several
 * threads while another takes snapshots.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "stats.h"
#include "vgpu_error.h"

#define US 1000ull

/* Whether @got is the bucket-bound report of @want: in [want, want * 1.19]. */
static void assert_within_resolution(uint64_t got, uint64_t want)
{
	if (got < want || (double)got > (double)want * 1.19)
		fail_msg("quantile %llu ns is not within 19%% above %llu ns",
			 (unsigned long long)got, (unsigned long long)want);
}

static struct vgpu_stats *new_stats(uint32_t max_vms)
{
	struct vgpu_stats *s = NULL;

	assert_int_equal(vgpu_stats_new(max_vms, &s), VGPU_OK);
	assert_non_null(s);
	return s;
}

static void counters(void **state)
{
	struct vgpu_stats *s = new_stats(4);
	struct vgpu_series v, p;
	(void)state;

	vgpu_stats_record(s, 1, 2, VGPU_OUTCOME_SUBMITTED, 0, 0, 0, 0);
	vgpu_stats_record(s, 1, 2, VGPU_OUTCOME_SUBMITTED, 0, 0, 0, 0);
	vgpu_stats_record(s, 1, 2, VGPU_OUTCOME_SUBMITTED, 0, 0, 0, 0);
	vgpu_stats_record(s, 1, 2, VGPU_OUTCOME_REJECTED, 0, 0, 0, 0);
	vgpu_stats_record(s, 1, 2, VGPU_OUTCOME_COMPLETED, 10 * US, 20 * US, 100, 200);
	vgpu_stats_record(s, 1, 2, VGPU_OUTCOME_COMPLETED, 10 * US, 20 * US, 100, 200);
	vgpu_stats_record(s, 1, 2, VGPU_OUTCOME_FAILED, 10 * US, 20 * US, 1, 0);
	vgpu_stats_record(s, 3, 2, VGPU_OUTCOME_COMPLETED, 10 * US, 20 * US, 1000, 2000);
	vgpu_stats_record(s, 3, 0, VGPU_OUTCOME_SUBMITTED, 0, 0, 0, 0);

	vgpu_stats_vm(s, 1, &v);
	assert_int_equal(v.submitted, 3);
	assert_int_equal(v.rejected, 1);
	assert_int_equal(v.completed, 2);
	assert_int_equal(v.failed, 1);
	assert_int_equal(v.bytes_in, 201);
	assert_int_equal(v.bytes_out, 400);
	assert_int_equal(v.queue_wait.count, 3);
	assert_int_equal(v.exec.count, 3);
	assert_within_resolution(vgpu_hist_quantile(&v.queue_wait, 0.5), 10 * US);
	assert_within_resolution(vgpu_hist_quantile(&v.exec, 0.99), 20 * US);

	vgpu_stats_priority(s, 2, &p);
	assert_int_equal(p.submitted, 3);
	assert_int_equal(p.rejected, 1);
	assert_int_equal(p.completed, 3);
	assert_int_equal(p.failed, 1);
	assert_int_equal(p.bytes_in, 1201);
	assert_int_equal(p.bytes_out, 2400);
	assert_int_equal(p.exec.count, 4);

	vgpu_stats_priority(s, 0, &p);
	assert_int_equal(p.submitted, 1);
	assert_int_equal(p.completed + p.failed + p.rejected + p.exec.count, 0);
	vgpu_stats_priority(s, 1, &p);
	assert_int_equal(p.submitted + p.completed, 0);
	vgpu_stats_vm(s, 0, &v);
	assert_int_equal(v.submitted + v.completed + v.queue_wait.count, 0);
	vgpu_stats_vm(s, 3, &v);
	assert_int_equal(v.submitted, 1);
	assert_int_equal(v.completed, 1);
	vgpu_stats_free(s);
}

static void quantile_uniform(void **state)
{
	struct vgpu_hist h;
	uint64_t i;
	(void)state;

	memset(&h, 0, sizeof(h));
	for (i = 1; i <= 1000; i++)
		vgpu_hist_add(&h, i * US);
	assert_int_equal(h.count, 1000);
	assert_within_resolution(vgpu_hist_quantile(&h, 0.50), 500 * US);
	assert_within_resolution(vgpu_hist_quantile(&h, 0.99), 990 * US);
	assert_within_resolution(vgpu_hist_quantile(&h, 0.10), 100 * US);
	assert_within_resolution(vgpu_hist_quantile(&h, 0.999), 999 * US);
	/* Quantiles never decrease with q. */
	for (i = 1; i < 100; i++)
		assert_true(vgpu_hist_quantile(&h, (double)i / 100) <=
			    vgpu_hist_quantile(&h, (double)(i + 1) / 100));
}

static void quantile_bimodal(void **state)
{
	struct vgpu_hist h;
	int i;
	(void)state;

	/* 98% fast at 50 us, 2% slow at 20 ms: p50 fast, p99 slow. */
	memset(&h, 0, sizeof(h));
	for (i = 0; i < 980; i++)
		vgpu_hist_add(&h, 50 * US);
	for (i = 0; i < 20; i++)
		vgpu_hist_add(&h, 20000 * US);
	assert_within_resolution(vgpu_hist_quantile(&h, 0.50), 50 * US);
	assert_within_resolution(vgpu_hist_quantile(&h, 0.98), 50 * US);
	assert_within_resolution(vgpu_hist_quantile(&h, 0.99), 20000 * US);
}

/* One sample anywhere in the range is reported within the resolution. */
static void quantile_resolution_sweep(void **state)
{
	struct vgpu_hist h;
	uint64_t v;
	(void)state;

	for (v = US; v < 3000000000000ull; v += v / 7 + 1) {
		memset(&h, 0, sizeof(h));
		vgpu_hist_add(&h, v);
		assert_within_resolution(vgpu_hist_quantile(&h, 0.5), v);
		assert_within_resolution(vgpu_hist_quantile(&h, 0.01), v);
		assert_within_resolution(vgpu_hist_quantile(&h, 0.99), v);
	}
}

/* Prometheus' cumulative buckets at powers of two of microseconds, and
 * the sum: exact. */
static void count_below_and_sum(void **state)
{
	struct vgpu_hist h;
	(void)state;

	memset(&h, 0, sizeof(h));
	vgpu_hist_add(&h, 500);         /* below 1 us */
	vgpu_hist_add(&h, US);          /* exactly 1 us: not below it */
	vgpu_hist_add(&h, 3 * US);
	vgpu_hist_add(&h, 4 * US - 1);
	vgpu_hist_add(&h, 4 * US);
	vgpu_hist_add(&h, 1000 * US);
	assert_int_equal(vgpu_hist_count_below(&h, US), 1);
	assert_int_equal(vgpu_hist_count_below(&h, 2 * US), 2);
	assert_int_equal(vgpu_hist_count_below(&h, 4 * US), 4);
	assert_int_equal(vgpu_hist_count_below(&h, 8 * US), 5);
	assert_int_equal(vgpu_hist_count_below(&h, 1024 * US), 6);
	assert_int_equal(vgpu_hist_count_below(&h, 0), 0);
	assert_int_equal(vgpu_hist_count_below(&h, UINT64_MAX), 6);
	assert_int_equal(h.sum_ns, 500 + US + 3 * US + 4 * US - 1 + 4 * US + 1000 * US);
	vgpu_hist_add(&h, UINT64_MAX);
	assert_int_equal(h.sum_ns, UINT64_MAX); /* saturated, not wrapped */
}

static void quantile_edges(void **state)
{
	struct vgpu_hist h;
	uint64_t top;
	(void)state;

	memset(&h, 0, sizeof(h));
	assert_int_equal(vgpu_hist_quantile(&h, 0.5), 0);
	assert_int_equal(vgpu_hist_quantile(&h, 0.99), 0);
	assert_int_equal(vgpu_hist_quantile(NULL, 0.5), 0);
	vgpu_hist_add(NULL, 5);

	/* Below 1 us: bucket 0, reported as 1 us. */
	vgpu_hist_add(&h, 0);
	vgpu_hist_add(&h, 1);
	vgpu_hist_add(&h, 999);
	assert_int_equal(h.count, 3);
	assert_int_equal(h.buckets[0], 3);
	assert_int_equal(vgpu_hist_quantile(&h, 0.5), US);
	assert_int_equal(vgpu_hist_quantile(&h, 0.99), US);

	/* Exactly 1 us opens bucket 1, whose bound is 2^(1/4) us. */
	memset(&h, 0, sizeof(h));
	vgpu_hist_add(&h, US);
	assert_int_equal(h.buckets[1], 1);
	assert_int_equal(vgpu_hist_quantile(&h, 0.5), 1189);

	/* Above the range: the last bucket, reported as its nominal bound (~1 h). */
	memset(&h, 0, sizeof(h));
	vgpu_hist_add(&h, 2ull * 3600 * 1000000000ull);
	vgpu_hist_add(&h, UINT64_MAX);
	assert_int_equal(h.buckets[VGPU_HIST_BUCKETS - 1], 2);
	top = vgpu_hist_quantile(&h, 0.5);
	assert_true(top > 3500ull * 1000000000ull && top < 3700ull * 1000000000ull);
	assert_int_equal(vgpu_hist_quantile(&h, 1.0), top);

	/* q outside (0, 1) is clamped: the smallest and largest samples. */
	memset(&h, 0, sizeof(h));
	vgpu_hist_add(&h, 10 * US);
	vgpu_hist_add(&h, 1000 * US);
	assert_within_resolution(vgpu_hist_quantile(&h, 0.0), 10 * US);
	assert_within_resolution(vgpu_hist_quantile(&h, -3.0), 10 * US);
	assert_within_resolution(vgpu_hist_quantile(&h, 1.0), 1000 * US);
	assert_within_resolution(vgpu_hist_quantile(&h, 7.0), 1000 * US);
}

static void reset_and_bad_arguments(void **state)
{
	struct vgpu_stats *s = (struct vgpu_stats *)&s;
	struct vgpu_series v;
	(void)state;

	assert_int_equal(vgpu_stats_new(0, &s), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_stats_new(1, NULL), VGPU_INVALID_PARAM);
	assert_ptr_equal(s, (struct vgpu_stats *)&s);
	vgpu_stats_free(NULL);

	s = new_stats(2);
	vgpu_stats_record(s, 0, 1, VGPU_OUTCOME_COMPLETED, 5 * US, 7 * US, 10, 20);
	vgpu_stats_record(s, 1, 1, VGPU_OUTCOME_COMPLETED, 5 * US, 7 * US, 10, 20);
	vgpu_stats_reset_vm(s, 0);
	vgpu_stats_vm(s, 0, &v);
	assert_int_equal(v.completed + v.bytes_in + v.exec.count + v.queue_wait.count, 0);
	assert_int_equal(vgpu_hist_quantile(&v.exec, 0.5), 0);
	vgpu_stats_vm(s, 1, &v);
	assert_int_equal(v.completed, 1);
	vgpu_stats_priority(s, 1, &v); /* the level keeps its history */
	assert_int_equal(v.completed, 2);

	/* A bad slot or level is ignored; the valid half is still counted. */
	vgpu_stats_record(s, 2, 1, VGPU_OUTCOME_SUBMITTED, 0, 0, 0, 0);
	vgpu_stats_record(s, 1, 3, VGPU_OUTCOME_SUBMITTED, 0, 0, 0, 0);
	vgpu_stats_record(s, 1, -1, VGPU_OUTCOME_SUBMITTED, 0, 0, 0, 0);
	vgpu_stats_record(s, 1, 1, (enum vgpu_outcome)42, 0, 0, 0, 0);
	vgpu_stats_record(NULL, 0, 0, VGPU_OUTCOME_SUBMITTED, 0, 0, 0, 0);
	vgpu_stats_reset_vm(s, 2);
	vgpu_stats_reset_vm(NULL, 0);
	vgpu_stats_priority(s, 1, &v);
	assert_int_equal(v.submitted, 1);
	vgpu_stats_vm(s, 1, &v);
	assert_int_equal(v.submitted, 2);
	assert_int_equal(v.completed, 1);

	memset(&v, 0xff, sizeof(v));
	vgpu_stats_vm(s, 2, &v);
	assert_int_equal(v.submitted + v.exec.count, 0);
	memset(&v, 0xff, sizeof(v));
	vgpu_stats_priority(s, 3, &v);
	assert_int_equal(v.submitted + v.exec.count, 0);
	vgpu_stats_vm(s, 0, NULL);
	vgpu_stats_priority(s, 0, NULL);
	vgpu_stats_free(s);
}

#define WRITERS 4
#define RECORDS 10000

struct writer {
	struct vgpu_stats *s;
	uint32_t slot;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	int i;

	for (i = 0; i < RECORDS; i++) {
		vgpu_stats_record(w->s, w->slot, i % 3, VGPU_OUTCOME_SUBMITTED, 0, 0, 0, 0);
		vgpu_stats_record(w->s, w->slot, i % 3, VGPU_OUTCOME_COMPLETED,
				  (uint64_t)(i % 1000 + 1) * US, 3 * US, 4, 8);
	}
	return NULL;
}

static int readers_stop;

static void *reader_main(void *arg)
{
	struct vgpu_stats *s = arg;
	struct vgpu_series v;
	unsigned long bad = 0;

	while (!__atomic_load_n(&readers_stop, __ATOMIC_ACQUIRE)) {
		/* A snapshot is consistent: every completion carries its samples. */
		vgpu_stats_priority(s, 1, &v);
		if (v.completed != v.exec.count || v.bytes_in != 4 * v.completed ||
		    v.submitted < v.completed)
			bad++;
		vgpu_stats_vm(s, 0, &v);
		if (v.completed != v.queue_wait.count || v.bytes_out != 8 * v.completed)
			bad++;
	}
	return (void *)bad;
}

static void concurrent_recording(void **state)
{
	struct vgpu_stats *s = new_stats(WRITERS);
	struct writer w[WRITERS];
	pthread_t th[WRITERS], reader;
	struct vgpu_series v;
	void *bad;
	uint64_t total = 0;
	int i;
	(void)state;

	__atomic_store_n(&readers_stop, 0, __ATOMIC_RELEASE);
	assert_int_equal(pthread_create(&reader, NULL, reader_main, s), 0);
	for (i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){ .s = s, .slot = (uint32_t)i };
		assert_int_equal(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
	}
	for (i = 0; i < WRITERS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	__atomic_store_n(&readers_stop, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(reader, &bad), 0);
	assert_null(bad);

	for (i = 0; i < WRITERS; i++) {
		vgpu_stats_vm(s, (uint32_t)i, &v);
		assert_int_equal(v.submitted, RECORDS);
		assert_int_equal(v.completed, RECORDS);
		assert_int_equal(v.queue_wait.count, RECORDS);
		assert_int_equal(v.bytes_in, 4 * RECORDS);
		assert_within_resolution(vgpu_hist_quantile(&v.queue_wait, 0.5), 500 * US);
	}
	for (i = 0; i < 3; i++) {
		vgpu_stats_priority(s, i, &v);
		total += v.completed;
		assert_int_equal(v.completed, v.exec.count);
	}
	assert_int_equal(total, WRITERS * RECORDS);
	vgpu_stats_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(counters),
		cmocka_unit_test(quantile_uniform),
		cmocka_unit_test(quantile_bimodal),
		cmocka_unit_test(quantile_resolution_sweep),
		cmocka_unit_test(quantile_edges),
		cmocka_unit_test(count_below_and_sum),
		cmocka_unit_test(reset_and_bad_arguments),
		cmocka_unit_test(concurrent_recording),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
