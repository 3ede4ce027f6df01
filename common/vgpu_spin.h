/*
 * vgpu_spin.h - busy-waiting in vgpu.
 *
 * vgpu_cpu_relax() is the body of every busy-wait loop: it tells the CPU we
 * are spinning (x86 PAUSE, arm64 YIELD), as CPU vendors ask of spin loops,
 * so that a sibling hardware thread gets the core's resources. On the H100
 * machine it made no measurable difference to latency (docs/performance.md,
 * run 15).
 *
 * vgpu_mutex_lock() is how the mediator takes every lock: a lock held by
 * another thread is nearly always released within a microsecond, so it
 * spins up to VGPU_MUTEX_SPIN_NS before it sleeps in the kernel. A plain
 * pthread_mutex_lock() sleeps at once, and inside a VM (the H100 machine;
 * XCP-ng's dom0 is one too) a sleeping thread took 25 to 30 us to run
 * again: the small-op slow mode of docs/performance.md, runs 6 to 19.
 */
#ifndef VGPU_SPIN_H
#define VGPU_SPIN_H

#include <pthread.h>
#include <stdint.h>

#include "vgpu_clock.h"

#define VGPU_MUTEX_SPIN_NS 20000u

static inline void vgpu_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

static inline void vgpu_mutex_lock(pthread_mutex_t *m)
{
	uint64_t t0;

	if (pthread_mutex_trylock(m) == 0)
		return;
	t0 = vgpu_now_ns();
	do {
		vgpu_cpu_relax();
		if (pthread_mutex_trylock(m) == 0)
			return;
	} while (vgpu_now_ns() - t0 < VGPU_MUTEX_SPIN_NS);
	pthread_mutex_lock(m);
}

#endif
