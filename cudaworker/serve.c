/* SPDX-License-Identifier: MIT */
/*
 * serve.c - one connection of a guest's libcuda.so.1 (cuda_call.h): its
 * DESCRIBE, or its OPEN and then its calls, one at a time, until it
 * closes. What the process allocated or loaded is freed when it goes.
 *
 * Every pointer a call names must lie within an allocation of this
 * connection (the others of the VM are not its own to touch, and an
 * address the driver would refuse gets a clean CUDA_ERROR_INVALID_VALUE
 * instead); every allocation counts against the VM's quota before the
 * driver is asked; a message that breaks the framing closes the
 * connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vgpu_clock.h"
#include "vgpu_error.h"
#include "worker.h"

struct alloc {
	CUdeviceptr ptr;
	uint64_t size;
	uint32_t dev;
	uint64_t lib;                /* a global variable of this library; 0: cuMemAlloc's */
	struct wpool *pool;          /* stream-ordered, from this pool (pool.c); NULL: not */
	bool reserved;               /* an address range (vmm.c): mapped memory, or none */
};

struct conn {
	struct worker *w;
	int fd;
	struct alloc *allocs;
	uint32_t n_allocs, cap_allocs;
	uint8_t *buf;                /* a copy's data, up to VGPU_CUDA_MAX_DATA */
	size_t buf_cap;
	bool dropped;                /* this call's data found no room */
	struct modules mods;         /* its libraries and kernels (module.c) */
	struct streams streams;      /* its streams and events (stream.c) */
	struct window win;           /* its window (window.c) */
	struct pools pools;          /* its memory pools (pool.c) */
	struct vmm vmm;              /* its physical allocations and mappings (vmm.c) */
	struct arrays arrays;        /* its CUDA arrays, textures, surfaces (array.c) */
	uint32_t n_reserved;         /* of its allocations, address ranges */
	int passed_fd;               /* a descriptor this call brought, or -1 */
	bool ring_call;              /* the call came through the ring: no reply */
	bool busy;                   /* launched since its last synchronize */
};

static bool io(int fd, void *buf, size_t len, bool out)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = out ? send(fd, p, len, MSG_NOSIGNAL) : recv(fd, p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* A call's header and block into @head, and the descriptor the guest
 * sent with it, if any, into c->passed_fd (any more are closed). */
static bool recv_head(struct conn *c, uint8_t head[VGPU_CUDA_MSG_HEAD])
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} ctl;
	struct iovec iov = { head, VGPU_CUDA_MSG_HEAD };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	ssize_t n;

	do
		n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return false;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t fds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		for (size_t i = 0; i < fds; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			if (c->passed_fd < 0)
				c->passed_fd = fd;
			else
				close(fd);
		}
	}
	return (size_t)n == VGPU_CUDA_MSG_HEAD ||
	       io(c->fd, head + n, VGPU_CUDA_MSG_HEAD - (size_t)n, false);
}

static bool reply(struct conn *c, const struct vgpu_cuda_msg *m, CUresult status,
		  const uint64_t *res, int n_res, const void *data, uint32_t len)
{
	struct vgpu_cuda_msg r = { .call = m->call, .id = m->id, .status = (int32_t)status };
	uint8_t head[VGPU_CUDA_MSG_HEAD];

	worker_answered(c->w, status);

	/* A ring call has no reply: its error, if it is the first, waits in
	 * the ring's control page for the guest's next synchronizing call. */
	if (c->ring_call) {
		uint32_t none = 0;

		if (status != CUDA_SUCCESS)
			atomic_compare_exchange_strong(&c->win.ctl->error, &none, (uint32_t)status);
		return true;
	}
	for (int i = 0; i < n_res; i++)
		r.v[i] = res[i];
	r.data_len = status == CUDA_SUCCESS ? len : 0;
	vgpu_cuda_encode(&r, true, head);
	return io(c->fd, head, sizeof(head), true) && (!r.data_len || io(c->fd, (void *)data,
									  r.data_len, true));
}

/* Room for @len bytes of a copy's data, within the worker's budget of
 * WORKER_MAX_BUFFERED for every connection's buffer. */
static bool room(struct conn *c, size_t len)
{
	struct worker *w = c->w;

	if (len <= c->buf_cap)
		return true;
	/* The old buffer's bytes are counted already: only the growth. */
	if (!worker_take(w, &w->buffered, WORKER_MAX_BUFFERED, len - c->buf_cap))
		return false;
	free(c->buf);
	c->buf = malloc(len);
	if (!c->buf)
		worker_give(w, &w->buffered, len);
	c->buf_cap = c->buf ? len : 0;
	return c->buf != NULL;
}

/* Read and drop @len bytes (a copy that found no room). */
static bool drop(int fd, uint64_t len)
{
	char scratch[4096];

	while (len > 0) {
		size_t n = len < sizeof(scratch) ? (size_t)len : sizeof(scratch);

		if (!io(fd, scratch, n, false))
			return false;
		len -= n;
	}
	return true;
}

/* The allocation of this connection that holds [@ptr, @ptr + @len), or
 * NULL; @exact: it must start at @ptr. */
static struct alloc *find(struct conn *c, uint64_t ptr, uint64_t len, bool exact)
{
	for (uint32_t i = 0; i < c->n_allocs; i++) {
		struct alloc *a = &c->allocs[i];

		if (exact ? a->ptr == ptr
			  : ptr >= a->ptr && len <= a->size && ptr - a->ptr <= a->size - len)
			return a;
	}
	return NULL;
}

