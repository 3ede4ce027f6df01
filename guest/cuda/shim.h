/* SPDX-License-Identifier: MIT */
/*
 * shim.h - vgpu's libcuda.so.1: the CUDA driver API in a VM, answered from
 * a guest-side cache where it can be and by the host where it must be
 * (docs/specs/cuda-remoting.md). Internal to guest/cuda/.
 *
 * The types and prototypes are the CUDA toolkit's own (cuda.h), so every
 * function here has the exact signature and exported name (cuda.h maps
 * cuDeviceTotalMem to cuDeviceTotalMem_v2, and so on) that programs and
 * NVIDIA's libraries expect.
 *
 * Never: trust the host's description beyond its checked bounds, or call
 * into the host from a query that the cache answers.
 */
#ifndef VGPU_CUDA_SHIM_H
#define VGPU_CUDA_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cuda.h>
#include <cudaProfiler.h>

#include "cuda_call.h"
#include "cuda_desc.h"
#include "cuda_image.h"

/* An entry point of the driver API (gen-names.py, from cudaTypedefs.h). */
struct vgpu_cuda_entry {
	const char *name;   /* without version suffix: "cuMemAlloc" */
	int version;        /* the CUDA version it appeared in: 3020 */
	int per_thread;     /* the _ptds/_ptsz variant (per-thread default stream) */
	void *stub;         /* reports the call as not implemented */
};
extern const struct vgpu_cuda_entry vgpu_cuda_entries[];
extern const size_t vgpu_cuda_n_entries;

/* A CUresult value (gen-names.py, from cuda.h), sorted by value. */
struct vgpu_cuda_error {
	int value;
	const char *name;  /* "CUDA_ERROR_INVALID_VALUE" */
	const char *text;  /* the first sentence of cuda.h's description */
};
extern const struct vgpu_cuda_error vgpu_cuda_errors[];
extern const size_t vgpu_cuda_n_errors;

/* Whether @p, a handle the program passed, is a live record of ours: not
 * NULL, aligned as its record is (ours always are, so a misaligned address,
 * such as a host function passed as a kernel, is refused before anything is
 * read through it) and carrying the magic @m. */
#define VGPU_CUDA_IS(p, m)                                                      \
	((p) && (uintptr_t)(p) % _Alignof(__typeof__(*(p))) == 0 && (p)->magic == (m))

/* The stub of entry @index was called: logs that once per entry point,
 * returns CUDA_ERROR_NOT_SUPPORTED. */
CUresult vgpu_cuda_unimplemented(size_t index);
/* The same for NVIDIA's exported name @name that this library does not
 * implement (exports.c's weak stubs, gen-names.py), said once per @told. */
CUresult vgpu_cuda_unexported(_Atomic unsigned char *told, const char *name);

/* The implementation of (@name, @version, @per_thread), or NULL (proc.c). */
void *vgpu_cuda_impl(const char *name, int version, int per_thread);

/* One line to stderr when VGPU_CUDA_LOG is set (or @always), prefixed
 * "vgpu libcuda: ". */
void vgpu_cuda_log(bool always, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* VGPU_CUDA_LOG's level: 0 unset, 2 when "2" (every call to the host
 * too), else 1. */
int vgpu_cuda_log_level(void);

/* chan.c: where the VM's host side is: the VM's socket (unix:, shm:) or
 * its vgpu-stub device (dev:). */
struct vgpu_cuda_where {
	bool dev;
	char path[4096];
};

/* init.c: the state cuInit() makes. */
struct vgpu_cuda_state {
	_Atomic bool initialized;       /* set last, once the rest is written */
	CUresult init_status;           /* what cuInit() returned, once tried */
	struct vgpu_cuda_desc desc;     /* the host's devices, checked */
	struct vgpu_cuda_where where;   /* where the description came from */
};
extern struct vgpu_cuda_state vgpu_cuda;

/* CUDA_SUCCESS after a successful cuInit(), else what it returned
 * (CUDA_ERROR_NOT_INITIALIZED before it). */
