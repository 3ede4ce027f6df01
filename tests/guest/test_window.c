/* SPDX-License-Identifier: MIT */
/*
 * test_window.c - the client's allocator of offsets in a shared-memory
 * window's data area (guest/window.c): rounding and alignment, first fit,
 * merging on free, its errors, window_owns(), a long random run checked
 * against a shadow model, and a full block table.
 *
 * The allocator's promise is that no two used blocks overlap and none
 * leaves the area: the mediator trusts the offsets only as far as its own
 * checks, but a client that got overlapping buffers would corrupt itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "window.h"

/* Where the data area starts in a real window (VGPU_RING_DATA_OFFSET). */
#define BASE 102400u

static uint64_t round64(uint64_t size)
{
	return size ? (size + 63) / 64 * 64 : 64;
}

static void test_init_and_rounding(void **state)
{
	struct window w;
	uint64_t a, b, c, d, e;

	(void)state;
	assert_int_equal(window_init(&w, BASE, 4096), VGPU_OK);
	assert_false(window_owns(&w, BASE, 1));
	assert_int_equal(window_alloc(&w, 1, &a), VGPU_OK);
	assert_true(a == BASE);
	assert_int_equal(window_alloc(&w, 64, &b), VGPU_OK);
	assert_true(b == BASE + 64);
	assert_int_equal(window_alloc(&w, 65, &c), VGPU_OK);
	assert_true(c == BASE + 128);
	assert_int_equal(window_alloc(&w, 127, &d), VGPU_OK);
	assert_true(d == BASE + 256);     /* 65 took 128 */
	assert_int_equal(window_alloc(&w, 129, &e), VGPU_OK);
	assert_true(e == BASE + 384);     /* 127 took 128 */
	/* Each block is its size rounded up to 64, and no more. */
	assert_true(window_owns(&w, a, 64));
	assert_false(window_owns(&w, a, 65));
	assert_true(window_owns(&w, c, 128));
	assert_false(window_owns(&w, c, 129));
	assert_true(window_owns(&w, e, 192));
	assert_false(window_owns(&w, e, 193));
	assert_false(window_owns(&w, e + 192, 1));
	window_fini(&w);
	assert_null(w.b);
	assert_int_equal(w.n, 0);
	assert_false(window_owns(&w, a, 1));

	/* An area at offset 0 hands out offset 0. */
	assert_int_equal(window_init(&w, 0, 128), VGPU_OK);
	assert_int_equal(window_alloc(&w, 100, &a), VGPU_OK);
	assert_true(a == 0);
	assert_true(window_owns(&w, 0, 128));
	window_fini(&w);
}

static void test_zero_size(void **state)
{
	struct window w;
	uint64_t a, b;

	(void)state;
	assert_int_equal(window_init(&w, BASE, 4096), VGPU_OK);
	assert_int_equal(window_alloc(&w, 0, &a), VGPU_OK);
	assert_int_equal(window_alloc(&w, 0, &b), VGPU_OK);
	assert_true(a == BASE);
	assert_true(b == BASE + 64);
	assert_true(window_owns(&w, a, 64));
	assert_false(window_owns(&w, a, 65));
	assert_int_equal(window_free(&w, a), VGPU_OK);
	assert_int_equal(window_free(&w, b), VGPU_OK);
	window_fini(&w);
}

static void test_too_large(void **state)
{
	struct window w;
	uint64_t off = 7, whole;

	(void)state;
	assert_int_equal(window_init(&w, BASE, 4096), VGPU_OK);
	assert_int_equal(window_alloc(&w, 4097, &off), VGPU_LIMIT);
	assert_int_equal(window_alloc(&w, 8192, &off), VGPU_LIMIT);
	assert_int_equal(window_alloc(&w, UINT64_MAX, &off), VGPU_LIMIT);
	assert_int_equal(window_alloc(&w, UINT64_MAX - 62, &off), VGPU_LIMIT);
	assert_true(off == 7);
	/* The whole area, and then nothing, which is not a limit but a lack. */
	assert_int_equal(window_alloc(&w, 4033, &whole), VGPU_OK);
	assert_true(whole == BASE);
	assert_true(window_owns(&w, BASE, 4096));
	assert_int_equal(window_alloc(&w, 1, &off), VGPU_NO_MEMORY);
	assert_int_equal(window_alloc(&w, 0, &off), VGPU_NO_MEMORY);
	assert_int_equal(window_alloc(&w, 4096, &off), VGPU_NO_MEMORY);
	assert_int_equal(window_alloc(&w, 4097, &off), VGPU_LIMIT);
	assert_true(off == 7);
	assert_int_equal(window_free(&w, whole), VGPU_OK);
	assert_int_equal(window_alloc(&w, 4096, &whole), VGPU_OK);
	assert_true(whole == BASE);
	window_fini(&w);
}

static void test_fragmented(void **state)
{
	struct window w;
	uint64_t off[8], o = 0;

	(void)state;
	assert_int_equal(window_init(&w, BASE, 8 * 64), VGPU_OK);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(window_alloc(&w, 64, &off[i]), VGPU_OK);
		assert_true(off[i] == BASE + 64u * (uint64_t)i);
	}
	assert_int_equal(window_alloc(&w, 1, &o), VGPU_NO_MEMORY);
	/* Free every other block: 256 bytes free, but no two together. */
	for (int i = 0; i < 8; i += 2)
		assert_int_equal(window_free(&w, off[i]), VGPU_OK);
	assert_int_equal(window_alloc(&w, 65, &o), VGPU_NO_MEMORY);
	assert_int_equal(window_alloc(&w, 128, &o), VGPU_NO_MEMORY);
	/* First fit: the lowest hole. */
	assert_int_equal(window_alloc(&w, 64, &o), VGPU_OK);
	assert_true(o == off[0]);
	/* Freeing 3 joins the holes at 2, 3 and 4 into one of 192 bytes. */
	assert_int_equal(window_free(&w, off[3]), VGPU_OK);
	assert_int_equal(window_alloc(&w, 193, &o), VGPU_NO_MEMORY);
	assert_int_equal(window_alloc(&w, 192, &o), VGPU_OK);
	assert_true(o == off[2]);
	assert_true(window_owns(&w, off[2], 192));
	/* Holes at 6 only; freeing 5 and 7 joins 5..7 (the last block). */
	assert_int_equal(window_free(&w, off[7]), VGPU_OK);
	assert_int_equal(window_free(&w, off[5]), VGPU_OK);
	assert_int_equal(window_alloc(&w, 192, &o), VGPU_OK);
	assert_true(o == off[5]);
	assert_int_equal(window_alloc(&w, 1, &o), VGPU_NO_MEMORY);
	window_fini(&w);
}

static void test_free_errors(void **state)
{
	struct window w;
	uint64_t a, b;

	(void)state;
	assert_int_equal(window_init(&w, BASE, 4096), VGPU_OK);
	assert_int_equal(window_free(&w, BASE), VGPU_NOT_FOUND);   /* nothing used */
	assert_int_equal(window_alloc(&w, 256, &a), VGPU_OK);
	assert_int_equal(window_alloc(&w, 128, &b), VGPU_OK);
	assert_int_equal(window_free(&w, a + 64), VGPU_NOT_FOUND); /* inside a block */
	assert_int_equal(window_free(&w, a + 1), VGPU_NOT_FOUND);
	assert_int_equal(window_free(&w, b + 128), VGPU_NOT_FOUND); /* the free rest */
	assert_int_equal(window_free(&w, BASE - 64), VGPU_NOT_FOUND);
	assert_int_equal(window_free(&w, BASE + 4096), VGPU_NOT_FOUND);
	assert_int_equal(window_free(&w, 0), VGPU_NOT_FOUND);
	assert_int_equal(window_free(&w, UINT64_MAX), VGPU_NOT_FOUND);
	/* None of that changed anything. */
	assert_true(window_owns(&w, a, 256));
	assert_true(window_owns(&w, b, 128));
	assert_int_equal(window_free(&w, a), VGPU_OK);
	assert_int_equal(window_free(&w, a), VGPU_NOT_FOUND);      /* twice */
	assert_false(window_owns(&w, a, 1));
	assert_true(window_owns(&w, b, 128));
	assert_int_equal(window_free(&w, b), VGPU_OK);
	assert_int_equal(window_free(&w, b), VGPU_NOT_FOUND);
	/* All merged back: the double frees did not split or duplicate. */
	assert_int_equal(window_alloc(&w, 4096, &a), VGPU_OK);
	assert_true(a == BASE);
	window_fini(&w);
}