CUresult worker_on_device(struct worker *w, uint32_t dev)
{
	if (dev >= w->desc.count)
		return CUDA_ERROR_INVALID_DEVICE;
	return w->drv.ctx_set_current(w->ctx[dev]);
}

static CUresult on_device(struct conn *c, uint32_t dev)
{
	return worker_on_device(c->w, dev);
}

/* worker_span_fn over @ctx, a connection. */
static bool in_allocs(void *ctx, uint64_t ptr, uint64_t len, uint32_t *dev)
{
	struct alloc *a = find(ctx, ptr, len, false);

	if (a)
		*dev = a->dev;
	return a != NULL;
}

bool worker_take(struct worker *w, uint64_t *held, uint64_t max, uint64_t n)
{
	bool ok;

	pthread_mutex_lock(&w->lock);
	ok = n <= max && *held <= max - n;
	if (ok)
		*held += n;
	pthread_mutex_unlock(&w->lock);
	return ok;
}

void worker_give(struct worker *w, uint64_t *held, uint64_t n)
{
	pthread_mutex_lock(&w->lock);
	*held -= n;
	pthread_mutex_unlock(&w->lock);
}

/* What limit @limit of value @value reserves of GPU @dev's memory: the
 * stack for every thread the GPU can hold at once, the FIFO and the heap
 * their bytes (UINT64_MAX when it overflows). */
static uint64_t limit_reserves(const struct worker *w, uint32_t dev, uint64_t limit, uint64_t value)
{
	const int32_t *attr = w->desc.dev[dev].attr;
	uint64_t threads;

	if (limit != CU_LIMIT_STACK_SIZE)
		return value;
	threads = (uint64_t)(uint32_t)attr[CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT - 1] *
		  (uint32_t)attr[CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR - 1];
	return threads && value > UINT64_MAX / threads ? UINT64_MAX : value * threads;
}

CUresult worker_set_limit(struct worker *w, uint32_t dev, uint64_t limit, uint64_t value)
{
	uint64_t now, next;
	size_t first = 0;
	CUresult rc = CUDA_SUCCESS;

	/* Limits that reserve nothing the VM could not use anyway; not the
	 * persisting L2 set-aside (the L2 is every VM's), nor the device
	 * runtime's (their reservations are not known here). */
	if (limit == CU_LIMIT_MAX_L2_FETCH_GRANULARITY)
		return w->drv.ctx_set_limit((CUlimit)limit, (size_t)value);
	if (limit > CU_LIMIT_MALLOC_HEAP_SIZE)
		return limit < CU_LIMIT_MAX ? CUDA_ERROR_UNSUPPORTED_LIMIT : CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&w->limits_lock);
	/* The default's reservation came with the context: only what goes
	 * beyond it counts (and a value below it gives back nothing). */
	if (!w->limit_known[dev][limit]) {
		rc = w->drv.ctx_get_limit(&first, (CUlimit)limit);
		if (rc == CUDA_SUCCESS) {
			w->limit_default[dev][limit] = limit_reserves(w, dev, limit, first);
			w->limit_bytes[dev][limit] = 0;
			w->limit_known[dev][limit] = true;
		}
	}
	now = w->limit_bytes[dev][limit];
	next = limit_reserves(w, dev, limit, value);
	next = next > w->limit_default[dev][limit] ? next - w->limit_default[dev][limit] : 0;
	if (rc == CUDA_SUCCESS && next > now && !worker_take_memory(w, next - now))
		rc = CUDA_ERROR_OUT_OF_MEMORY;
	if (rc == CUDA_SUCCESS) {
		rc = w->drv.ctx_set_limit((CUlimit)limit, (size_t)value);
		if (rc == CUDA_SUCCESS && next < now)
			worker_give(w, &w->held, now - next);
		else if (rc != CUDA_SUCCESS && next > now)
			worker_give(w, &w->held, next - now);
		if (rc == CUDA_SUCCESS)
			w->limit_bytes[dev][limit] = next;
	}
	pthread_mutex_unlock(&w->limits_lock);
	return rc;
}

/* Room for one more range in c->allocs, within WORKER_MAX_ALLOCS. */
static bool alloc_room(struct conn *c)
{
	if (c->n_allocs == c->cap_allocs) {
		uint32_t cap = c->cap_allocs ? c->cap_allocs * 2 : 64;
		struct alloc *a;

		if (c->n_allocs >= WORKER_MAX_ALLOCS)
			return false;
		a = realloc(c->allocs, (size_t)cap * sizeof(*a));
		if (!a)
			return false;
		c->allocs = a;
		c->cap_allocs = cap;
	}
	return true;
}

/* MEM_ALLOC: @size bytes of device memory, or managed memory attached
 * as @managed says (CU_MEM_ATTACH_GLOBAL or _HOST; 0: not managed). */
/* cuMemAlloc and cuMemFree in CUDA's relaxed capture mode: this thread
 * may be capturing (the process's stream capture), and the memory of a
 * graph the guest builds from a capture is allocated then (guest
 * capture.c, graph_mem.c); the guest keeps its program to CUDA's rules. */
static CUstreamCaptureMode relax(const struct driver *d)
{
	CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;

	d->exchange_capture_mode(&mode);
	return mode;
}

static void unrelax(const struct driver *d, CUstreamCaptureMode mode)
{
	d->exchange_capture_mode(&mode);
}

