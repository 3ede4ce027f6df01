/*
 * vgpu_spin.h - the body of every busy-wait loop in vgpu: tell the CPU we
 * are spinning. On x86 PAUSE hands the core's execution resources to the
 * sibling hardware thread (a spinner without it slows down whatever runs
 * beside it: another of our threads, or, in a VM, another vCPU on the
 * same physical core) and saves power; on arm64 YIELD says the same.
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
