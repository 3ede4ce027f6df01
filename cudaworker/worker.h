/* SPDX-License-Identifier: MIT */
/*
 * worker.h - vgpu-cuda-worker: one process per VM that runs its guests'
 * CUDA calls on the host's driver (docs/specs/cuda-remoting.md, "The
 * worker"). Internal to cudaworker/.
 *
 * The mediator starts it on the VM's first CUDA call and hands it every
 * connection of the VM's libcuda.so.1 processes (with the header it
 * already read) over the control socket; each connection gets a thread
 * of its own. The worker holds the VM's only contexts (the primary
 * context of each of its GPUs), counts its device memory against the
 * VM's quota, and frees what a process held when its connection closes.
 *
 * Never: trust a guest's pointer, length or count beyond the checks here,
 * or let one connection's failure touch another's memory.
 */
#ifndef VGPU_CUDA_WORKER_H
#define VGPU_CUDA_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <cuda.h>

#include "cuda_call.h"
#include "cuda_desc.h"
#include "cuda_image.h"
#include "cuda_ring.h"

#define WORKER_MAX_CONNS 64          /* processes of the VM at once */
#define WORKER_MAX_ALLOCS 65536      /* allocations one process holds */
/* Host memory for the copies' data, all connections together: a
 * connection's buffer grows to its largest piece (64 MiB at most). */
#define WORKER_MAX_BUFFERED ((uint64_t)256 << 20)
/* Modules one process holds: libraries, their images' bytes together
 * (the driver keeps a copy of each), and kernels asked for. cuDNN 9
 * loads one library per engine it tries: a torchvision resnet18 forward
 * pass loaded over 845 (about 142 MiB) under PyTorch 2.11 (run 44). */
#define WORKER_MAX_LIBS 4096
#define WORKER_MAX_IMAGE_BYTES ((uint64_t)512 << 20)
#define WORKER_MAX_KERNELS 65536
/* Streams and events one process holds (each a few hundred bytes of the
 * driver's host memory; PyTorch makes some tens). */
#define WORKER_MAX_STREAMS 1024
#define WORKER_MAX_EVENTS 16384
/* And all the VM's processes together (a process's own budgets times
 * WORKER_MAX_CONNS would let one VM hold 64 times as much). */
#define WORKER_VM_MAX_STREAMS 4096
#define WORKER_VM_MAX_EVENTS 65536
/* Graphs and executable graphs one process holds (each table), and the
 * VM's processes together (both kinds): the driver's host memory, and
 * an executable graph's device memory for its nodes. */
#define WORKER_MAX_GRAPHS 1024
#define WORKER_VM_MAX_GRAPHS 4096
#define WORKER_VM_MAX_IMAGE_BYTES ((uint64_t)1 << 30)
/* Memory pools one process holds (its default pools included), and the
 * VM's processes together: each a reservation of device address space
 * and the driver's host memory; their memory counts against the quota. */
#define WORKER_MAX_POOLS 64
#define WORKER_VM_MAX_POOLS 256
/* Virtual memory management, one process: physical allocations (each
 * counted against the quota), mappings, and address ranges reserved
 * (the driver's page tables and address space, the VM's own). */
#define WORKER_MAX_VMM_HANDLES 65536
#define WORKER_MAX_VMM_MAPS 65536
#define WORKER_MAX_RESERVES 4096
#define WORKER_MAX_ARRAYS 4096       /* CUDA arrays one process holds */
#define WORKER_MAX_TEXOBJS 65536     /* texture and surface objects one process holds */
#define WORKER_VM_MAX_ARRAYS 16384   /* the VM's processes together */
#define WORKER_VM_MAX_TEXOBJS 262144
/* A process's memory pools (pool.c), by handle - 1, its default pool of
 * each GPU among them. */
struct wpool;
struct pools {
	struct wpool *slot[WORKER_MAX_POOLS];
	struct wpool *dflt[VGPU_CUDA_MAX_DEVICES];
};

/* A process's physical allocations and mappings (vmm.c). */
struct warray;
struct wobj;
/* A process's CUDA arrays and texture and surface objects (array.c). */
struct arrays {
	struct warray *a;
	uint32_t n, cap;
	struct wobj *objs;
	uint32_t n_objs, cap_objs;
};

struct vhandle;
struct vmap;
struct vmm {
	struct vhandle *h;
	uint32_t n_h, cap_h;
	struct vmap *maps;
	uint32_t n_maps, cap_maps;
};

/* A process's window (window.c), and the VM's windows together: host
 * memory page-locked for the VM's copies. */
#define WORKER_MAX_WINDOW ((uint64_t)1 << 30)
#define WORKER_VM_MAX_WINDOWS ((uint64_t)2 << 30)
/* How long a connection's thread stays awake for its call ring after the
 * last call (then it sleeps on the connection until KICK or a call). */
#define WORKER_SPIN_NS ((uint64_t)50 * 1000)
/* How long a worker retired by a kernel fault still serves its
 * processes (whose calls can only fail) before it exits. */
#define WORKER_RETIRE_GRACE_MS 2000

/* The driver's entry points the worker calls (driver.c). */
struct driver {
	CUresult (*init)(unsigned int flags);
	CUresult (*driver_version)(int *version);
	CUresult (*device_get)(CUdevice *dev, int ordinal);
	CUresult (*device_count)(int *count);
	CUresult (*device_name)(char *name, int len, CUdevice dev);
	CUresult (*device_total_mem)(size_t *bytes, CUdevice dev);
	CUresult (*device_uuid)(CUuuid *uuid, CUdevice dev);
	CUresult (*device_bus_id)(char *bus_id, int len, CUdevice dev);
	CUresult (*device_attribute)(int *value, CUdevice_attribute attr, CUdevice dev);
	CUresult (*primary_retain)(CUcontext *ctx, CUdevice dev);
	CUresult (*ctx_set_current)(CUcontext ctx);
	CUresult (*mem_alloc)(CUdeviceptr *dptr, size_t bytes);
	CUresult (*mem_alloc_managed)(CUdeviceptr *dptr, size_t bytes, unsigned int flags);
	CUresult (*mem_free)(CUdeviceptr dptr);
	CUresult (*exchange_capture_mode)(CUstreamCaptureMode *mode);
	CUresult (*mem_info)(size_t *free, size_t *total);
	CUresult (*htod)(CUdeviceptr dst, const void *src, size_t bytes);
	CUresult (*dtoh)(void *dst, CUdeviceptr src, size_t bytes);
	CUresult (*ctx_sync)(void);
	CUresult (*library_load)(CUlibrary *lib, const void *code, CUjit_option *jit_options,
				 void **jit_values, unsigned int n_jit, CUlibraryOption *options,
				 void **values, unsigned int n_options);
	CUresult (*library_unload)(CUlibrary lib);
	CUresult (*library_get_kernel)(CUkernel *kernel, CUlibrary lib, const char *name);
	CUresult (*kernel_param_info)(CUkernel kernel, size_t index, size_t *offset, size_t *size);
	CUresult (*launch)(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
			   unsigned int bx, unsigned int by, unsigned int bz, unsigned int shared,
			   CUstream stream, void **params, void **extra);
	CUresult (*memset8)(CUdeviceptr dst, unsigned char value, size_t n, CUstream stream);
	CUresult (*memset16)(CUdeviceptr dst, unsigned short value, size_t n, CUstream stream);
	CUresult (*memset32)(CUdeviceptr dst, unsigned int value, size_t n, CUstream stream);
	CUresult (*dtod)(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream stream);
	CUresult (*htod_async)(CUdeviceptr dst, const void *src, size_t bytes, CUstream stream);
	CUresult (*dtoh_async)(void *dst, CUdeviceptr src, size_t bytes, CUstream stream);
	CUresult (*priority_range)(int *least, int *greatest);
	CUresult (*launch_ex)(const CUlaunchConfig *config, CUfunction f, void **params,
			      void **extra);
	CUresult (*kernel_get_function)(CUfunction *f, CUkernel kernel);
	CUresult (*func_get_attr)(int *value, CUfunction_attribute attr, CUfunction f);
	CUresult (*func_set_attr)(CUfunction f, CUfunction_attribute attr, int value);
	CUresult (*occ_blocks)(int *blocks, CUfunction f, int block_size, size_t smem,
			       unsigned int flags);
	CUresult (*occ_smem)(size_t *smem, CUfunction f, int blocks, int block_size);
	CUresult (*occ_clusters)(int *clusters, CUfunction f, const CUlaunchConfig *config);
	CUresult (*library_get_global)(CUdeviceptr *ptr, size_t *bytes, CUlibrary lib,
				       const char *name);
	CUresult (*ctx_api_version)(CUcontext ctx, unsigned int *version);
	CUresult (*ctx_get_limit)(size_t *value, CUlimit limit);
	CUresult (*ctx_set_limit)(CUlimit limit, size_t value);
	CUresult (*host_register)(void *p, size_t bytes, unsigned int flags);
	CUresult (*host_unregister)(void *p);
	CUresult (*host_device_pointer)(CUdeviceptr *dptr, void *p, unsigned int flags);
	CUresult (*stream_create)(CUstream *stream, unsigned int flags, int priority);
	CUresult (*stream_destroy)(CUstream stream);
	CUresult (*stream_sync)(CUstream stream);
	CUresult (*stream_query)(CUstream stream);
	CUresult (*stream_wait)(CUstream stream, CUevent event, unsigned int flags);
	CUresult (*event_create)(CUevent *event, unsigned int flags);
	CUresult (*event_destroy)(CUevent event);
	CUresult (*event_record)(CUevent event, CUstream stream);
	CUresult (*event_sync)(CUevent event);
	CUresult (*event_query)(CUevent event);
	CUresult (*event_elapsed)(float *ms, CUevent start, CUevent end);
	CUresult (*stream_is_capturing)(CUstream stream, CUstreamCaptureStatus *status);
	CUresult (*begin_capture)(CUstream stream, CUstreamCaptureMode mode);
	CUresult (*capture_info)(CUstream stream, CUstreamCaptureStatus *status, cuuint64_t *id,
				 CUgraph *graph, const CUgraphNode **deps,
				 const CUgraphEdgeData **edges, size_t *n_deps);
	CUresult (*end_capture)(CUstream stream, CUgraph *graph);
	CUresult (*graph_instantiate)(CUgraphExec *exec, CUgraph graph, unsigned long long flags);
	CUresult (*graph_launch)(CUgraphExec exec, CUstream stream);
	CUresult (*graph_upload)(CUgraphExec exec, CUstream stream);
	CUresult (*graph_destroy)(CUgraph graph);
	CUresult (*graph_exec_destroy)(CUgraphExec exec);
	CUresult (*pool_create)(CUmemoryPool *pool, const CUmemPoolProps *props);
	CUresult (*pool_destroy)(CUmemoryPool pool);
	CUresult (*pool_set_attr)(CUmemoryPool pool, CUmemPool_attribute attr, void *value);
	CUresult (*pool_get_attr)(CUmemoryPool pool, CUmemPool_attribute attr, void *value);
	CUresult (*pool_trim)(CUmemoryPool pool, size_t keep);
	CUresult (*alloc_from_pool)(CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool,
				    CUstream stream);
	CUresult (*free_async)(CUdeviceptr dptr, CUstream stream);
	CUresult (*vmm_create)(CUmemGenericAllocationHandle *h, size_t bytes,
			       const CUmemAllocationProp *prop, unsigned long long flags);
	CUresult (*vmm_release)(CUmemGenericAllocationHandle h);
	CUresult (*vmm_reserve)(CUdeviceptr *ptr, size_t bytes, size_t align, CUdeviceptr addr,
				unsigned long long flags);
	CUresult (*vmm_free)(CUdeviceptr ptr, size_t bytes);
	CUresult (*vmm_map)(CUdeviceptr ptr, size_t bytes, size_t offset,
			    CUmemGenericAllocationHandle h, unsigned long long flags);
	CUresult (*vmm_unmap)(CUdeviceptr ptr, size_t bytes);
	CUresult (*vmm_access)(CUdeviceptr ptr, size_t bytes, const CUmemAccessDesc *desc,
			       size_t count);
	CUresult (*vmm_granularity)(size_t *bytes, const CUmemAllocationProp *prop,
				    CUmemAllocationGranularity_flags option);
	CUresult (*vmm_props)(CUmemAllocationProp *prop, CUmemGenericAllocationHandle h);
	CUresult (*array_create)(CUarray *arr, const CUDA_ARRAY3D_DESCRIPTOR *desc);
	CUresult (*array_destroy)(CUarray arr);
	CUresult (*copy_3d_async)(const CUDA_MEMCPY3D *copy, CUstream stream);
	CUresult (*tex_create)(CUtexObject *obj, const CUDA_RESOURCE_DESC *res,
			       const CUDA_TEXTURE_DESC *tex, const CUDA_RESOURCE_VIEW_DESC *view);
	CUresult (*tex_destroy)(CUtexObject obj);
	CUresult (*surf_create)(CUsurfObject *obj, const CUDA_RESOURCE_DESC *res);
	CUresult (*surf_destroy)(CUsurfObject obj);
};

/* The VM's side of things, shared by the connections' threads. */
struct worker {
	struct driver drv;
	CUresult drv_status;             /* CUDA_SUCCESS once the driver is up */
	struct vgpu_cuda_desc desc;      /* the VM's GPUs, numbered from 0 */
	int host_ordinal[VGPU_CUDA_MAX_DEVICES]; /* desc.dev[i] is the host's device */
	CUcontext ctx[VGPU_CUDA_MAX_DEVICES];    /* primary contexts, retained once */
	uint64_t quota;                  /* bytes of device memory (0: none) */
	pthread_mutex_t lock;            /* guards the fields below */
	uint64_t held;                   /* bytes the VM's processes hold, less pools' */
	uint64_t pool_held;              /* bytes the pools hold (pool.c) */
	uint64_t n_pools;                /* the processes' pools */
	struct wpool *pools[WORKER_VM_MAX_POOLS]; /* all of them, n_pools used */
	uint64_t buffered;               /* bytes of the connections' copy buffers */
	uint64_t image_bytes;            /* of the libraries the processes hold */
	uint64_t window_bytes;           /* of the processes' windows */
	uint64_t streams, events;        /* the processes hold */
	uint64_t arrays, texobjs;        /* CUDA arrays, texture and surface objects they hold */
	uint64_t graphs;                 /* graphs and executable graphs they hold */
	int conns;                       /* connections being served */
	int busy_conns;                  /* with kernels launched since their last sync */
	pthread_cond_t busy_cv;          /* busy_awake set (busy.c) */
	pthread_cond_t idle;             /* conns fell to 0 */
	_Atomic uint64_t launches;       /* kernels launched, all connections */
	_Atomic uint64_t last_launch_ns; /* when the last kernel was launched */
	_Atomic bool busy_awake;         /* busy.c's thread is looking */
	_Atomic bool hold;               /* the mediator says: a higher VM is busy */
	_Atomic uint64_t paced_until;    /* the mediator says: launches wait until then (PACE) */
	uint64_t hold_ns;                /* how long a launch holds at most (0: never) */
	const char *uuid;                /* the VM's, for the log */
	/* Device memory the contexts' limits reserve beyond their defaults
	 * (the stack, printf FIFO and malloc heap: cuCtxSetLimit), counted
	 * in held, and what the defaults reserve: by GPU and limit, guarded
	 * by limits_lock. */
	pthread_mutex_t limits_lock;
	uint64_t limit_bytes[VGPU_CUDA_MAX_DEVICES][3];
	uint64_t limit_default[VGPU_CUDA_MAX_DEVICES][3];
	bool limit_known[VGPU_CUDA_MAX_DEVICES][3];
	_Atomic int retired;             /* the CUresult that made it retire (0: none) */
};

/* The control socket to the mediator (main.c's descriptor 3). */
#define WORKER_CONTROL_FD 3

/*
 * busy.c: a connection's GPU work started (@busy: it launched) or ended
 * (it synchronized), *@conn_busy its state; worker_busy_main (a thread of
 * its own, @arg the worker) tells the mediator when the VM's processes
 * become busy and when idle (BUSY flag, cuda_call.h). worker_gate, before
 * a launch: until the mediator's PACE deadline, if any; then while it
 * says hold, at most hold_ns.
 */
void worker_busy(struct worker *w, bool *conn_busy, bool busy);
void *worker_busy_main(void *arg);
void worker_gate(struct worker *w);

/*
 * A call's answer @rc: when it is one of CUDA's "sticky" errors (a kernel
 * fault: the contexts are unusable, every later call gets it again), the
 * worker retires (main.c): the mediator is told (RETIRE, cuda_call.h),
 * starts another worker for the VM's new processes, and this one serves
 * the processes it has to their end. Any thread.
 */
void worker_answered(struct worker *w, CUresult rc);

/* A process's modules (module.c): its libraries and kernels. */
struct modules {
	struct wlib *libs;               /* cap_libs slots (at most WORKER_MAX_LIBS) */
	uint32_t n_libs, cap_libs;       /* n_libs used */
	uint32_t free_lib;               /* every slot below it is taken */
	uint64_t image_bytes;            /* the images', together */
	struct wkernel *kernels;         /* cap_kernels slots (at most WORKER_MAX_KERNELS) */
	uint32_t n_kernels, cap_kernels; /* n_kernels used */
	uint32_t free_kernel;            /* every slot below it is taken */
};

/* A process's streams and events (stream.c): the driver's, by handle - 1. */
struct streams {
	void **streams;                  /* WORKER_MAX_STREAMS slots, n_streams used */
	uint32_t n_streams;
	void **events;                   /* WORKER_MAX_EVENTS slots, n_events used */
	uint32_t n_events;
	void **graphs, **execs;          /* WORKER_MAX_GRAPHS slots each */
	uint32_t n_graphs, n_execs;
};

/* A process's window (window.c): its memfd mapped here and registered,
 * and the call ring at its start, if it has one. */
struct window {
	uint8_t *base;                   /* NULL: none */
	uint64_t bytes;
	bool mapped;                     /* also device memory (DEVICEMAP) */
	struct vgpu_cuda_ring_ctl *ctl;  /* NULL: no ring */
	uint8_t *ring;                   /* its bytes, ring_bytes of them */
	uint64_t ring_bytes;
	uint64_t head;                   /* taken: ours; ctl->head is the guest's copy */
};

/* serve.c: the VM's budgets. Count @n more of what @held counts (a
 * field of @w), under w->lock; false, counting nothing, when that would
 * pass @max. */
bool worker_take(struct worker *w, uint64_t *held, uint64_t max, uint64_t n);
void worker_give(struct worker *w, uint64_t *held, uint64_t n);

/* window.c: map @fd, @bytes long, as @win (one per process), within the
 * budgets, with a call ring of @ring_bytes (0: none) at its start, at
 * address @at when that is free (the process's own; 0: anywhere), and
 * register it with the driver; *@devptr the device address of its first
 * byte when kernels can reach it too, else 0. The fd stays the caller's. */
CUresult window_open(struct worker *w, struct window *win, int fd, uint64_t bytes,
		     uint64_t ring_bytes, uint64_t at, uint64_t *devptr);
/* The window's bytes [@offset, @offset + @len), or NULL when they are not
 * all in it (or @len is 0). */
uint8_t *window_at(const struct window *win, uint64_t offset, uint64_t len);
void window_close(struct worker *w, struct window *win);

/* stream.c: the STREAM_* and EVENT_* calls, in the calling thread's
 * current context; *@res the created handle or ELAPSED's bits. */
CUresult stream_call(struct worker *w, struct streams *st, const struct vgpu_cuda_msg *m,
		     uint64_t *res);
/* The driver's stream of @handle (0: the default stream, NULL);
 * CUDA_ERROR_INVALID_HANDLE for one not live. */
CUresult stream_of(struct streams *st, uint64_t handle, CUstream *ret);
/* CTX_INFO's set (serve.c's limits): limit @limit of GPU @dev's context
 * to @value, what it reserves counted against the VM's quota first. */
CUresult worker_set_limit(struct worker *w, uint32_t dev, uint64_t limit, uint64_t value);
/* CAPTURE_*, GRAPH_* (cuda_call.h): graphs made by capturing a stream,
 * instantiated and launched; r0 into *@res. Whether @s is capturing
 * (copies that carry their bytes are refused there: a graph cannot
 * keep bytes the worker copies from a buffer it reuses). */
CUresult graph_call(struct worker *w, struct streams *st, const struct vgpu_cuda_msg *m,
		    uint64_t *res);
bool stream_capturing(struct worker *w, CUstream s);
void stream_release(struct worker *w, struct streams *st);

/* pool.c: count @n more bytes of device memory against the VM's quota
 * (w->held, with what the pools hold; when they would pass it, after what
 * the pools keep unused is trimmed); false, counting nothing, when they
 * still would. worker_give(w, &w->held, n) gives them back. */
bool worker_take_memory(struct worker *w, uint64_t n);
/* POOL (cuda_call.h) on GPU @dev: r0 into *@res. */
CUresult pool_call(struct worker *w, struct pools *pl, const struct vgpu_cuda_msg *m,
		   uint32_t dev, uint64_t *res);
/* MEM_ALLOC_ASYNC: @bytes from pool @handle of @pl (0: the default pool
 * of GPU @dev) in @s's order, within the quota; *@from the pool. */
CUresult pool_alloc(struct worker *w, struct pools *pl, uint64_t handle, uint32_t dev,
		    uint64_t bytes, CUstream s, CUdeviceptr *ptr, struct wpool **from);
/* An allocation from @p was freed (to the driver already). */
void pool_freed(struct worker *w, struct pools *pl, struct wpool *p);
/* Read what every pool of the VM holds anew (after trimming what they
 * keep unused, when @trim). */
void pool_refresh_all(struct worker *w, bool trim);
/* The process's pools destroyed; their allocations are freed. */
void pool_release(struct worker *w, struct pools *pl);

/* vmm.c: VMM (cuda_call.h) on GPU @dev but RESERVE and FREE (serve.c's,
 * with the two below), a MAP, UNMAP or ACCESS checked to lie within a
 * range the process reserved; r0..r2 into @res. */
CUresult vmm_call(struct worker *w, struct vmm *v, const struct vgpu_cuda_msg *m, uint32_t dev,
		  uint64_t res[3]);
/* RESERVE: *@ptr the range's address. */
CUresult vmm_reserve(struct worker *w, const struct vgpu_cuda_msg *m, uint64_t *ptr);
/* FREE of a whole range the process reserved: refused while mapped. */
CUresult vmm_unreserve(struct worker *w, struct vmm *v, uint64_t ptr, uint64_t bytes);
/* Its mappings undone, its allocations released (the ranges are
 * serve.c's to free after). */
void vmm_release(struct worker *w, struct vmm *v);

/* Whether [@ptr, @ptr + @len) lies within one of a process's
 * allocations (@ctx: serve.c's connection); *@dev its GPU. */