static CUresult mem_alloc(struct conn *c, uint64_t size, uint64_t managed, uint32_t dev,
			  uint64_t *ret)
{
	struct worker *w = c->w;
	CUdeviceptr ptr;
	CUresult rc;

	if (size == 0 || (managed && managed != CU_MEM_ATTACH_GLOBAL && managed != CU_MEM_ATTACH_HOST))
		return CUDA_ERROR_INVALID_VALUE;
	if (!alloc_room(c))
		return CUDA_ERROR_OUT_OF_MEMORY;
	/* The quota first: held counts the bytes asked for until they are
	 * given back, so two processes cannot both pass the check. */
	if (!worker_take_memory(w, size))
		return CUDA_ERROR_OUT_OF_MEMORY;
	rc = on_device(c, dev);
	if (rc == CUDA_SUCCESS) {
		CUstreamCaptureMode mode = relax(&w->drv);

		rc = managed ? w->drv.mem_alloc_managed(&ptr, (size_t)size, (unsigned int)managed)
			     : w->drv.mem_alloc(&ptr, (size_t)size);
		unrelax(&w->drv, mode);
	}
	if (rc != CUDA_SUCCESS) {
		worker_give(w, &w->held, size);
		return rc;
	}
	c->allocs[c->n_allocs++] = (struct alloc){ ptr, size, dev, 0, NULL, false };
	*ret = ptr;
	return CUDA_SUCCESS;
}

/* MEM_ALLOC_ASYNC: @m's bytes from its pool, in its stream's order. Not
 * into a capture: the graph's memory would be the driver's, uncounted. */
static CUresult mem_alloc_async(struct conn *c, const struct vgpu_cuda_msg *m, uint32_t dev,
				uint64_t *ret)
{
	struct wpool *from = NULL;
	CUdeviceptr ptr = 0;
	CUstream s = NULL;
	CUresult rc = on_device(c, dev);

	if (rc == CUDA_SUCCESS)
		rc = stream_of(&c->streams, m->v[1], &s);
	if (rc == CUDA_SUCCESS && stream_capturing(c->w, s))
		rc = CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
	if (rc == CUDA_SUCCESS && !alloc_room(c))
		rc = CUDA_ERROR_OUT_OF_MEMORY;
	if (rc == CUDA_SUCCESS)
		rc = pool_alloc(c->w, &c->pools, m->v[2], dev, m->v[0], s, &ptr, &from);
	if (rc != CUDA_SUCCESS)
		return rc;
	c->allocs[c->n_allocs++] = (struct alloc){ ptr, m->v[0], dev, 0, from, false };
	*ret = ptr;
	return CUDA_SUCCESS;
}

/* GLOBAL: library @lib's variable, which copies and memsets of this
 * process may then touch as they do its allocations, until the library
 * is unloaded (it is the module's memory: no quota, never freed here). */
static CUresult global(struct conn *c, const struct vgpu_cuda_msg *m, uint32_t dev,
		       uint64_t res[2])
{
	CUresult rc = c->dropped ? CUDA_ERROR_OUT_OF_MEMORY : on_device(c, dev);

	if (rc == CUDA_SUCCESS)
		rc = module_global(c->w, &c->mods, m->v[0], (const char *)c->buf, m->data_len, res);
	if (rc != CUDA_SUCCESS || find(c, res[0], res[1], false))
		return rc; /* asked before: known already */
	if (!alloc_room(c))
		return CUDA_ERROR_OUT_OF_MEMORY;
	c->allocs[c->n_allocs++] = (struct alloc){ res[0], res[1], dev, m->v[0], NULL, false };
	return CUDA_SUCCESS;
}

/* The library @lib was unloaded: its variables are not this process's
 * to touch any more. */
static void forget_globals(struct conn *c, uint64_t lib)
{
	for (uint32_t i = 0; i < c->n_allocs;)
		if (c->allocs[i].lib == lib)
			c->allocs[i] = c->allocs[--c->n_allocs];
		else
			i++;
}

/* MEM_FREE, or MEM_FREE_ASYNC on stream @stream (@async): a pool's
 * allocation goes back to its pool in the stream's order; cuMemAlloc's
 * once the stream's work is done (so its bytes stop counting only once
 * the driver has them back). */
static CUresult mem_free(struct conn *c, uint64_t ptr, bool async, uint64_t stream)
{
	const struct driver *d = &c->w->drv;
	struct alloc *a = find(c, ptr, 0, true);
	struct wpool *pool;
	CUstream s = NULL;
	CUresult rc;

	if (!a || a->lib || a->reserved)
		return CUDA_ERROR_INVALID_VALUE;
	rc = on_device(c, a->dev);
	if (rc == CUDA_SUCCESS && async)
		rc = stream_of(&c->streams, stream, &s);
	if (rc == CUDA_SUCCESS && async && stream_capturing(c->w, s))
		rc = CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
	if (rc != CUDA_SUCCESS)
		return rc;
	if (a->pool) {
		rc = async ? d->free_async(a->ptr, s) : d->mem_free(a->ptr);
		if (rc != CUDA_SUCCESS)
			return rc; /* the driver kept it: still the process's, and its pool's */
		pool = a->pool;
		*a = c->allocs[--c->n_allocs];
		pool_freed(c->w, &c->pools, pool);
		return CUDA_SUCCESS;
	}
	if (async && (rc = d->stream_sync(s)) != CUDA_SUCCESS)
		return rc; /* still the process's: the stream's work failed */
	CUstreamCaptureMode mode = relax(d);

	rc = d->mem_free(a->ptr);
	unrelax(d, mode);
	worker_give(c->w, &c->w->held, a->size);
	*a = c->allocs[--c->n_allocs];
	return rc;
}

/* VMM: address ranges here (they are allocations to copies and
 * memsets), the rest vmm.c's within them. */
static CUresult vmm(struct conn *c, const struct vgpu_cuda_msg *m, uint32_t dev, uint64_t res[3])
{
	struct worker *w = c->w;
	struct alloc *a;
	CUresult rc = on_device(c, dev);

	if (rc != CUDA_SUCCESS)
		return rc;
	switch (m->v[0]) {
	case VGPU_CUDA_VMM_RESERVE:
		if (c->n_reserved >= WORKER_MAX_RESERVES || !alloc_room(c))
			return CUDA_ERROR_OUT_OF_MEMORY;
		rc = vmm_reserve(w, m, &res[0]);
		if (rc != CUDA_SUCCESS)
			return rc;
		c->allocs[c->n_allocs++] = (struct alloc){ res[0], m->v[1], dev, 0, NULL, true };
		c->n_reserved++;
		return CUDA_SUCCESS;
	case VGPU_CUDA_VMM_FREE:
		a = find(c, m->v[1], 0, true);
		if (!a || !a->reserved || a->size != m->v[2] || m->v[3] || m->v[4])
			return CUDA_ERROR_INVALID_VALUE;
		rc = vmm_unreserve(w, &c->vmm, a->ptr, a->size);
		if (rc == CUDA_SUCCESS) {
			*a = c->allocs[--c->n_allocs];
			c->n_reserved--;
		}
		return rc;
	case VGPU_CUDA_VMM_MAP:
	case VGPU_CUDA_VMM_UNMAP:
	case VGPU_CUDA_VMM_ACCESS:
		a = m->v[2] ? find(c, m->v[1], m->v[2], false) : NULL;
		if (!a || !a->reserved)
			return CUDA_ERROR_INVALID_VALUE;
		/* fall through */
	default:
		return vmm_call(w, &c->vmm, m, dev, res);
	}
}

/* MEMSET or DTOD: every byte it writes, and for DTOD reads, within one
 * of the process's allocations; on the destination's device, ordered on
 * the call's stream (the default one: as the synchronous calls, which on
 * device memory return before the work is done too). */
static CUresult device_op(struct conn *c, const struct vgpu_cuda_msg *m)
{
	const struct driver *d = &c->w->drv;
	bool set = m->call == VGPU_CUDA_MEMSET;
	uint64_t size = set ? m->v[3] : 1, bytes = 0;
	struct alloc *dst = NULL;
	CUstream s = NULL;
	CUresult rc;

	if ((size == 1 || size == 2 || size == 4) && (!set || m->v[1] >> (8 * size) == 0) &&
	    !__builtin_mul_overflow(m->v[2], size, &bytes) && bytes > 0)
		dst = find(c, m->v[0], bytes, false);
	if (!dst || (!set && !find(c, m->v[1], bytes, false)))
		return CUDA_ERROR_INVALID_VALUE;
	rc = on_device(c, dst->dev);
	if (rc == CUDA_SUCCESS)
		rc = stream_of(&c->streams, set ? m->v[4] : m->v[3], &s);
	if (rc != CUDA_SUCCESS)
		return rc;
	if (!set)
		return d->dtod(m->v[0], m->v[1], bytes, s);
	return size == 1   ? d->memset8(m->v[0], (unsigned char)m->v[1], m->v[2], s)
	       : size == 2 ? d->memset16(m->v[0], (unsigned short)m->v[1], m->v[2], s)
			   : d->memset32(m->v[0], (unsigned int)m->v[1], m->v[2], s);
}

/* HTOD_WIN or DTOH_WIN: between one of the process's allocations and its
 * window, on the call's stream: asynchronous (a4 1), or done by the
 * time of the reply. */
static CUresult window_copy(struct conn *c, const struct vgpu_cuda_msg *m)
{
	const struct driver *d = &c->w->drv;
	bool up = m->call == VGPU_CUDA_HTOD_WIN;
	struct alloc *a = find(c, m->v[0], m->v[2], false);
	uint8_t *host = window_at(&c->win, m->v[1], m->v[2]);
	CUstream s = NULL;
	CUresult rc;

	if (!a || !host || m->v[4] > 1)
		return CUDA_ERROR_INVALID_VALUE;
	rc = on_device(c, a->dev);
	if (rc == CUDA_SUCCESS)
		rc = stream_of(&c->streams, m->v[3], &s);
	if (rc != CUDA_SUCCESS)
		return rc;
	if (!m->v[4] && !s)
		return up ? d->htod(m->v[0], host, m->v[2]) : d->dtoh(host, m->v[0], m->v[2]);
	rc = up ? d->htod_async(m->v[0], host, m->v[2], s) : d->dtoh_async(host, m->v[0], m->v[2], s);
	if (rc == CUDA_SUCCESS && !m->v[4])
		rc = d->stream_sync(s);
	return rc;
}

/* ARRAY_COPY: its device memory within one allocation, on the array's
 * GPU and the call's stream. */
static CUresult array_copy_call(struct conn *c, const struct vgpu_cuda_msg *m)
{
	struct vgpu_cuda_array_copy ac;
	uint64_t len;
	uint32_t mem_dev = UINT32_MAX;
	CUstream s = NULL;
	CUresult rc;

	memcpy(&ac, c->buf, sizeof(ac));
	if (m->v[1] != VGPU_CUDA_ARRAY_TO_ARRAY) {
		rc = array_copy_span(&ac, &len);
		if (rc != CUDA_SUCCESS)
			return rc;
		if (!in_allocs(c, ac.dptr, len, &mem_dev))
			return CUDA_ERROR_INVALID_VALUE;
	} else if (ac.dptr || ac.pitch || ac.slice_rows) {
		return CUDA_ERROR_INVALID_VALUE;
	}
	rc = stream_of(&c->streams, m->v[0], &s);
	if (rc != CUDA_SUCCESS)
		return rc;
	if (stream_capturing(c->w, s))
		return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
	return array_copy(c->w, &c->arrays, m->v[1], &ac, s, mem_dev);
}

/* One call (its data, if any, in c->buf); false when the connection must
 * close. */
static bool call(struct conn *c, const struct vgpu_cuda_msg *m)
{
	struct worker *w = c->w;
	uint32_t dev = m->v[5] < VGPU_CUDA_MAX_DEVICES ? (uint32_t)m->v[5] : UINT32_MAX;
	uint64_t res[3] = { 0, 0, 0 }; /* MEM_ALLOC, MEM_INFO, LIB_LOAD, VMM */
	CUresult rc = CUDA_SUCCESS;
	size_t free_b, total_b;

	switch (m->call) {
	case VGPU_CUDA_MEM_ALLOC:
		rc = mem_alloc(c, m->v[0], m->v[1], dev, &res[0]);
		return reply(c, m, rc, res, 1, NULL, 0);
	case VGPU_CUDA_MEM_FREE:
		return reply(c, m, mem_free(c, m->v[0], false, 0), NULL, 0, NULL, 0);
	case VGPU_CUDA_MEM_ALLOC_ASYNC:
		rc = mem_alloc_async(c, m, dev, &res[0]);
		return reply(c, m, rc, res, 1, NULL, 0);
	case VGPU_CUDA_MEM_FREE_ASYNC:
		return reply(c, m, mem_free(c, m->v[0], true, m->v[1]), NULL, 0, NULL, 0);
	case VGPU_CUDA_VMM:
		rc = vmm(c, m, dev, res);
		return reply(c, m, rc, res, 3, NULL, 0);
	case VGPU_CUDA_ARRAY:
		rc = on_device(c, dev);
		if (rc == CUDA_SUCCESS)
			rc = array_call(w, &c->arrays, m, dev, res);
		return reply(c, m, rc, res, 2, NULL, 0);
	case VGPU_CUDA_ARRAY_COPY:
		rc = c->dropped ? CUDA_ERROR_OUT_OF_MEMORY : array_copy_call(c, m);
		return reply(c, m, rc, NULL, 0, NULL, 0);
	case VGPU_CUDA_TEX:
		rc = c->dropped ? CUDA_ERROR_OUT_OF_MEMORY : on_device(c, dev);
		if (rc == CUDA_SUCCESS)
			rc = tex_call(w, &c->arrays, m, c->buf, in_allocs, c, dev, &res[0]);
		return reply(c, m, rc, res, 1, NULL, 0);
	case VGPU_CUDA_POOL:
		rc = on_device(c, dev);
		if (rc == CUDA_SUCCESS)
			rc = pool_call(w, &c->pools, m, dev, &res[0]);
		return reply(c, m, rc, res, 1, NULL, 0);
	case VGPU_CUDA_MEM_INFO:
		if (w->quota) {
			pool_refresh_all(w, false);
			pthread_mutex_lock(&w->lock);
			uint64_t used = w->held + w->pool_held;

			res[0] = w->quota - (used < w->quota ? used : w->quota);
			pthread_mutex_unlock(&w->lock);
			res[1] = w->quota;
		} else if ((rc = on_device(c, dev)) == CUDA_SUCCESS &&
			   (rc = w->drv.mem_info(&free_b, &total_b)) == CUDA_SUCCESS) {
			res[0] = free_b;
			res[1] = total_b;
		}
		return reply(c, m, rc, res, 2, NULL, 0);
	case VGPU_CUDA_HTOD: {
		struct alloc *a = find(c, m->v[0], m->data_len, false);

		if (c->dropped)
			return reply(c, m, CUDA_ERROR_OUT_OF_MEMORY, NULL, 0, NULL, 0);
		CUstream s = NULL;

		rc = a ? on_device(c, a->dev) : CUDA_ERROR_INVALID_VALUE;
		if (rc == CUDA_SUCCESS)
			rc = stream_of(&c->streams, m->v[1], &s);
		if (rc == CUDA_SUCCESS && stream_capturing(w, s))
			rc = CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED; /* as from pageable memory */
		/* From pageable memory (c->buf) the driver returns once it has
		 * taken the bytes: the buffer is free for the next call. */
		if (rc == CUDA_SUCCESS)
			rc = s ? w->drv.htod_async(m->v[0], c->buf, m->data_len, s)
			       : w->drv.htod(m->v[0], c->buf, m->data_len);
		return reply(c, m, rc, NULL, 0, NULL, 0);
	}
	case VGPU_CUDA_DTOH: {
		struct alloc *a = m->v[1] && m->v[1] <= VGPU_CUDA_MAX_DATA
					  ? find(c, m->v[0], m->v[1], false) : NULL;

		CUstream s = NULL;

		rc = a ? on_device(c, a->dev) : CUDA_ERROR_INVALID_VALUE;
		if (rc == CUDA_SUCCESS)
			rc = stream_of(&c->streams, m->v[2], &s);
		if (rc == CUDA_SUCCESS && stream_capturing(w, s))
			rc = CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
		if (rc == CUDA_SUCCESS && !room(c, m->v[1]))
			rc = CUDA_ERROR_OUT_OF_MEMORY;
		/* The reply carries the bytes: a copy on a stream is waited for. */
		if (rc == CUDA_SUCCESS && s)
			rc = w->drv.dtoh_async(c->buf, m->v[0], m->v[1], s);
		if (rc == CUDA_SUCCESS)
			rc = s ? w->drv.stream_sync(s) : w->drv.dtoh(c->buf, m->v[0], m->v[1]);
		worker_busy(w, &c->busy, false);
		return reply(c, m, rc, NULL, 0, c->buf, (uint32_t)m->v[1]);
	}
	case VGPU_CUDA_PRIORITY_RANGE: {
		int least = 0, greatest = 0;

		rc = on_device(c, dev);
		if (rc == CUDA_SUCCESS)
			rc = w->drv.priority_range(&least, &greatest);
		res[0] = (uint32_t)least;
		res[1] = (uint32_t)greatest;
		return reply(c, m, rc, res, 2, NULL, 0);
	}
	case VGPU_CUDA_MEMSET:
	case VGPU_CUDA_DTOD:
		return reply(c, m, device_op(c, m), NULL, 0, NULL, 0);
	case VGPU_CUDA_SYNC:
		rc = on_device(c, dev);
		if (rc == CUDA_SUCCESS)
			rc = w->drv.ctx_sync();
		worker_busy(w, &c->busy, false);
		return reply(c, m, rc, NULL, 0, NULL, 0);
	case VGPU_CUDA_LIB_LOAD:
		rc = c->dropped ? CUDA_ERROR_OUT_OF_MEMORY : on_device(c, dev);
		if (rc == CUDA_SUCCESS)
			rc = module_load(w, &c->mods, c->buf, m->data_len, &res[0]);
		return reply(c, m, rc, res, 1, NULL, 0);
	case VGPU_CUDA_LIB_UNLOAD:
		rc = on_device(c, dev);
		if (rc == CUDA_SUCCESS)
			rc = module_unload(w, &c->mods, m->v[0]);
		if (rc == CUDA_SUCCESS)
			forget_globals(c, m->v[0]);
		return reply(c, m, rc, NULL, 0, NULL, 0);
	case VGPU_CUDA_GLOBAL:
		rc = global(c, m, dev, res);
		return reply(c, m, rc, res, 2, NULL, 0);
	case VGPU_CUDA_FUNC_ATTR:
	case VGPU_CUDA_OCCUPANCY:
		rc = c->dropped ? CUDA_ERROR_OUT_OF_MEMORY : on_device(c, dev);
		if (rc == CUDA_SUCCESS)
			rc = module_query(w, &c->mods, m, c->buf, res);
		return reply(c, m, rc, res, 2, NULL, 0);
	case VGPU_CUDA_WINDOW:
		rc = on_device(c, dev);
		if (rc == CUDA_SUCCESS)
			rc = window_open(w, &c->win, c->passed_fd, m->v[0], m->v[1], m->v[2],
					 &res[0]);
		return reply(c, m, rc, res, 1, NULL, 0);
	case VGPU_CUDA_HTOD_WIN:
	case VGPU_CUDA_DTOH_WIN:
		return reply(c, m, window_copy(c, m), NULL, 0, NULL, 0);
	case VGPU_CUDA_CTX_INFO: {
		unsigned int version = 0;
		size_t value = 0;

		rc = on_device(c, dev);
		if (rc == CUDA_SUCCESS && m->v[0] == 0 && m->v[1] == 0 && !m->v[2])
			rc = w->drv.ctx_api_version(w->ctx[dev], &version);
		else if (rc == CUDA_SUCCESS && m->v[0] == 1 && m->v[1] < CU_LIMIT_MAX && !m->v[2])
			rc = w->drv.ctx_get_limit(&value, (CUlimit)m->v[1]);
		else if (rc == CUDA_SUCCESS && m->v[0] == 2)
			rc = worker_set_limit(w, dev, m->v[1], m->v[2]);
		else if (rc == CUDA_SUCCESS)
			rc = CUDA_ERROR_INVALID_VALUE;
		res[0] = m->v[0] ? value : version;
		return reply(c, m, rc, res, 1, NULL, 0);
	}
	case VGPU_CUDA_GET_KERNEL: {
		uint64_t k[3] = { 0, 0, 0 };
		const uint32_t *layout = NULL;

		rc = c->dropped ? CUDA_ERROR_OUT_OF_MEMORY : on_device(c, dev);
		if (rc == CUDA_SUCCESS)
			rc = module_kernel(w, &c->mods, m->v[0], (const char *)c->buf, m->data_len, k,
					   &layout);
		return reply(c, m, rc, k, 3, layout, (uint32_t)(8 * k[1]));
	}
	case VGPU_CUDA_LAUNCH: {
		CUstream s = NULL;

		rc = c->dropped ? CUDA_ERROR_OUT_OF_MEMORY : on_device(c, dev);
		if (rc == CUDA_SUCCESS)
			rc = stream_of(&c->streams, m->v[4] >> 32, &s);
		if (rc == CUDA_SUCCESS) {
			/* Busy from here: a launch waiting in the gate is work
			 * outstanding (a program that synchronizes after each
			 * launch stays paced, not let go while it waits). */
			worker_busy(w, &c->busy, true);
			worker_gate(w);
			rc = module_launch(w, &c->mods, m, c->buf, s);
		}
		if (rc == CUDA_SUCCESS)
			atomic_fetch_add_explicit(&w->launches, 1, memory_order_relaxed);
		return reply(c, m, rc, NULL, 0, NULL, 0);
	}
	case VGPU_CUDA_STREAM_CREATE:
	case VGPU_CUDA_STREAM_DESTROY:
	case VGPU_CUDA_STREAM_SYNC:
	case VGPU_CUDA_STREAM_QUERY:
	case VGPU_CUDA_STREAM_WAIT:
	case VGPU_CUDA_EVENT_CREATE:
	case VGPU_CUDA_EVENT_DESTROY:
	case VGPU_CUDA_EVENT_RECORD:
	case VGPU_CUDA_EVENT_SYNC:
	case VGPU_CUDA_EVENT_QUERY:
	case VGPU_CUDA_EVENT_ELAPSED:
		rc = on_device(c, dev);
		if (rc == CUDA_SUCCESS)
			rc = stream_call(w, &c->streams, m, &res[0]);
		if (m->call == VGPU_CUDA_STREAM_SYNC || m->call == VGPU_CUDA_EVENT_SYNC)
			worker_busy(w, &c->busy, false);
		return reply(c, m, rc, res, 1, NULL, 0);
	case VGPU_CUDA_GRAPH_LAUNCH:
		rc = on_device(c, dev);
		if (rc == CUDA_SUCCESS && !m->v[2]) {
			worker_busy(w, &c->busy, true);
			worker_gate(w);
		}
		if (rc == CUDA_SUCCESS)
			rc = graph_call(w, &c->streams, m, &res[0]);
		if (rc == CUDA_SUCCESS && !m->v[2])
			atomic_fetch_add_explicit(&w->launches, 1, memory_order_relaxed);
		return reply(c, m, rc, NULL, 0, NULL, 0);
	case VGPU_CUDA_CAPTURE_BEGIN:
	case VGPU_CUDA_CAPTURE_END:
	case VGPU_CUDA_GRAPH_INSTANTIATE:
	case VGPU_CUDA_GRAPH_DESTROY:
		rc = on_device(c, dev);
		if (rc == CUDA_SUCCESS)
			rc = graph_call(w, &c->streams, m, &res[0]);
		return reply(c, m, rc, res, 1, NULL, 0);
	default: /* OPEN again, DESCRIBE: out of place */
		return false;
	}
}

