/* SPDX-License-Identifier: MIT */
/*
 * test_budget.c - per-VM budgets: takes within the VM's limit, VGPU_BUSY
 * past what the VM or all VMs hold, VGPU_LIMIT for what can never fit,
 * refusal counts, gives (also more than held: clamped), idle slots, reset,
 * bad slots and kinds, and takes and gives from several threads at once
 * (for ThreadSanitizer) ending exactly where they started; the rate of new
 * pinned memory (a bucket per VM: burst, refill, refusals, reset).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>

#include "budget.h"
#include "vgpu_error.h"

static struct vgpu_budget *new_budget(uint32_t max_vms, uint64_t vm_bytes, uint64_t total_bytes)
{
	struct vgpu_budget_limits l = { .pin_rate = 1000, .pin_burst = 500 };
	struct vgpu_budget *b = NULL;

	for (int k = 0; k < VGPU_BUDGET_KINDS; k++) {
		l.vm[k] = 10;
		l.total[k] = UINT64_MAX;
	}
	l.vm[VGPU_BUDGET_BYTES] = vm_bytes;
	l.total[VGPU_BUDGET_BYTES] = total_bytes;
	assert_int_equal(vgpu_budget_new(max_vms, &l, &b), VGPU_OK);
	return b;
}

static void per_vm_limit(void **state)
{
	struct vgpu_budget *b = new_budget(4, 100, 1000);
	struct vgpu_budget_usage u;

	(void)state;
	assert_int_equal(vgpu_budget_take(b, 0, VGPU_BUDGET_BYTES, 60), VGPU_OK);
	assert_int_equal(vgpu_budget_take(b, 0, VGPU_BUDGET_BYTES, 41), VGPU_BUSY);
	assert_int_equal(vgpu_budget_take(b, 0, VGPU_BUDGET_BYTES, 40), VGPU_OK);
	assert_int_equal(vgpu_budget_take(b, 0, VGPU_BUDGET_BYTES, 1), VGPU_BUSY);
	assert_int_equal(vgpu_budget_take(b, 0, VGPU_BUDGET_BYTES, 101), VGPU_LIMIT);
	/* Another VM is not affected. */
	assert_int_equal(vgpu_budget_take(b, 1, VGPU_BUDGET_BYTES, 100), VGPU_OK);
	vgpu_budget_usage(b, 0, &u);
	assert_int_equal(u.held[VGPU_BUDGET_BYTES], 100);
	assert_int_equal(u.limit[VGPU_BUDGET_BYTES], 100);
	assert_int_equal(u.refused[VGPU_BUDGET_BYTES], 3);
	vgpu_budget_usage(b, 1, &u);
	assert_int_equal(u.refused[VGPU_BUDGET_BYTES], 0);
	vgpu_budget_give(b, 0, VGPU_BUDGET_BYTES, 60);
	assert_int_equal(vgpu_budget_take(b, 0, VGPU_BUDGET_BYTES, 60), VGPU_OK);
	vgpu_budget_free(b);
}

/* 1000 bytes a second, 500 at once (new_budget); times in ns. */
static void pin_rate(void **state)
{
	struct vgpu_budget *b = new_budget(4, 100, 1000);
	struct vgpu_budget_usage u;
	const uint64_t s = 1000000000ull, t0 = 5 * s;

	(void)state;
	assert_int_equal(vgpu_budget_pin(b, 0, 300, t0), VGPU_OK);
	assert_int_equal(vgpu_budget_pin(b, 0, 200, t0), VGPU_OK);
	assert_int_equal(vgpu_budget_pin(b, 0, 1, t0), VGPU_BUSY);      /* the burst is spent */
	assert_int_equal(vgpu_budget_pin(b, 1, 500, t0), VGPU_OK);      /* VM 1 has its own */
	assert_int_equal(vgpu_budget_pin(b, 0, 100, t0 + s / 20), VGPU_BUSY); /* 50 came back */
	assert_int_equal(vgpu_budget_pin(b, 0, 100, t0 + s / 10), VGPU_OK);   /* 100 */
	assert_int_equal(vgpu_budget_pin(b, 0, 0, t0 + s / 10), VGPU_OK);     /* nothing new */
	assert_int_equal(vgpu_budget_pin(b, 0, 501, t0 + 100 * s), VGPU_BUSY); /* over the burst */
	assert_int_equal(vgpu_budget_pin(b, 0, 500, t0 + 100 * s), VGPU_OK);  /* full, not more */
	vgpu_budget_usage(b, 0, &u);
	assert_int_equal(u.pin_rate, 1000);
	assert_int_equal(u.pin_refused, 3);
	/* A clock that goes back (another thread's older reading): a full bucket
	 * is not granted twice, the bucket is simply not refilled. */
	assert_int_equal(vgpu_budget_pin(b, 1, 1, t0 - s), VGPU_BUSY);
	vgpu_budget_reset(b, 0);
	vgpu_budget_usage(b, 0, &u);
	assert_int_equal(u.pin_refused, 0);
	assert_int_equal(vgpu_budget_pin(b, 0, 500, t0 + 100 * s), VGPU_OK); /* full again */
	assert_int_equal(vgpu_budget_pin(b, 9, 1, t0), VGPU_INVALID_PARAM);
	vgpu_budget_free(b);
}

