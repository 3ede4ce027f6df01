/* SPDX-License-Identifier: MIT */
/*
 * vgpu_spin.h - the body of every busy-wait loop in vgpu: tell the CPU we
 * are spinning (x86 PAUSE, arm64 YIELD), as CPU vendors ask of spin loops,
 * so that a sibling hardware thread gets the core's resources. On the
 * H100 machine it made no measurable difference to latency
 * (docs/performance.md, run 15).
 */
#ifndef VGPU_SPIN_H
#define VGPU_SPIN_H

static inline void vgpu_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif
