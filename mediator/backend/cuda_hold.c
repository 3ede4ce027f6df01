/* SPDX-License-Identifier: MIT */
/*
 * cuda_hold.c - lower levels hold still on the GPU while a higher level
 * runs (the `gpu_hold_us` setting; off when 0).
 *
 * CUDA stream priorities only order the blocks waiting for an SM; they do
 * not stop a low-priority work's queued copies from taking the copy
 * engines, nor its long kernels from holding the SMs (ARCHITECTURE.md,
 * principle 5). With the hold on, every piece a work below high priority
 * enqueues (a copy piece of copy_slice_kib, a vector chunk's kernel, a
 * K-slice of an sgemm, cuda_launch.c) is preceded on its stream by a wait
 * on its level's gate word, cuStreamWaitValue32(gate == 0), read by the GPU
 * from pinned host memory. The gate of level l closes (1) as soon as a
 * launcher starts a work of a level above l, and opens again hold_ns after
 * the last work above l completed, so a client that submits its next
 * high-priority work right after the last one finds the lower levels still
 * holding. A high-priority work then waits for at most the one piece of
 * each lower work already running, not for the pieces queued behind it.
 *
 * Starvation and deadlock: a level's gate opens by force once the oldest
 * work its waiter waits for has been on the GPU for HOLD_MAX_NS, until
 * that work completes. The gates are re-derived at every launch and
 * completion, and by the waiter of every held level at each of its polls
 * (it never sleeps on an event while its level is held), so a gate never
 * stays closed on a work past that bound, whatever else the GPU does: a
 * work above that waits for device memory a held work holds, or a
 * device-wide synchronization (cudaFree) behind a held stream, waits at
 * most HOLD_MAX_NS. A work takes its hold only once it is past its
 * memory (vgpu_cuda_launch()), and the backend's fini opens every gate
 * before it waits for the works in flight.
 *
 * Streams of different levels must not share a hardware queue, or a held
 * stream would stall the high level's behind it: the backend asks CUDA for
 * 32 (CUDA_DEVICE_MAX_CONNECTIONS, cuda.c) when the hold is on.
 *
 * The times are the works' own stamps (vgpu_cuda_hold_begin/_end): a
 * level's hold_ns runs from when its waiter saw the last work above done,
 * a few microseconds before that work's client hears of it.
 *
 * Never: close a gate without a way to open it (every close is matched by
 * a completion), or block in here.
 */
#include <cuda.h>
#include <stdatomic.h>
#include <stdio.h>

#include "backend_internal.h"
#include "cuda_internal.h"

/* A held work's oldest piece waits at most this long for its gate. */
#define HOLD_MAX_NS 20000000ull

typedef CUresult (*wait_value_fn)(CUstream stream, CUdeviceptr addr, cuuint32_t value,
				  unsigned int flags);

int vgpu_cuda_hold_init(struct vgpu_cuda_ctx *c, uint64_t hold_ns, char *err, size_t err_size)
{
	enum cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
	void *fn = NULL;
	cudaError_t e;

	c->hold_ns = hold_ns;
	if (hold_ns == 0)
		return VGPU_OK;
	if (!c->host_direct) {
		snprintf(err, err_size, "cuda: gpu_hold_us needs a device that reads pinned host "
					"memory; set gpu_hold_us=0");
		return VGPU_INVALID_PARAM;
	}
	e = cudaGetDriverEntryPointByVersion("cuStreamWaitValue32", &fn, 12000, cudaEnableDefault,
					     &q);
	if (e != cudaSuccess || q != cudaDriverEntryPointSuccess || !fn) {
		snprintf(err, err_size, "cuda: gpu_hold_us: the driver has no cuStreamWaitValue32 (%s)",
			 cudaGetErrorString(e));
		cudaGetLastError();
		return VGPU_BACKEND;
	}
	e = cudaHostAlloc((void **)&c->gate, VGPU_PRIORITY_LEVELS * sizeof(c->gate[0]),
			  cudaHostAllocPortable | cudaHostAllocMapped);
	if (e == cudaSuccess)
		e = cudaHostGetDevicePointer((void **)&c->gate_dev, (void *)c->gate, 0);
	if (e != cudaSuccess) {
		snprintf(err, err_size, "cuda: gpu_hold_us: gate words: %s", cudaGetErrorString(e));
		cudaGetLastError();
		return vgpu_cuda_status(e);
	}
	for (int l = 0; l < VGPU_PRIORITY_LEVELS; l++)
		atomic_store(&c->gate[l], 0);
	c->wait_value = fn;
	return VGPU_OK;
}