static void host_total(void **state)
{
	struct vgpu_budget *b = new_budget(4, 100, 250);

	(void)state;
	assert_int_equal(vgpu_budget_take(b, 0, VGPU_BUDGET_BYTES, 100), VGPU_OK);
	assert_int_equal(vgpu_budget_take(b, 1, VGPU_BUDGET_BYTES, 100), VGPU_OK);
	/* VM 2 is within its own limit but the host is not. */
	assert_int_equal(vgpu_budget_take(b, 2, VGPU_BUDGET_BYTES, 60), VGPU_BUSY);
	assert_int_equal(vgpu_budget_take(b, 2, VGPU_BUDGET_BYTES, 50), VGPU_OK);
	vgpu_budget_give(b, 0, VGPU_BUDGET_BYTES, 100);
	assert_int_equal(vgpu_budget_take(b, 2, VGPU_BUDGET_BYTES, 50), VGPU_OK);
	vgpu_budget_free(b);
}

static void idle_and_reset(void **state)
{
	struct vgpu_budget *b = new_budget(2, 100, 1000);
	struct vgpu_budget_usage u;

	(void)state;
	assert_true(vgpu_budget_idle(b, 1));
	assert_int_equal(vgpu_budget_take(b, 1, VGPU_BUDGET_WINDOWS, 1), VGPU_OK);
	assert_false(vgpu_budget_idle(b, 1));
	assert_int_equal(vgpu_budget_take(b, 1, VGPU_BUDGET_WINDOWS, 11), VGPU_LIMIT);
	vgpu_budget_give(b, 1, VGPU_BUDGET_WINDOWS, 1);
	assert_true(vgpu_budget_idle(b, 1));
	vgpu_budget_reset(b, 1);
	vgpu_budget_usage(b, 1, &u);
	assert_int_equal(u.refused[VGPU_BUDGET_WINDOWS], 0);
	/* A give of more than is held is clamped; the host total with it. */
	assert_int_equal(vgpu_budget_take(b, 0, VGPU_BUDGET_BYTES, 10), VGPU_OK);
	vgpu_budget_give(b, 0, VGPU_BUDGET_BYTES, 50);
	vgpu_budget_usage(b, 0, &u);
	assert_int_equal(u.held[VGPU_BUDGET_BYTES], 0);
	assert_int_equal(vgpu_budget_take(b, 1, VGPU_BUDGET_BYTES, 100), VGPU_OK);
	vgpu_budget_free(b);
}

static void bad_arguments(void **state)
{
	struct vgpu_budget *b = new_budget(2, 100, 1000);
	struct vgpu_budget_limits l = { 0 };
	struct vgpu_budget *none = NULL;

	(void)state;
	assert_int_equal(vgpu_budget_take(b, 2, VGPU_BUDGET_BYTES, 1), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_budget_take(b, 0, VGPU_BUDGET_KINDS, 1), VGPU_INVALID_PARAM);
	vgpu_budget_give(b, 7, VGPU_BUDGET_BYTES, 1); /* ignored */
	assert_true(vgpu_budget_idle(b, 7));
	assert_int_equal(vgpu_budget_new(0, &l, &none), VGPU_INVALID_PARAM);
	assert_null(none);
	assert_string_equal(vgpu_budget_kind_name(VGPU_BUDGET_WINDOW_BYTES), "window_bytes");
	vgpu_budget_free(b);
	vgpu_budget_free(NULL);
}

#define THREADS 4
#define ROUNDS 20000

struct worker_arg {
	struct vgpu_budget *b;
	uint32_t slot;
	int taken;
};

static void *taker(void *p)
{
	struct worker_arg *a = p;

	for (int i = 0; i < ROUNDS; i++) {
		if (vgpu_budget_take(a->b, a->slot, VGPU_BUDGET_BYTES, 7) == VGPU_OK) {
			a->taken++;
			vgpu_budget_give(a->b, a->slot, VGPU_BUDGET_BYTES, 7);
		}
	}
	return NULL;
}

static void threads(void **state)
{
	struct vgpu_budget *b = new_budget(2, 30, 50);
	struct worker_arg args[THREADS];
	pthread_t t[THREADS];
	struct vgpu_budget_usage u0, u1;

	(void)state;
	for (int i = 0; i < THREADS; i++) {
		args[i] = (struct worker_arg){ .b = b, .slot = (uint32_t)(i & 1) };
		assert_int_equal(pthread_create(&t[i], NULL, taker, &args[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_true(args[i].taken > 0);
	}
	vgpu_budget_usage(b, 0, &u0);
	vgpu_budget_usage(b, 1, &u1);
	assert_int_equal(u0.held[VGPU_BUDGET_BYTES], 0);
	assert_int_equal(u1.held[VGPU_BUDGET_BYTES], 0);
	/* Back at zero: the whole host total is there again. */
	assert_int_equal(vgpu_budget_take(b, 0, VGPU_BUDGET_BYTES, 30), VGPU_OK);
	assert_int_equal(vgpu_budget_take(b, 1, VGPU_BUDGET_BYTES, 20), VGPU_OK);
	assert_int_equal(vgpu_budget_take(b, 1, VGPU_BUDGET_BYTES, 1), VGPU_BUSY);
	vgpu_budget_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(per_vm_limit),
		cmocka_unit_test(host_total),
		cmocka_unit_test(pin_rate),
		cmocka_unit_test(idle_and_reset),
		cmocka_unit_test(bad_arguments),
		cmocka_unit_test(threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
