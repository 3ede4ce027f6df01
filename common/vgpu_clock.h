/* SPDX-License-Identifier: MIT */
/*
 * vgpu_clock.h - the one clock every timing in vgpu reads: CLOCK_MONOTONIC
 * in nanoseconds (never the wall clock, which jumps).
 */
#ifndef VGPU_CLOCK_H
#define VGPU_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t vgpu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