CUresult vgpu_cuda_ready(void);
/* The description of device @dev, or NULL for an ordinal out of range. */
const struct vgpu_cuda_device_desc *vgpu_cuda_device(CUdevice dev);

/* chan.c: a connection to the host side: a socket, or a stream through
 * the device's window (vgpu_ring.h, "Streams"). */
struct vgpu_cuda_chan {
	int fd;                   /* the socket; -1 for a stream */
	int slot;                 /* the stream's index; -1 for a socket */
	uint8_t *ctl, *tx, *rx;   /* the stream's page and rings, mapped */
	uint64_t bytes, ring;     /* the mapping's bytes; each ring's */
	uint64_t tx_tail, rx_head;
};
/* Connect to @w: vgpu_unix_connect()'s errors, or the device's:
 * VGPU_NOT_FOUND, VGPU_DENIED, VGPU_BUSY while a program has its whole
 * window, VGPU_LIMIT when its streams are all taken, VGPU_IO_ERROR when
 * the window is gone or the mediator refused the stream. */
int vgpu_cuda_chan_connect(const struct vgpu_cuda_where *w, struct vgpu_cuda_chan *c);
bool vgpu_cuda_chan_open(const struct vgpu_cuda_chan *c);
/* Move @len bytes out or in before @deadline_ns (UINT64_MAX: none); a
 * receive tries again for VGPU_CUDA_SPIN_US before it sleeps.
 * VGPU_TIMEOUT, VGPU_IO_ERROR (the host's end closed), VGPU_PROTOCOL (a
 * stream's index out of range). */
int vgpu_cuda_chan_io(struct vgpu_cuda_chan *c, void *buf, size_t len, bool out,
		      uint64_t deadline_ns);
/* Close it (a stream: its slot given back once the mediator closed it). */
void vgpu_cuda_chan_close(struct vgpu_cuda_chan *c);
/* In a forked child: drop it without telling the host (the parent's). */
void vgpu_cuda_chan_forget(struct vgpu_cuda_chan *c);
/* In a forked child: the device closed (the child opens it anew). */
void vgpu_cuda_chan_forked(void);
/* VGPU_CUDA_SPIN_US in nanoseconds (0 to 1000 µs, default 30). */
uint64_t vgpu_cuda_spin_ns(void);
/* Call the host: @m (with m->data_len bytes of @data) out, the reply into
 * @r, its data (at most @cap bytes) into @out. The reply's status; a
 * connection that cannot be made or broke: CUDA_ERROR_NOT_SUPPORTED or
 * CUDA_ERROR_LAUNCH_FAILED, then and for every later call. */
CUresult vgpu_cuda_call(struct vgpu_cuda_msg *m, const void *data, struct vgpu_cuda_msg *r,
			void *out, uint32_t cap);
/* The same for device @dev rather than the current context's. */
CUresult vgpu_cuda_call_on(CUdevice dev, struct vgpu_cuda_msg *m, const void *data,
			   struct vgpu_cuda_msg *r, void *out, uint32_t cap);
/* Send @m (and its data) without waiting for the reply, which must carry
 * no data: CUDA_SUCCESS once sent. A failure its reply brings is returned
 * by the next synchronizing call (SYNC, DTOH, STREAM_SYNC or _QUERY,
 * EVENT_SYNC or _QUERY), once. */
CUresult vgpu_cuda_post(struct vgpu_cuda_msg *m, const void *data);
/* A call without data of @call with a0..a2 @a0, @a1, @a2, on the
 * current device: its status, r0 into *@ret (when not NULL). */
CUresult vgpu_cuda_call_args(uint16_t call, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t *ret);

/* The connection, made if it was not (with its window): CUDA_SUCCESS or
 * the connection's sticky error. */
CUresult vgpu_cuda_connect(void);
/* Post @m as vgpu_cuda_post, but quietly: its reply's error goes to the
 * quiet error (vgpu_cuda_quiet_take), not to the next synchronizing
 * call; *@id what vgpu_cuda_wait_quiet waits for. */
CUresult vgpu_cuda_post_quiet(struct vgpu_cuda_msg *m, uint64_t *id);
/* Read replies until @id's is in. */
CUresult vgpu_cuda_wait_quiet(uint64_t id);
/* The first error of the quiet posts' replies read since the last take. */
CUresult vgpu_cuda_quiet_take(void);

