/* SPDX-License-Identifier: MIT */
/*
 * backend.h - the executor interface: what runs the catalogue of ops.
 *
 * Two implementations: cpu (the reference, always built) and cuda (built
 * when nvcc is present; one CUDA context, a stream per priority level). The
 * mediator core never knows which one it has. It makes one instance per
 * GPU (init() with cfg->device 0, 1, ...); the host-memory ops are called
 * on the first instance only, and what they give must be usable by every
 * instance's works (cuda: portable pinned memory).
 *
 * Threading: submit() may be called from any thread, also from inside a
 * done() callback; the backend calls work->done() exactly once per accepted
 * work, from any of its own threads, never from inside submit().
 */
#ifndef VGPU_BACKEND_H
#define VGPU_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgpu_protocol.h"

#define VGPU_PRIORITY_LEVELS 3 /* 0 low, 1 medium, 2 high (registry values) */

/* One unit of work. Owned by the caller; the backend only reads the inputs
 * and writes the output until it calls done(). */
struct vgpu_work {
	enum vgpu_op op;
	struct vgpu_op_params params;
	const float *in[3];      /* inputs, sized by vgpu_proto_op_shape() */
	uint64_t in_count[3];
	float *out;              /* output buffer of out_count floats */
	uint64_t out_count;
	int priority;            /* 0..2: selects the stream / worker order */
	/* The buffers are in memory the backend could not pin (a Xen guest's
	 * foreign pages): cuda copies them through pinned staging of its own
	 * instead of handing them to the copy engines. A work not staged must
	 * have its buffers in host_alloc()'d or host_register()'d memory: the
	 * GPU reads and writes them in place (cuda: small works' kernels do). */
	bool staged;
	/* Called once when the work finished: status VGPU_OK, or VGPU_BACKEND /
	 * VGPU_NO_MEMORY with the output undefined; exec_ns is the backend's
	 * own execution time (copies and compute). */
	void (*done)(struct vgpu_work *work, int status, uint64_t exec_ns);
	void *user;              /* the caller's, untouched */
};

struct vgpu_backend_config {
	int threads;             /* cpu: worker threads (0: one per core) */
	int device;              /* cuda: device ordinal */
	int max_inflight;        /* works accepted but not done, at most (0: 256) */
	size_t max_device_bytes; /* cuda: device memory the backend may hold, its
				  * per-stream chunk buffers included (0: 3/4 of
				  * what is free at init) */
	size_t max_host_cache_bytes; /* cuda: freed pinned host buffers kept for
				      * reuse (0: 2 GiB) */
	size_t copy_slice_bytes; /* cuda: copies of works below high priority in
				  * pieces of this size (0: whole copies) */
	uint64_t hold_ns;        /* cuda: works below a running level hold still,
				  * until this long after its last work (0: off;
				  * cuda_hold.c) */
};

struct vgpu_backend_ops {
	const char *name;        /* "cpu", "cuda" */
	/* Whether this backend can run here (cuda: a usable device). */
	int (*probe)(char *err, size_t err_size);
	int (*init)(const struct vgpu_backend_config *cfg, void **ret_ctx, char *err,
		    size_t err_size);
	/* Wait for every accepted work to be done, then release everything. */
	void (*fini)(void *ctx);
	/* Accept @work. VGPU_BUSY when max_inflight works are outstanding,
	 * VGPU_INVALID_PARAM when its sizes do not match its params,
	 * VGPU_SHUTDOWN once fini() has begun. A work's capacity is given back
	 * before its done() is called. Any thread may submit. */
	int (*submit)(void *ctx, struct vgpu_work *work);
	/* Host memory for payloads and outputs that the backend copies from
	 * and to at full speed (cuda: pinned, from a pool of reused buffers),
	 * aligned to 64 bytes; NULL when out of memory. host_free accepts
	 * NULL. Every buffer must be freed before fini(). Any thread: under
	 * CUDA new pinned memory is made on the mediator's worker threads. */
	void *(*host_alloc)(void *ctx, size_t size);
	void (*host_free)(void *ctx, void *ptr, size_t size);
	/* Optional, both NULL when host memory is never pinned (host_alloc is
	 * then always cheap). host_cached: whether host_alloc(@size) now would
	 * be served from memory already pinned, not by pinning more (which
	 * under CUDA holds back the GPU's other work while it runs).
	 * host_alloc_cached: host_alloc(@size) from memory already pinned
	 * only; NULL when none is there (it never pins). */
	bool (*host_cached)(void *ctx, size_t size);
	void *(*host_alloc_cached)(void *ctx, size_t size);
	/* Make @size bytes at @ptr (page-aligned, e.g. a shared-memory window)
	 * something works may read and write at full speed (cuda: pins them
	 * with cudaHostRegister, after faulting every page in: it reads and
	 * writes back each page, so nothing else may write them meanwhile);
	 * VGPU_NO_MEMORY / VGPU_BACKEND when that fails. Slow (tens of ms per
	 * GiB): not for the loop thread. Unregister only after every work
	 * touching them is done. */
	int (*host_register)(void *ctx, void *ptr, size_t size);
	void (*host_unregister)(void *ctx, void *ptr);
	/* Optional: how many works it should hold at once to stay busy (cpu:
	 * its threads; cuda: 2, one running and the next queued); NULL means
	 * one. The scheduler gives it at least that many (scheduler.h). */
	unsigned (*concurrency)(void *ctx);
	/* Optional: how many devices init() may be given (cuda: the CUDA
	 * devices present). NULL: any number, each an instance of its own
	 * (cpu: an instance poses as one device, for tests of placement). */
	int (*devices)(void);
};

/* Bytes a work's arrays take: its inputs and its output. */
uint64_t vgpu_work_bytes(const struct vgpu_work *w);

extern const struct vgpu_backend_ops vgpu_backend_cpu;
/* NULL when the build has no CUDA. */
extern const struct vgpu_backend_ops *const vgpu_backend_cuda;

/* "cpu", "cuda", or "auto" (cuda when its probe succeeds, else cpu, with
 * @err saying why not cuda). NULL, with @err set, for an unknown name or a
 * cuda that cannot run here. */
const struct vgpu_backend_ops *vgpu_backend_select(const char *name, char *err, size_t err_size);

/* The plain single-threaded reference of every op, for tests: writes
 * @out_count floats to @out. */
void vgpu_reference_run(enum vgpu_op op, const struct vgpu_op_params *p, const float *const in[3],
			float *out);

#endif