void vgpu_cuda_hold_free(struct vgpu_cuda_ctx *c)
{
	if (c->gate)
		cudaFreeHost((void *)c->gate);
	c->gate = NULL;
	c->wait_value = NULL;
}

bool vgpu_cuda_held(const struct vgpu_cuda_lane *ln)
{
	return ln->level->c->wait_value && ln->level->index < VGPU_PRIORITY_LEVELS - 1;
}

/* @now, or the latest time the gates were set at if that is later: the
 * stamps callers pass were taken on their threads before the lock, and
 * the differences below must not run backwards. hold_lock held. */
static uint64_t latest(struct vgpu_cuda_ctx *c, uint64_t now)
{
	if (now < c->gates_ns)
		return c->gates_ns;
	c->gates_ns = now;
	return now;
}

/* Set every gate from the counts at @now (latest()'s): level l closed
 * while a level above it has works on the GPU or finished its last one
 * less than hold_ns ago, unless the oldest work of level l its waiter
 * waits for has been on the GPU for HOLD_MAX_NS. hold_lock held. */
static void set_gates(struct vgpu_cuda_ctx *c, uint64_t now)
{
	bool above = false;

	for (int l = VGPU_PRIORITY_LEVELS - 1; l >= 0; l--) {
		bool forced = c->hold_stopped || (c->oldest[l] && now - c->oldest[l] >= HOLD_MAX_NS);

		atomic_store(&c->gate[l], (uint32_t)(above && !forced));
		if (c->active[l] > 0 || now - c->quiet_since[l] < c->hold_ns)
			above = true;
	}
}

void vgpu_cuda_hold_begin(struct vgpu_cuda_ctx *c, int level, uint64_t now)
{
	if (!c->wait_value)
		return;
	pthread_mutex_lock(&c->hold_lock);
	c->active[level]++;
	set_gates(c, latest(c, now));
	pthread_mutex_unlock(&c->hold_lock);
}

void vgpu_cuda_hold_end(struct vgpu_cuda_ctx *c, int level, uint64_t now)
{
	if (!c->wait_value)
		return;
	pthread_mutex_lock(&c->hold_lock);
	now = latest(c, now);
	if (--c->active[level] == 0)
		c->quiet_since[level] = now;
	c->oldest[level] = 0;
	set_gates(c, now);
	pthread_mutex_unlock(&c->hold_lock);
}

void vgpu_cuda_hold_oldest(struct vgpu_cuda_ctx *c, int level, uint64_t launched_ns)
{
	if (!c->wait_value)
		return;
	pthread_mutex_lock(&c->hold_lock);
	c->oldest[level] = launched_ns;
	set_gates(c, latest(c, vgpu_now_ns()));
	pthread_mutex_unlock(&c->hold_lock);
}

void vgpu_cuda_hold_update(struct vgpu_cuda_ctx *c)
{
	if (!c->wait_value)
		return;
	pthread_mutex_lock(&c->hold_lock);
	set_gates(c, latest(c, vgpu_now_ns()));
	pthread_mutex_unlock(&c->hold_lock);
}

cudaError_t vgpu_cuda_hold_wait(struct vgpu_cuda_lane *ln)
{
	struct vgpu_cuda_ctx *c = ln->level->c;
	wait_value_fn wait = (wait_value_fn)c->wait_value;

	if (!vgpu_cuda_held(ln))
		return cudaSuccess;
	CUresult r = wait((CUstream)ln->stream, c->gate_dev + ln->level->index * sizeof(c->gate[0]),
			  0, CU_STREAM_WAIT_VALUE_EQ);

	return r == CUDA_SUCCESS ? cudaSuccess : cudaErrorUnknown;
}

void vgpu_cuda_hold_stop(struct vgpu_cuda_ctx *c)
{
	if (!c->wait_value)
		return;
	pthread_mutex_lock(&c->hold_lock);
	c->hold_stopped = true;
	set_gates(c, latest(c, vgpu_now_ns()));
	pthread_mutex_unlock(&c->hold_lock);
}