static void test_owns(void **state)
{
	struct window w;
	uint64_t a, b, c;

	(void)state;
	assert_int_equal(window_init(&w, BASE, 4096), VGPU_OK);
	assert_int_equal(window_alloc(&w, 128, &a), VGPU_OK);
	assert_int_equal(window_alloc(&w, 128, &b), VGPU_OK);
	assert_int_equal(window_alloc(&w, 64, &c), VGPU_OK);
	assert_int_equal(window_free(&w, c), VGPU_OK);
	/* Inside one used block. */
	assert_true(window_owns(&w, a, 128));
	assert_true(window_owns(&w, a, 1));
	assert_true(window_owns(&w, a + 64, 64));
	assert_true(window_owns(&w, a + 127, 1));
	assert_true(window_owns(&w, b + 4, 100));
	/* Across the end of a block, even into another used one. */
	assert_false(window_owns(&w, a, 129));
	assert_false(window_owns(&w, a + 64, 128));
	assert_false(window_owns(&w, a + 127, 2));
	assert_false(window_owns(&w, a, 256));
	assert_false(window_owns(&w, b, 129));
	assert_false(window_owns(&w, a, UINT64_MAX));
	assert_false(window_owns(&w, a + 64, UINT64_MAX - 63));
	/* Free blocks: the freed one and the rest of the area. */
	assert_false(window_owns(&w, c, 64));
	assert_false(window_owns(&w, c, 1));
	assert_false(window_owns(&w, b + 128, 1));
	assert_false(window_owns(&w, BASE + 4095, 1));
	/* Outside the area. */
	assert_false(window_owns(&w, BASE - 64, 64));
	assert_false(window_owns(&w, BASE - 1, 2));
	assert_false(window_owns(&w, BASE + 4096, 1));
	assert_false(window_owns(&w, 0, 1));
	assert_false(window_owns(&w, UINT64_MAX, 1));
	/* A used block freed is no longer owned; its neighbour still is. */
	assert_int_equal(window_free(&w, a), VGPU_OK);
	assert_false(window_owns(&w, a, 1));
	assert_true(window_owns(&w, b, 128));
	window_fini(&w);
}

/* --- random run against a shadow model -------------------------------- */

struct live {
	uint64_t off, size;
};

