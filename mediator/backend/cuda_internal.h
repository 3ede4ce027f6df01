/* SPDX-License-Identifier: MIT */
/*
 * cuda_internal.h - the CUDA backend's state, shared by cuda.c (threads,
 * queues, the ops table) and cuda_launch.c (what one work enqueues).
 *
 * Never: include from outside mediator/backend/.
 */
#ifndef VGPU_CUDA_INTERNAL_H
#define VGPU_CUDA_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "backend.h"
#include "cuda_blas.h"
#include "cuda_kernels.h"
#include "cuda_pool.h"

#define VGPU_CUDA_LANES 3                         /* streams per priority level */
#define VGPU_CUDA_LAUNCHERS 2                     /* threads that enqueue works */
/* Vector ops move chunks of 2 to 8 MiB, a quarter of the vector where that
 * fits (see vgpu_cuda_chunk_elems()); the lanes' buffers hold the largest. */
#define VGPU_CUDA_CHUNK_BYTES ((size_t)8 << 20)
#define VGPU_CUDA_CHUNK_ELEMS (VGPU_CUDA_CHUNK_BYTES / sizeof(float))
#define VGPU_CUDA_MIN_CHUNK_ELEMS (((size_t)2 << 20) / sizeof(float))
/* Works in memory the GPU cannot reach directly (vgpu_work.staged;
 * cuda_stage.c): a small one goes through its job's pinned bounce buffer,
 * a larger one through its lanes' staging buffers (both inputs of a chunk),
 * copied by CUDA's callback thread with VGPU_CUDA_COPIERS - 1 helpers. */
#define VGPU_CUDA_BOUNCE_BYTES ((size_t)256 << 10)
#define VGPU_CUDA_STAGE_BYTES (2 * VGPU_CUDA_CHUNK_BYTES)
#define VGPU_CUDA_COPIERS 4
#define VGPU_CUDA_RESULT_FLOATS 16                /* pinned result slot per job (64 B) */
#define VGPU_CUDA_MAX_DEV 3                       /* device blocks one job holds */
/* A vector op that moves at most this much (inputs + output) in memory
 * the GPU can reach (not staged) runs as one kernel on the host memory
 * itself: no copies, so it never waits behind other works' copies in
 * the copy engines' queues (cuda_launch.c). */
#define VGPU_CUDA_ZEROCOPY_BYTES ((uint64_t)256 << 10)
/* With the hold on (cuda_hold.c), a held level's sgemm goes in K-slices
 * of about this many floating-point operations: 2 GFLOP, about 40 us on an
 * H200 (a 2048^3 sgemm in 8 slices). */
#define VGPU_CUDA_SGEMM_SLICE_FLOP ((uint64_t)2 << 30)
/* A work that moves at least this much (inputs + output) also records a
 * blocking-sync event, for its waiter to sleep on (cuda_sched.c). */
#define VGPU_CUDA_BLOCKING_BYTES ((uint64_t)1 << 20)

/* One stream with the device buffers only its own work uses; stream order
 * keeps consecutive works from overlapping on them. */
struct vgpu_cuda_level;

struct vgpu_cuda_lane {
	struct vgpu_cuda_level *level;  /* the level it belongs to */
	cudaStream_t stream;
	/* Its direct copies go in pieces of at most this many bytes (0: whole):
	 * lanes below the high level, so that the copy engines can take a
	 * high-priority copy between two pieces (cuda_launch.c). */
	size_t slice;
	float *buf[2];     /* VGPU_CUDA_CHUNK_BYTES each */
	double *scratch;   /* VGPU_CUDA_REDUCE_BLOCKS doubles */
	void *stage;       /* pinned, VGPU_CUDA_STAGE_BYTES; made on the first staged work */
};

struct vgpu_cuda_copier;

/* Host copies one step of a staged work makes on CUDA's callback thread
 * (cuda_stage.c), in stream order with the GPU's copies of the same lane. */
struct vgpu_cuda_copy {
	struct vgpu_cuda_copier *copier;
	int n;
	void *dst[2];
	const void *src[2];
	size_t bytes[2];
};

