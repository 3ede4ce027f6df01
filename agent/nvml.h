/* SPDX-License-Identifier: MIT */
/*
 * nvml.h - the GPUs as NVIDIA's driver reports them (nvml.c).
 */
#ifndef VGPU_AGENT_NVML_H
#define VGPU_AGENT_NVML_H

#include <stdbool.h>

#define AGENT_GPUS_MAX 64

struct agent_gpu {
	bool known;                      /* NVML gave a handle for it */
	char name[96];                   /* "" when not told */
	char bus_id[32];                 /* NVML's form, 00000000:19:00.0; "" when not told */
	bool memory_known;
	unsigned long long memory_total, memory_used; /* bytes, the whole card's */
	int util_gpu;                    /* percent of time a kernel ran; -1 when not told */
};

/* NVML's devices, at most @max, into @out: how many, or -1 with *@why the
 * reason (no NVML, no driver). Not thread-safe: the agent's lock. */
int agent_nvml_gpus(struct agent_gpu *out, int max, const char **why);

#endif