#define AREA (256u << 10)
#define MAX_LIVE ((int)(AREA / 64))

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void)
{
	/* xorshift64*: fixed seed, the same run every time. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1du;
}

/* Where first fit must put @size bytes, given the used blocks @l[0..n)
 * sorted by offset and the free ones merged: the first gap that holds
 * it. UINT64_MAX when none does. */
static uint64_t first_fit(const struct live *l, int n, uint64_t size)
{
	uint64_t at = BASE;

	for (int i = 0; i < n; i++) {
		if (l[i].off - at >= size)
			return at;
		at = l[i].off + l[i].size;
	}
	return BASE + AREA - at >= size ? at : UINT64_MAX;
}

static void check_model(const struct window *w, const struct live *l, int n)
{
	uint64_t at = BASE;

	for (int i = 0; i < n; i++) {
		/* Sorted, apart, aligned, inside. */
		assert_true(l[i].off >= at);
		assert_true(l[i].off % 64 == 0);
		assert_true(l[i].off + l[i].size <= BASE + AREA);
		assert_true(window_owns(w, l[i].off, l[i].size));
		assert_false(window_owns(w, l[i].off, l[i].size + 1));
		if (l[i].off > at)
			assert_false(window_owns(w, at, 1));
		at = l[i].off + l[i].size;
	}
	if (at < BASE + AREA)
		assert_false(window_owns(w, at, 1));
}

static void test_random(void **state)
{
	static struct live l[MAX_LIVE];
	int n = 0, allocs = 0, frees = 0, full = 0, limits = 0, bogus = 0;
	struct window w;
	uint64_t off;

	(void)state;
	assert_int_equal(window_init(&w, BASE, AREA), VGPU_OK);
	for (int step = 0; step < 5000; step++) {
		uint64_t r = rnd() % 100;

		if (n == 0 || r < 55) {
			uint64_t pick = rnd() % 100, size, want;
			int rc;

			if (pick < 70)
				size = rnd() % 2049;
			else if (pick < 97)
				size = rnd() % (32u << 10);
			else
				size = AREA - 256 + rnd() % 512;
			want = size > AREA ? UINT64_MAX : first_fit(l, n, round64(size));
			off = UINT64_MAX - 1;
			rc = window_alloc(&w, size, &off);
			if (size > AREA) {
				assert_int_equal(rc, VGPU_LIMIT);
				assert_true(off == UINT64_MAX - 1);
				limits++;
			} else if (want == UINT64_MAX) {
				assert_int_equal(rc, VGPU_NO_MEMORY);
				assert_true(off == UINT64_MAX - 1);
				full++;
			} else {
				int at = 0;

				assert_int_equal(rc, VGPU_OK);
				assert_true(off == want);
				while (at < n && l[at].off < off)
					at++;
				assert_true(n < MAX_LIVE);
				memmove(&l[at + 1], &l[at], (size_t)(n - at) * sizeof(l[0]));
				l[at] = (struct live){ .off = off, .size = round64(size) };
				n++;
				allocs++;
			}
		} else if (r < 95) {
			int k = (int)(rnd() % (uint64_t)n);

			assert_int_equal(window_free(&w, l[k].off), VGPU_OK);
			assert_false(window_owns(&w, l[k].off, 1));
			off = l[k].off;
			memmove(&l[k], &l[k + 1], (size_t)(n - k - 1) * sizeof(l[0]));
			n--;
			assert_int_equal(window_free(&w, off), VGPU_NOT_FOUND);
			frees++;
		} else {
			/* Any offset that does not start a used block. */
			bool starts = false;

			off = BASE - 64 + rnd() % (AREA + 128);
			for (int i = 0; i < n; i++)
				starts |= l[i].off == off;
			if (!starts) {
				assert_int_equal(window_free(&w, off), VGPU_NOT_FOUND);
				bogus++;
			}
		}
		check_model(&w, l, n);
	}
	/* The run went through every case. */
	assert_true(allocs > 1000);
	assert_true(frees > 1000);
	assert_true(full > 10);
	assert_true(limits > 10);
	assert_true(bogus > 50);
	/* Free everything, in a random order: the area merges back whole. */
	while (n > 0) {
		int k = (int)(rnd() % (uint64_t)n);

		assert_int_equal(window_free(&w, l[k].off), VGPU_OK);
		memmove(&l[k], &l[k + 1], (size_t)(n - k - 1) * sizeof(l[0]));
		n--;
	}
	assert_int_equal(window_alloc(&w, AREA, &off), VGPU_OK);
	assert_true(off == BASE);
	assert_true(window_owns(&w, BASE, AREA));
	window_fini(&w);
}

/* --- a full block table ----------------------------------------------- */

static void test_table_full(void **state)
{
	const uint64_t area = 64u * (WINDOW_MAX_BLOCKS + 64);
	uint64_t *offs = calloc(WINDOW_MAX_BLOCKS, sizeof(*offs));
	struct window w;
	uint64_t off = 7;
	int count = 0, rc;

	(void)state;
	assert_non_null(offs);
	assert_int_equal(window_init(&w, BASE, area), VGPU_OK);
	for (;;) {
		rc = window_alloc(&w, 64, &off);
		if (rc != VGPU_OK)
			break;
		assert_true(count < WINDOW_MAX_BLOCKS);
		offs[count++] = off;
	}
	/* The table holds every used block and the free rest. */
	assert_int_equal(rc, VGPU_NO_MEMORY);
	assert_int_equal(count, WINDOW_MAX_BLOCKS - 1);
	assert_int_equal(w.n, WINDOW_MAX_BLOCKS);
	for (int i = 0; i < count; i++) {
		assert_true(offs[i] == BASE + 64u * (uint64_t)i);
		assert_true(window_owns(&w, offs[i], 64));
	}
	assert_false(window_owns(&w, BASE + 64u * (uint64_t)count, 1));
	assert_int_equal(window_alloc(&w, 128, &off), VGPU_NO_MEMORY);
	assert_int_equal(window_alloc(&w, 0, &off), VGPU_NO_MEMORY);

	/* A hole in the middle needs no new entry: it can be reused. */
	assert_int_equal(window_free(&w, offs[100]), VGPU_OK);
	assert_false(window_owns(&w, offs[100], 1));
	assert_int_equal(window_alloc(&w, 64, &off), VGPU_OK);
	assert_true(off == offs[100]);
	assert_int_equal(window_alloc(&w, 64, &off), VGPU_NO_MEMORY);
	/* Freeing the last block merges it into the rest: one entry back. */
	assert_int_equal(window_free(&w, offs[count - 1]), VGPU_OK);
	assert_int_equal(window_alloc(&w, 64, &off), VGPU_OK);
	assert_true(off == offs[count - 1]);
	for (int i = 0; i < count; i++)
		assert_true(window_owns(&w, offs[i], 64));

	/* And all the way back to one free block. */
	for (int i = 0; i < count; i++)
		assert_int_equal(window_free(&w, offs[i]), VGPU_OK);
	assert_int_equal(w.n, 1);
	assert_int_equal(window_alloc(&w, area, &off), VGPU_OK);
	assert_true(off == BASE);
	window_fini(&w);
	free(offs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_and_rounding),
		cmocka_unit_test(test_zero_size),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_fragmented),
		cmocka_unit_test(test_free_errors),
		cmocka_unit_test(test_owns),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_table_full),
	};

	return cmocka_run_group_tests_name("window", tests, NULL, NULL);
}