struct vgpu_cuda_job;
struct vgpu_cuda_ctx;

struct vgpu_cuda_level {
	struct vgpu_cuda_ctx *c;
	int index;                                  /* 0..2, the registry priority */
	int cuda_priority;                          /* what its streams were created with */
	struct vgpu_cuda_lane lane[VGPU_CUDA_LANES];
	cublasHandle_t blas;                        /* bound to lane[0] */
	/* guarded by c->lock: */
	struct vgpu_cuda_job *head, *tail;          /* accepted, not launched */
	bool mem_blocked;    /* head waits for device memory ...          */
	uint64_t mem_gen;    /* ... until a completion after this generation */
	/* guarded by c->fly_lock: launched, in lane 0 order, which is the
	 * order they finish in; the level's waiter thread completes them. */
	struct vgpu_cuda_job *fly_head, *fly_tail;
	pthread_cond_t fly_cond;
	_Atomic uint64_t fly_seq;   /* bumped by every track and quit */
	pthread_t waiter;
};

/* An accepted work, from submit() to done(). */
struct vgpu_cuda_job {
	struct vgpu_cuda_ctx *c;
	struct vgpu_work *work;
	int status;                /* VGPU_OK, or the first error while launching */
	cudaError_t gpu_status;    /* what waiting for done_ev returned */
	bool waited;               /* already over: the waiter must not wait on done_ev */
	uint64_t start_ns, end_ns; /* launch began, the GPU was seen to be through */
	void *dev[VGPU_CUDA_MAX_DEV];   /* device blocks from the pool */
	size_t dev_size[VGPU_CUDA_MAX_DEV];
	int n_dev;
	float *result;             /* pinned slot: reduce_sum's result lands here */
	cudaEvent_t done_ev;       /* recorded on lane 0 last; made on first use */
	cudaEvent_t block_ev;      /* blocking-sync, recorded after done_ev for
				    * large works only; made on first use */
	bool blocking;             /* block_ev was recorded for this work */
	cudaEvent_t join[VGPU_CUDA_LANES]; /* lanes 1.. joined into lane 0; made on first use;
					    * join[0]: a staged sgemm's product made, for lane 1 */
	/* Host memory the GPU copies from and to (cuda_stage.c): the work's
	 * own buffers, or a small staged work's bounce buffer. */
	const float *in[3];
	float *out;
	enum { VGPU_CUDA_DIRECT, VGPU_CUDA_BOUNCED, VGPU_CUDA_STAGED } path;
	void *bounce;              /* pinned, VGPU_CUDA_BOUNCE_BYTES; made on first use */
	struct vgpu_cuda_copy *copies; /* a staged work's host copies */
	size_t n_copies, cap_copies;
	struct vgpu_cuda_job *next; /* in a level queue, a fly list or the free list */
};

struct vgpu_cuda_ctx {
	int device;
	bool host_direct;               /* kernels may use pinned host pointers */
	struct vgpu_cublas cublas;
	struct vgpu_cuda_level level[VGPU_PRIORITY_LEVELS];
	size_t device_limit;            /* bytes the device pool may hold */
	struct vgpu_cuda_pool *dev_pool, *host_pool;
	struct vgpu_cuda_job *jobs;     /* max_inflight of them */
	float *results;                 /* pinned, VGPU_CUDA_RESULT_FLOATS per job */

	pthread_mutex_t lock;           /* guards the fields below up to fly_lock */
	pthread_cond_t idle_cond;       /* fini: nothing in flight */
	struct vgpu_cuda_job *free_jobs;
	int max_inflight;
	int inflight;                   /* accepted, done() not yet called */
	int launched;                   /* taken by the launcher, not yet completed */
	int in_done;                    /* done() calls running */
	int in_submit;                  /* submitters launching their work (take_inline) */
	uint64_t generation;            /* completions so far */
	bool stopping;                  /* fini: accept nothing */
	bool quit;                      /* launcher: exit */
	/* Each launcher's wake-up (cuda_sched.c), bumped and signalled under
	 * lock by a submit of a level it serves, a completion while it has
	 * queued work, and quit: what it watches, idle, for a moment before
	 * it sleeps on cond. One per launcher, so that high priority's works
	 * never wake the launcher of the levels below (each wake-up of it
	 * took c->lock on the high path's way). */
	struct {
		pthread_cond_t cond;
		_Atomic uint64_t seq;
	} wake[VGPU_CUDA_LAUNCHERS];
	/* Launcher k's token: set while a thread launches a work of its
	 * levels (the launcher, or a submitter: vgpu_cuda_take_inline()), so
	 * that a level's works go to its streams one launch at a time. */
	bool launching[VGPU_CUDA_LAUNCHERS];

	pthread_mutex_t fly_lock;       /* guards the levels' fly lists */
	bool fly_quit;                  /* waiters: exit once their list is empty */

	struct vgpu_cuda_copier *copier; /* made on the first staged work */

	/* The hold (cuda_hold.c): off when wait_value is NULL. */
	void *wait_value;               /* cuStreamWaitValue32, from the driver */
	_Atomic uint32_t *gate;         /* pinned, mapped: level l's lanes wait while gate[l] != 0 */
	uint64_t gate_dev;              /* gate's device address (CUdeviceptr) */
	uint64_t hold_ns;               /* gates stay closed this long after the last work above */
	pthread_mutex_t hold_lock;      /* guards the fields below */
	int active[VGPU_PRIORITY_LEVELS];          /* launched, not completed */
	uint64_t quiet_since[VGPU_PRIORITY_LEVELS]; /* when active[l] last fell to 0 */
	uint64_t oldest[VGPU_PRIORITY_LEVELS];     /* launch time of what level l's waiter
						    * waits for (0: nothing) */
	uint64_t gates_ns;              /* the latest time the gates were set at */
	bool hold_stopped;              /* fini: every gate open for good */

	pthread_t launcher[VGPU_CUDA_LAUNCHERS]; /* below high; high (cuda_sched.c) */
	int launchers_started;
	int waiters_started;
};

/* Elements per chunk of a vector op of @n elements. On the H100, 8 MiB
 * chunks ran 64 MiB vectors fastest and 2 MiB chunks 4 MiB vectors
 * (copies overlap only from the second chunk on). */
static inline uint64_t vgpu_cuda_chunk_elems(uint64_t n)
{
	uint64_t c = (n + 3) / 4;

	return c < VGPU_CUDA_MIN_CHUNK_ELEMS ? VGPU_CUDA_MIN_CHUNK_ELEMS
	       : c > VGPU_CUDA_CHUNK_ELEMS   ? VGPU_CUDA_CHUNK_ELEMS
					     : c;
}

/* VGPU_NO_MEMORY for an allocation failure, else VGPU_BACKEND. */
int vgpu_cuda_status(cudaError_t e);

/*
 * Enqueue everything @job does, record its done_ev on lane 0 and hand it to
 * vgpu_cuda_track(); also on failure, so that done() never comes before the
 * GPU stops touching the work's buffers. VGPU_BUSY, with nothing enqueued
 * or tracked, when its device memory is held by other works and @may_wait.
 * Called by the thread that holds the launch token of the job's level
 * (launching[], cuda_sched.c): its launcher, or a submitter launching it
 * itself (vgpu_cuda_take_inline()).
 */
int vgpu_cuda_launch(struct vgpu_cuda_ctx *c, struct vgpu_cuda_job *job, bool may_wait);

/* Whether a vector work of @w's size runs as one kernel straight on its
 * host memory (VGPU_CUDA_ZEROCOPY_BYTES): no copies, no device memory. */
bool vgpu_cuda_zerocopy(const struct vgpu_cuda_ctx *c, const struct vgpu_work *w);

/* cuda_stage.c. Launcher: where @job's copies go from and to (job->in,
 * job->out, job->path), its inputs copied to its bounce buffer when it is
 * small and staged. VGPU_NO_MEMORY when what that takes cannot be made. */
int vgpu_cuda_stage_prepare(struct vgpu_cuda_ctx *c, struct vgpu_cuda_job *job);
/* Waiter, before done(): a bounced work's output to the work's buffer. */
void vgpu_cuda_stage_finish(struct vgpu_cuda_job *job, int status);
/* Copy @n (1 or 2) host buffers, together at most VGPU_CUDA_STAGE_BYTES,
 * to device memory through @ln's staging buffer, in @ln's stream order. */
cudaError_t vgpu_cuda_stage_in(struct vgpu_cuda_lane *ln, struct vgpu_cuda_job *job, int n,
			       void *const dev[], const void *const src[], const size_t bytes[]);
/* Copy @bytes (at most VGPU_CUDA_STAGE_BYTES) of device memory to @dst
 * through @ln's staging buffer, in @ln's stream order. */
cudaError_t vgpu_cuda_stage_out(struct vgpu_cuda_lane *ln, struct vgpu_cuda_job *job, void *dst,
				const void *dev, size_t bytes);
/* The helpers' threads stopped and freed (NULL: nothing). */
void vgpu_cuda_copier_free(struct vgpu_cuda_copier *cp);

/* cuda_hold.c: the hold of lower levels while a higher one runs. */
/* Off when @hold_ns is 0; else the driver's wait-value call and the gate
 * words, or an error. */
int vgpu_cuda_hold_init(struct vgpu_cuda_ctx *c, uint64_t hold_ns, char *err, size_t err_size);
void vgpu_cuda_hold_free(struct vgpu_cuda_ctx *c);
/* Whether works on @ln hold (the hold is on and ln is below high). */
bool vgpu_cuda_held(const struct vgpu_cuda_lane *ln);
/* Enqueue on @ln a wait for its level's gate to open (nothing when not held). */
cudaError_t vgpu_cuda_hold_wait(struct vgpu_cuda_lane *ln);
/* Launcher: a work of @level starts launching at @now (closes the gates
 * below); waiter: one of @level ended at @now, and the waiter waits for
 * no work of @level until its next vgpu_cuda_hold_oldest(). The callers
 * pass the work's own start and end stamps: no clock read of their own
 * on a request's way. */
void vgpu_cuda_hold_begin(struct vgpu_cuda_ctx *c, int level, uint64_t now);
void vgpu_cuda_hold_end(struct vgpu_cuda_ctx *c, int level, uint64_t now);
/* Re-derive the gates now (opens those whose hold_ns ran out). */
void vgpu_cuda_hold_update(struct vgpu_cuda_ctx *c);
/* fini: every gate open, for good, before the works in flight are waited for. */
void vgpu_cuda_hold_stop(struct vgpu_cuda_ctx *c);
/* Waiter of @level: it now waits for a work launched at @launched_ns;
 * that work's gate opens by force after HOLD_MAX_NS. */
void vgpu_cuda_hold_oldest(struct vgpu_cuda_ctx *c, int level, uint64_t launched_ns);

/* Hand a launched @job to its level's waiter (job->waited: nothing to wait for). */
void vgpu_cuda_track(struct vgpu_cuda_job *job);

/* cuda_sched.c: the launcher and the waiters. */
int vgpu_cuda_start_threads(struct vgpu_cuda_ctx *c);
/* A work of @level was queued: wake the launcher that serves it. Lock held. */
void vgpu_cuda_wake_launcher(struct vgpu_cuda_ctx *c, int level);
/* Submit, lock held, @job accepted (counted in inflight) and not queued:
 * whether the submitting thread should launch it itself, now. Then it is
 * counted as launched and holds its launcher's token: the caller calls
 * vgpu_cuda_launch(c, job, false) without the lock, then
 * vgpu_cuda_end_inline() with the level it read before. */
bool vgpu_cuda_take_inline(struct vgpu_cuda_ctx *c, const struct vgpu_cuda_job *job);
/* The inline launch of a work of @level is over: the token back. Lock held. */
void vgpu_cuda_end_inline(struct vgpu_cuda_ctx *c, int level);
/* Stop and join the threads that were started; works must be done. */
void vgpu_cuda_stop_threads(struct vgpu_cuda_ctx *c);

#endif