/* The calls waiting in the ring, in order: false (the connection
 * closes) at the first entry, head or tail that is not as cuda_ring.h
 * says, or a call that may not come that way. */
static bool drain_ring(struct conn *c)
{
	struct window *win = &c->win;
	struct vgpu_cuda_msg m;
	uint64_t tail, len;
	int rc;

	if (!win->ctl)
		return true;
	tail = atomic_load_explicit(&win->ctl->tail, memory_order_acquire);
	while ((rc = vgpu_cuda_ring_next(win->ring, win->ring_bytes, win->head, tail, &m, &len)) !=
	       VGPU_CUDA_RING_EMPTY) {
		if (rc == VGPU_CUDA_RING_BAD)
			return false;
		if (rc == VGPU_CUDA_RING_SKIP) {
			win->head += len;
			continue;
		}
		/* Its data in the buffer, or, when the worker's budget has no
		 * room for it, the call fails (as on the connection). */
		c->dropped = m.data_len && !room(c, m.data_len);
		if (m.data_len && !c->dropped)
			memcpy(c->buf,
			       win->ring + (win->head & (win->ring_bytes - 1)) +
				       VGPU_CUDA_RING_PREFIX + VGPU_CUDA_MSG_HEAD,
			       m.data_len);
		c->ring_call = true;
		call(c, &m);
		c->ring_call = false;
		win->head += len;
		atomic_store_explicit(&win->ctl->head, win->head, memory_order_release);
	}
	return true;
}