typedef bool (*worker_span_fn)(void *ctx, uint64_t ptr, uint64_t len, uint32_t *dev);
/* array.c: ARRAY (create, destroy) on GPU @dev: res[0] the array, res[1]
 * its bytes. */
CUresult array_call(struct worker *w, struct arrays *ar, const struct vgpu_cuda_msg *m,
		    uint32_t dev, uint64_t res[2]);
/* ARRAY_COPY's device memory: the bytes from c->dptr that its box spans. */
CUresult array_copy_span(const struct vgpu_cuda_array_copy *c, uint64_t *len);
/* ARRAY_COPY @c in direction @dir on @s (not capturing: a graph would
 * keep the driver's array past its destruction), in its array's GPU's
 * context (the device memory checked by the caller: on GPU @mem_dev). */
CUresult array_copy(struct worker *w, struct arrays *ar, uint64_t dir,
		    const struct vgpu_cuda_array_copy *c, CUstream s, uint32_t mem_dev);
/* TEX on GPU @dev (the call's: its context current) with its descriptors
 * @data: *@res the object made. */
CUresult tex_call(struct worker *w, struct arrays *ar, const struct vgpu_cuda_msg *m,
		  const uint8_t *data, worker_span_fn in_allocs, void *ctx, uint32_t dev,
		  uint64_t *res);
/* Its objects destroyed, its arrays too (their bytes given back). */
void array_release(struct worker *w, struct arrays *ar);
/* GPU @dev's context current in this thread. */
CUresult worker_on_device(struct worker *w, uint32_t dev);

/* module.c: room for one more entry of @size bytes in *@arr, which has @n
 * used of its *@cap (at most @max): false when @max are there or memory is
 * short. The array doubles; its new entries are zeroed. */
bool worker_room_for(void *arr, uint32_t n, uint32_t *cap, size_t size, uint32_t max);
/* module.c: the calls of cuda_call.h on modules, in the calling thread's
 * current context; each returns the CUresult for the reply. */
CUresult module_load(struct worker *w, struct modules *mo, const uint8_t *image, uint32_t len,
		     uint64_t *handle);
CUresult module_unload(struct worker *w, struct modules *mo, uint64_t handle);
/* res: the kernel's handle, parameter count and bytes; *@ret_layout its
 * (offset, size) pairs, until the library is unloaded. */
CUresult module_kernel(struct worker *w, struct modules *mo, uint64_t lib, const char *name,
		       uint32_t len, uint64_t res[3], const uint32_t **ret_layout);
/* @m a LAUNCH call, @params its data (the parameters, then its launch
 * attributes), on @stream. */
CUresult module_launch(struct worker *w, struct modules *mo, const struct vgpu_cuda_msg *m,
		       uint8_t *params, CUstream stream);
/* @m a FUNC_ATTR or OCCUPANCY call (@data its configuration), in the
 * current context: *@res its answer (r0, r1). */
CUresult module_query(struct worker *w, struct modules *mo, const struct vgpu_cuda_msg *m,
		      const uint8_t *data, uint64_t res[2]);
/* GLOBAL: the variable @name (@len bytes with its NUL) of library @lib in
 * the current context: res[0] its address, res[1] its bytes. */
CUresult module_global(struct worker *w, struct modules *mo, uint64_t lib, const char *name,
		       uint32_t len, uint64_t res[2]);
void module_release(struct worker *w, struct modules *mo);

/* driver.c: load the host's libcuda.so.1 (dlopen, the library path as
 * usual), cuInit, describe the GPUs @ordinals (host numbering, @n of them)
 * and retain their primary contexts. w->drv_status says how it went:
 * CUDA_ERROR_NO_DEVICE when there is no driver, its error otherwise. */
void worker_driver_up(struct worker *w, const int *ordinals, int n);

/* serve.c: serve one connection (its first header already read by the
 * mediator, @head) until it closes; closes @fd. */
void worker_serve(struct worker *w, int fd, const uint8_t head[VGPU_PROTO_HEADER_SIZE]);

#endif
