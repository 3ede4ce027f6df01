/* SPDX-License-Identifier: MIT */
/*
 * cpu-pairs.c - how long a cache line takes to go from one CPU to another
 * and back, for every pair of CPUs: two threads pinned to CPUs a and b
 * bounce a counter through one atomic, and the median round trip of each
 * pair is printed as a matrix (ns). On a VM the guest sees one flat NUMA
 * node; this shows whether some vCPU pairs are in fact far apart on the
 * host (the mediator's small-op latency crosses such lines dozens of times
 * per request: docs/performance.md, runs 11 to 16).
 *
 *   build/bench/cpu-pairs [ROUNDS]    (by hand: gcc -O2 -pthread -Icommon
 *                                      bench/cpu-pairs.c -o cpu-pairs)
 *
 * Never: run unpinned (a pair whose thread cannot be pinned is skipped and
 * printed as "-").
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_setaffinity_np, when built by hand */
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "vgpu_clock.h"

#define MAX_CPUS 64
#define SAMPLES 101

struct pair {
	int cpu;
	long rounds;
	_Atomic long *flag;
	int pinned;
};

static int pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* The far side: answer every odd value with the next even one. */
static void *echo(void *arg)
{
	struct pair *p = arg;

	p->pinned = pin(p->cpu) == 0;
	for (long i = 0; i < p->rounds; i++) {
		long want = 2 * i + 1;

		while (atomic_load_explicit(p->flag, memory_order_acquire) != want)
			;
		atomic_store_explicit(p->flag, want + 1, memory_order_release);
	}
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Median round trip between @a and @b in ns, or 0 when not pinned. */
static uint64_t measure(int a, int b, long rounds)
{
	_Atomic long flag = 0;
	struct pair p = { .cpu = b, .rounds = rounds * SAMPLES, .flag = &flag };
	uint64_t samples[SAMPLES];
	pthread_t th;
	long v = 0;

	if (pin(a) != 0 || pthread_create(&th, NULL, echo, &p) != 0)
		return 0;
	for (int s = 0; s < SAMPLES; s++) {
		uint64_t t0 = vgpu_now_ns();

		for (long i = 0; i < rounds; i++) {
			atomic_store_explicit(&flag, ++v, memory_order_release);
			while (atomic_load_explicit(&flag, memory_order_acquire) != v + 1)
				;
			v++;
		}
		samples[s] = (vgpu_now_ns() - t0) / (uint64_t)rounds;
	}
	pthread_join(th, NULL);
	if (!p.pinned)
		return 0;
	qsort(samples, SAMPLES, sizeof(samples[0]), cmp);
	return samples[SAMPLES / 2];
}

int main(int argc, char **argv)
{
	long rounds = argc > 1 ? atol(argv[1]) : 2000;
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (rounds < 1 || n < 2) {
		fprintf(stderr, "usage: cpu-pairs [ROUNDS >= 1] (on 2 CPUs or more)\n");
		return 2;
	}
	if (n > MAX_CPUS)
		n = MAX_CPUS;
	printf("median round trip between CPUs, ns (%ld CPUs, %d x %ld rounds per pair)\n     ",
	       n, SAMPLES, rounds);
	for (int b = 0; b < n; b++)
		printf("%5d", b);
	printf("\n");
	for (int a = 0; a < n; a++) {
		printf("%4d ", a);
		for (int b = 0; b < n; b++) {
			uint64_t ns = a == b ? 0 : measure(a, b, rounds);

			if (a == b || !ns)
				printf("%5s", "-");
			else
				printf("%5llu", (unsigned long long)ns);
		}
		printf("\n");
		fflush(stdout);
	}
	return 0;
}