/* Until the connection has a message or the ring an entry: a while
 * awake (WORKER_SPIN_NS since the last one), then asleep on the
 * connection, the ring's control page saying so (the guest then sends
 * KICK with its next entry). 1: the connection has input (or hung up),
 * 0: the ring has entries, -1: the connection broke. Without a ring,
 * straight to sleep: one poll() per call. */
static int wait_input(struct conn *c)
{
	struct vgpu_cuda_ring_ctl *ctl = c->win.ctl;
	uint64_t start = vgpu_now_ns();
	struct pollfd pfd = { c->fd, POLLIN, 0 };
	int n;

	for (;;) {
		if (ctl) {
			if (atomic_load_explicit(&ctl->tail, memory_order_acquire) != c->win.head)
				return 0;
			if ((n = poll(&pfd, 1, 0)) > 0)
				break;
			if (vgpu_now_ns() - start < WORKER_SPIN_NS)
				continue;
			atomic_store(&ctl->sleeping, 1);
			if (atomic_load(&ctl->tail) != c->win.head) {
				atomic_store(&ctl->sleeping, 0);
				return 0;
			}
		}
		n = poll(&pfd, 1, -1);
		if (ctl)
			atomic_store(&ctl->sleeping, 0);
		if (n < 0 && errno != EINTR)
			return -1;
		if (n > 0)
			break;
	}
	return pfd.revents & (POLLERR | POLLNVAL) ? -1 : 1;
}

/* drain_ring(), saying so when the ring is malformed. */
static bool ring_ok(struct conn *c)
{
	if (drain_ring(c))
		return true;
	fprintf(stderr, "vgpu-cuda-worker: a malformed call ring: closing its connection\n");
	return false;
}

/* The calls after OPEN, from the connection and the ring, until the
 * connection closes or either breaks framing. */