/* window.c: the process's window (see there). Make its memfd, sealed,
 * and map it: 0 with *@fd, *@bytes, the bytes of the call ring at its
 * start, *@ring (0: none), and where it is mapped, *@at; -1 for no window
 * (VGPU_CUDA_WINDOW_MIB 0, or no memfd). The fd stays the window's
 * (vgpu_cuda_window_drop closes it). */
int vgpu_cuda_window_make(int *fd, size_t *bytes, size_t *ring, void **at);
/* The worker took it (@device_address: its device address, 0 if
 * kernels cannot reach it), and its ring; or refused it. */
void vgpu_cuda_window_ready(uint64_t device_address);
void vgpu_cuda_window_drop(void);
/* @len bytes of it (that kernels can reach too, when @mapped), or NULL. */
void *vgpu_cuda_window_alloc(size_t len, bool mapped);
/* Around fork(): hold the window's lock (call.c's handlers), and in the
 * child (lock held) make the registered memory private again and forget
 * the ring: the child has no connection. */
void vgpu_cuda_window_hold(bool hold);
void vgpu_cuda_window_forked(void);
/* The call ring's control page, bytes and size, once the worker took it. */
struct vgpu_cuda_ring_ctl;
bool vgpu_cuda_window_ring(struct vgpu_cuda_ring_ctl **ctl, uint8_t **ring, uint64_t *len);
/* Give back a block vgpu_cuda_window_alloc gave; false if @p is not one. */
bool vgpu_cuda_window_free(void *p);
/* Move the caller's memory [@p, @p + @len) (its whole pages) into the
 * window, in place: its bytes copied to window pages mapped at the same
 * address. The first page's address, or NULL (no window, no room, pages
 * moved already). vgpu_cuda_window_release() moves them back. */
void *vgpu_cuda_window_adopt(void *p, size_t len);
void vgpu_cuda_window_release(void *start);
/* Whether [@p, @p + @len) is all in the window: *@off its offset there. */
bool vgpu_cuda_window_offset(const void *p, size_t len, uint64_t *off);
/* The device address of window byte @p, 0 if it has none. */
CUdeviceptr vgpu_cuda_window_device(const void *p);
/* The two staging slots (their addresses and offsets); their bytes, 0
 * when there are none. Callers take turns (mem.c's lock). */
size_t vgpu_cuda_window_stage(uint8_t *slot[2], uint64_t off[2]);

/* ctx.c: contexts, kept in the guest; the host's worker holds the real
 * one. The primary context of device d is handle d + 1 (never NULL). */
CUcontext vgpu_cuda_primary(CUdevice dev);
/* The device of @ctx, or -1 for a handle that is not a live context. */
CUdevice vgpu_cuda_ctx_device(CUcontext ctx);
/* The calling thread's current context's device (0 without one): what
 * each call tells the host its work is for. */
CUdevice vgpu_cuda_current_device(void);

/* mem.c: wait for the asynchronous window copies posted so far, if any
 * (before window memory is freed or unregistered). */
void vgpu_cuda_window_settle(void);

/* pointer.c: the device memory this process holds, as allocated and
 * freed (mem.c) or a library's global variables (@lib, until the library
 * goes: func.c, kernel.c), and whether @ptr lies in it. */
void vgpu_cuda_block_add(CUdeviceptr ptr, size_t size, CUdevice dev, const void *lib);
void vgpu_cuda_block_remove(CUdeviceptr ptr);
void vgpu_cuda_block_forget_lib(const void *lib);
bool vgpu_cuda_is_device(CUdeviceptr ptr);

/* array.c: @a's host handle and device, if it is one of ours. */
bool vgpu_cuda_array_host(CUarray a, uint64_t *host, CUdevice *dev);
/* array.c: @c as a 3D copy of one slice. */
CUDA_MEMCPY3D vgpu_cuda_memcpy3d_of(const CUDA_MEMCPY2D *c);
/* array.c: cuMemcpy2D(Async) with an array on either side. */
CUresult vgpu_cuda_copy_2d_array(const CUDA_MEMCPY2D *c, CUstream stream, bool async);
/* stream.c: the host's handle of @stream (0 for either default stream);
 * CUDA_ERROR_INVALID_HANDLE for a stream that is not one of ours. */
CUresult vgpu_cuda_stream_host(CUstream stream, uint64_t *ret);

/* managed.c: managed memory kept in step with the host's around each
 * call (@m before it is sent; after it, whether it waited for the GPU);
 * whether @ptr is managed memory; cuMemFree of managed memory (false:
 * @ptr is not, nothing done). */
void vgpu_cuda_managed_before(const struct vgpu_cuda_msg *m);
void vgpu_cuda_managed_after(const struct vgpu_cuda_msg *m, CUresult rc);
/* managed.c: this thread is copying managed memory (its calls must not
 * take the errors the program's own next synchronize reports). */
bool vgpu_cuda_managed_inside(void);
/* mem.c: HTOD (@up) or DTOH of @len bytes between @dev and @host on the
 * default stream, the bytes in the calls (never the staging slots). */
CUresult vgpu_cuda_copy_bytes(bool up, CUdeviceptr dev, void *host, size_t len);
bool vgpu_cuda_is_managed(CUdeviceptr ptr);
bool vgpu_cuda_managed_free(CUdeviceptr ptr, CUresult *rc);
/* Device memory @dptr back to the host (cuMemFree's own work; mem.c). */
CUresult vgpu_cuda_free_device(CUdeviceptr dptr);
/* Whether @dptr is a graph allocation (graph_mem.c): then *@rc is the
 * result of freeing it outside its graph, which keeps its memory. */
bool vgpu_graph_mem_free_outside(CUdeviceptr dptr, CUresult *rc);
/* managed.c: CUDA 8.0's prefetch and advice (cuda.h maps the names to
 * 12.2's), exported under the bare names. */
CUresult cuMemPrefetchAsync_v1(CUdeviceptr devPtr, size_t count, CUdevice dstDevice,
			       CUstream hStream) __asm__("cuMemPrefetchAsync");
CUresult cuMemAdvise_v1(CUdeviceptr devPtr, size_t count, CUmem_advise advice, CUdevice device)
	__asm__("cuMemAdvise");

/* stream.c: whether @event is one of this library's events. */
bool vgpu_cuda_is_event(CUevent event);
/* stream.c: the capture under way on @stream (0: none, or a default
 * stream, or not one of ours); set by capture.c as streams join and
 * leave captures. */
uint64_t vgpu_cuda_stream_capture(CUstream stream);
void vgpu_cuda_stream_set_capture(CUstream stream, uint64_t id);

/* capture.c: stream capture recorded here beside the host's. A call on
 * @stream is OFF (not capturing: run it as ever), POST (recorded; post it
 * too, into the host's capture) or DONE (handled: the call returns *@rc). */
enum { VGPU_CAPTURE_OFF, VGPU_CAPTURE_POST, VGPU_CAPTURE_DONE };
/* A capture begun on @s with the host's @id; its end: the host's answer
 * @host_rc and graph @host_graph (NULL on an error) weighed with what
 * was recorded here, the result into *@out. */
CUresult vgpu_capture_begin(CUstream s, uint64_t id);
CUresult vgpu_capture_end(CUstream s, CUresult host_rc, CUgraph host_graph, CUgraph *out);
/* Work on @s that becomes a node of @p; @guest: only the graph built here
 * can hold it (an allocation's address then into *@dptr). */
int vgpu_capture_node(CUstream s, CUgraphNodeParams *p, bool guest, CUdeviceptr *dptr,
		      CUresult *rc);
/* A copy on @s (any async copy, as a 3D one): a node, one only the graph
 * built here can hold when a side is host memory outside the window. */
int vgpu_capture_copy(const CUDA_MEMCPY3D *c, CUstream s, CUresult *rc);
int vgpu_capture_copy_2d(const CUDA_MEMCPY2D *c, CUstream s, CUresult *rc);
/* While a copy recorded and posted sends its pieces through the public
 * calls: those are not recorded again (this thread). */