static void calls(struct conn *c)
{
	uint8_t head[VGPU_CUDA_MSG_HEAD];
	struct vgpu_cuda_msg m;
	struct pollfd pfd = { c->fd, POLLIN, 0 };
	int in;

	while ((in = wait_input(c)) >= 0 && ring_ok(c)) {
		bool ok = true;
		int rc;

		if (in == 0 && poll(&pfd, 1, 0) <= 0)
			continue;
		if (!recv_head(c, head))
			return;
		rc = vgpu_cuda_decode(head, false, &m);
		if (rc != VGPU_OK) {
			fprintf(stderr, "vgpu-cuda-worker: a malformed call (%s): closing its "
					"connection\n", vgpu_strerror(rc));
			return;
		}
		/* What the guest wrote to the ring before it sent this, first. */
		if (!ring_ok(c))
			return;
		if (m.call != VGPU_CUDA_KICK) {
			/* An HTOD's bytes: in the buffer, or dropped when the
			 * worker's budget has no room (the call then fails, the
			 * framing holds). */
			c->dropped = m.data_len && !room(c, m.data_len);
			if (m.data_len && !(c->dropped ? drop(c->fd, m.data_len)
						       : io(c->fd, c->buf, m.data_len, false)))
				return;
			ok = call(c, &m);
		}
		/* Only WINDOW takes one, and keeps its mapping, not the fd. */
		if (c->passed_fd >= 0)
			close(c->passed_fd);
		c->passed_fd = -1;
		if (!ok)
			return;
	}
}

/* What the process held goes back: its modules, its memory, on its
 * devices. */
static void release(struct conn *c)
{
	uint64_t bytes = 0;
	bool pooled = false;

	for (uint32_t i = 0; i < c->n_allocs; i++)
		pooled |= c->allocs[i].pool != NULL || c->allocs[i].reserved;
	/* The window's asynchronous copies done before it goes, and the
	 * work that may use the pools' allocations before they go back
	 * (cuMemFree does not wait for it there): until then they count. */
	for (uint32_t d = 0; (c->win.base || pooled) && d < c->w->desc.count; d++)
		if (on_device(c, d) == CUDA_SUCCESS)
			c->w->drv.ctx_sync();
	worker_busy(c->w, &c->busy, false);
	stream_release(c->w, &c->streams);
	module_release(c->w, &c->mods);
	window_close(c->w, &c->win);
	if (c->passed_fd >= 0)
		close(c->passed_fd);
	c->passed_fd = -1;

	array_release(c->w, &c->arrays);
	vmm_release(c->w, &c->vmm);
	for (uint32_t i = 0; i < c->n_allocs; i++) {
		if (c->allocs[i].lib)
			continue; /* a library's variable: gone with its library */
		if (c->allocs[i].reserved) {
			c->w->drv.vmm_free(c->allocs[i].ptr, (size_t)c->allocs[i].size);
			continue;
		}
		if (on_device(c, c->allocs[i].dev) == CUDA_SUCCESS)
			c->w->drv.mem_free(c->allocs[i].ptr);
		if (!c->allocs[i].pool)
			bytes += c->allocs[i].size;
	}
	pool_release(c->w, &c->pools);
	pthread_mutex_lock(&c->w->lock);
	c->w->held -= bytes;
	c->w->buffered -= c->buf_cap;
	pthread_mutex_unlock(&c->w->lock);
	free(c->allocs);
	free(c->buf);
}

static void describe(struct conn *c, const struct vgpu_msg_header *h)
{
	static uint8_t out[VGPU_PROTO_HEADER_SIZE + VGPU_CUDA_DESCRIBED_MAX];
	static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
	struct vgpu_cuda_desc none = { 0 };
	size_t len;

	/* A worker without a driver shows no GPU: cuInit() says so. */
	pthread_mutex_lock(&out_lock);
	len = vgpu_cuda_build_described(h->request_id, VGPU_OK,
					c->w->drv_status == CUDA_SUCCESS ? &c->w->desc : &none, out,
					sizeof(out));
	if (len)
		io(c->fd, out, len, true);
	pthread_mutex_unlock(&out_lock);
}

void worker_serve(struct worker *w, int fd, const uint8_t head[VGPU_PROTO_HEADER_SIZE])
{
	const struct vgpu_proto_limits lim = { .max_payload = VGPU_CUDA_BLOCK };
	uint8_t open_msg[VGPU_CUDA_MSG_HEAD];
	struct conn c = { .w = w, .fd = fd, .passed_fd = -1 };
	struct vgpu_msg_header h;
	struct vgpu_cuda_msg m;

	/* The mediator's loop had it non-blocking; a thread of ours waits. */
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0 ||
	    vgpu_proto_decode_header(head, &lim, &h) != VGPU_OK || h.type != VGPU_MSG_CUDA) {
		close(fd);
		return;
	}
	if (h.op == VGPU_CUDA_DESCRIBE && h.payload_len == 0) {
		describe(&c, &h);
	} else if (h.op == VGPU_CUDA_OPEN && h.payload_len == VGPU_CUDA_BLOCK) {
		memcpy(open_msg, head, VGPU_PROTO_HEADER_SIZE);
		if (io(fd, open_msg + VGPU_PROTO_HEADER_SIZE, VGPU_CUDA_BLOCK, false) &&
		    vgpu_cuda_decode(open_msg, false, &m) == VGPU_OK) {
			CUresult rc = w->drv_status != CUDA_SUCCESS ? w->drv_status
				      : w->desc.count == 0 ? CUDA_ERROR_NO_DEVICE
							   : CUDA_SUCCESS;

			if (reply(&c, &m, rc, NULL, 0, NULL, 0) && rc == CUDA_SUCCESS)
				calls(&c);
		}
	}
	release(&c);
	close(fd);
}