void vgpu_capture_nest(bool in);
/* Work on @s that cannot be captured at all: the capture is invalidated. */
int vgpu_capture_refuse(CUstream s, CUresult *rc);
/* Whether @s's capture was invalidated. */
bool vgpu_capture_invalid(CUstream s);
/* Work on @s that is not recorded here: the host's graph must be the result. */
int vgpu_capture_host_call(CUstream s, CUresult *rc);
/* @ev recorded on @s; @s waits for @ev; @ev or @s destroyed. */
int vgpu_capture_record(CUevent ev, CUstream s, CUresult *rc);
int vgpu_capture_wait(CUstream s, CUevent ev, CUresult *rc);
void vgpu_capture_event_gone(CUevent ev);
void vgpu_capture_stream_gone(CUstream s);

/* graph.c: a graph record for the host's graph @host into *@out. */
CUresult vgpu_cuda_graph_new(uint64_t host, CUgraph *out);
/* graph.c: CUDA 11.0's cuGraphInstantiate (cuda.h maps the bare name to
 * cuGraphInstantiateWithFlags since 12.0). */
CUresult cuGraphInstantiate_v2(CUgraphExec *phGraphExec, CUgraph hGraph, CUgraphNode *phErrorNode,
			       char *logBuffer, size_t bufferSize);
/* stream.c: CUDA 10.0's cuStreamBeginCapture (no mode: global), exported
 * under the bare name (cuda.h maps it to the second). */
CUresult cuStreamBeginCapture_v1(CUstream hStream) __asm__("cuStreamBeginCapture");

/* stream.c: the first two versions of cuStreamGetCaptureInfo (cuda.h
 * maps the name to the third); the first is exported under the bare name. */
CUresult cuStreamGetCaptureInfo_v1(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
				   cuuint64_t *id_out) __asm__("cuStreamGetCaptureInfo");
CUresult cuStreamGetCaptureInfo_v2(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
				   cuuint64_t *id_out, CUgraph *graph_out,
				   const CUgraphNode **dependencies_out, size_t *numDependencies_out);

/* ctx.c: cuCtxCreate's versions before the one cuda.h maps the name to. */
CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev);
CUresult cuCtxCreate_v3(CUcontext *pctx, CUexecAffinityParam *paramsArray, int numParams,
			unsigned int flags, CUdevice dev);

/* export.c: drop @ctx's context-local storage, calling the destructors
 * (the context is reset, or released for the last time). */
void vgpu_cuda_cls_reset(CUcontext ctx);

/* library.c: a module image's length (cuda_image.h) with *@ret_image
 * where the image itself starts (a fatbin wrapper points to its fatbin);
 * 0 for anything else. */
size_t vgpu_cuda_image_size(const void *image, const void **ret_image);

/* integrity.c: what the integrity check hashes (48 bytes, in this order,
 * host byte order) and one record per device (28 bytes). */
struct vgpu_cuda_integrity_in {
	uint32_t driver_version;  /* what cuDriverGetVersion() says */
	uint32_t version;         /* the caller's argument */
	uint32_t pid;             /* getpid() */
	uint32_t tid;             /* (uint32_t)pthread_self() */
	uint64_t cudart_table;    /* address of the CUDART_INTERFACE table */
	uint64_t integrity_table; /* address of the INTEGRITY_CHECK table */
	uint64_t fn;              /* address of the check function itself */
	uint64_t unix_seconds;    /* the caller's argument */
};
struct vgpu_cuda_device_hash {
	uint8_t uuid[16];
	int32_t pci_domain, pci_bus, pci_device;
};
_Static_assert(sizeof(struct vgpu_cuda_integrity_in) == 48, "hashed as 48 bytes");
_Static_assert(sizeof(struct vgpu_cuda_device_hash) == 28, "hashed as 28 bytes");
void vgpu_cuda_integrity_hash(const struct vgpu_cuda_integrity_in *in,
			      const struct vgpu_cuda_device_hash *devs, size_t n_devs,
			      uint64_t out[2]);

#endif
