/* SPDX-License-Identifier: MIT */
/*
 * managed.c - managed memory (cuMemAllocManaged): one address that the
 * program's CPU code and its kernels both use.
 *
 * The host's worker allocates real managed memory (its kernels reach it
 * at that address); here the same address range is mapped as ordinary
 * memory, the CPU's copy. The two are kept in step as a GPU without
 * concurrent managed access would keep them, which is what the device
 * then says it is (CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS 0,
 * device.c): the CPU's copy goes to the host before the first call that
 * lets the GPU work after the CPU could have written it (a launch, a
 * copy, a memset, a graph), only the pages that changed (a CRC32C per
 * 4 KiB page); the GPU's comes back after each call that waits for the
 * GPU's work (a synchronize, a query that found it done, a blocking
 * copy) while the GPU may have written it (a kernel since the last full
 * synchronize, or a copy or memset into managed memory), over the pages
 * the CPU did not change meanwhile. So a program that synchronizes
 * before its CPU touches managed memory the GPU used, as CUDA requires
 * without concurrent access, sees what it would natively. Prefetches and
 * advice are taken and do nothing; attaching to a stream does nothing.
 *
 * Limits, plainly: every wait after GPU work copies all managed memory
 * back (its cost grows with what the process allocated); the
 * CPU's writes while kernels run reach them only at the next launch
 * after a synchronize; the host's address may be taken in this process
 * already (the allocation then fails, CUDA_ERROR_OUT_OF_MEMORY, after
 * four tries).
 *
 * Never: copy while another thread of this library is copying managed
 * memory (one lock, taken before call.c's and never inside mem.c's
 * staging), call back into the hooks from the copies they make (a
 * thread-local guard), or let those copies take the errors the
 * program's next synchronize is owed (call.c asks).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "shim.h"
#include "vgpu_protocol.h"

#define PAGE 4096u
#define TRIES 4

struct managed {
	CUdeviceptr ptr;
	size_t size;
	uint32_t *crc; /* of each page as the host last had it */
};

static pthread_mutex_t managed_lock = PTHREAD_MUTEX_INITIALIZER;
static struct managed *blocks;
static size_t n_blocks, cap_blocks;
static _Atomic bool any;          /* blocks exist */
static bool host_dirty;   /* the CPU may have written since the last push (managed_lock) */
static bool device_newer; /* the GPU may have written since the last pull (managed_lock) */
static _Thread_local bool inside; /* this thread is pushing or pulling */

static uint32_t page_crc(const struct managed *b, size_t p)
{
	size_t off = (size_t)p * PAGE, len = b->size - off < PAGE ? b->size - off : PAGE;

	return vgpu_proto_crc32c(0, (const uint8_t *)b->ptr + off, len, true);
}

static void rehash(struct managed *b)
{
	for (size_t p = 0; p < (b->size + PAGE - 1) / PAGE; p++)
		b->crc[p] = page_crc(b, p);
}

/* The pages of @b the CPU changed since the host had them, to the host;
 * runs of changed pages go as one copy. managed_lock held. */
static CUresult push(struct managed *b)
{
	size_t pages = (b->size + PAGE - 1) / PAGE, start = SIZE_MAX;
	CUresult rc = CUDA_SUCCESS;

	for (size_t p = 0; p <= pages && rc == CUDA_SUCCESS; p++) {
		bool changed = false;

		if (p < pages) {
			uint32_t crc = page_crc(b, p);

			changed = crc != b->crc[p];
			b->crc[p] = crc;
		}
		if (changed && start == SIZE_MAX)
			start = p;
		if (!changed && start != SIZE_MAX) {
			size_t off = start * PAGE, end = p == pages ? b->size : p * PAGE;

			rc = vgpu_cuda_copy_bytes(true, b->ptr + off, (void *)(b->ptr + off), end - off);
			start = SIZE_MAX;
		}
	}
	return rc;
}

/* The host's copy of @b, in pieces through a scratch buffer, over the
 * CPU's pages that the CPU did not change since the host last had them
 * (those it did keep its bytes, and go to the host at the next push).
 * managed_lock held. */
#define PULL_PIECE ((size_t)16 << 20)
static CUresult pull(struct managed *b)
{
	size_t piece = b->size < PULL_PIECE ? b->size : PULL_PIECE;
	uint8_t *tmp = malloc(piece), *cpu = (uint8_t *)b->ptr;
	CUresult rc = tmp ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;

	for (size_t off = 0; off < b->size && rc == CUDA_SUCCESS; off += piece) {
		size_t n = b->size - off < piece ? b->size - off : piece;

		rc = vgpu_cuda_copy_bytes(false, b->ptr + off, tmp, n);
		for (size_t at = 0; at < n && rc == CUDA_SUCCESS; at += PAGE) {
			size_t p = (off + at) / PAGE, len = n - at < PAGE ? n - at : PAGE;

			if (page_crc(b, p) != b->crc[p])
				continue;
			memcpy(cpu + off + at, tmp + at, len);
			b->crc[p] = page_crc(b, p);
		}
	}
	free(tmp);
	return rc;
}

/* The block @ptr lies in, or NULL. managed_lock held. */
static struct managed *block_at(CUdeviceptr ptr)
{
	for (size_t i = 0; i < n_blocks; i++)
		if (ptr >= blocks[i].ptr && ptr - blocks[i].ptr < blocks[i].size)
			return &blocks[i];
	return NULL;
}

/* Each block through @fn, once, under managed_lock (held). */
static CUresult each(CUresult (*fn)(struct managed *b))
{
	CUresult rc = CUDA_SUCCESS;

	for (size_t i = 0; i < n_blocks && rc == CUDA_SUCCESS; i++)
		rc = fn(&blocks[i]);
	return rc;
}

/* The calls that let the GPU read or write memory. */
static bool gpu_work(uint16_t call)
{
	switch (call) {
	case VGPU_CUDA_LAUNCH:
	case VGPU_CUDA_GRAPH_LAUNCH:
	case VGPU_CUDA_MEMSET:
	case VGPU_CUDA_DTOD:
	case VGPU_CUDA_HTOD:
	case VGPU_CUDA_DTOH:
	case VGPU_CUDA_HTOD_WIN:
	case VGPU_CUDA_DTOH_WIN:
		return true;
	default:
		return false;
	}
}

/* Whether @m may write managed memory on the host: kernels may write
 * anything; copies and memsets their destination (a0). managed_lock held. */
static bool writes_managed(const struct vgpu_cuda_msg *m)
{
	switch (m->call) {
	case VGPU_CUDA_LAUNCH:
	case VGPU_CUDA_GRAPH_LAUNCH:
		return true;
	case VGPU_CUDA_MEMSET:
	case VGPU_CUDA_DTOD:
	case VGPU_CUDA_HTOD:
	case VGPU_CUDA_HTOD_WIN:
		return block_at(m->v[0]) != NULL;
	default:
		return false;
	}
}

bool vgpu_cuda_managed_inside(void)
{
	return inside;
}

void vgpu_cuda_managed_before(const struct vgpu_cuda_msg *m)
{
	if (!atomic_load(&any) || inside || !gpu_work(m->call))
		return;
	pthread_mutex_lock(&managed_lock);
	inside = true;
	if (host_dirty && each(push) != CUDA_SUCCESS)
		vgpu_cuda_log(true, "managed memory: the CPU's writes did not reach the host");
	host_dirty = false;
	if (writes_managed(m))
		device_newer = true;
	inside = false;
	pthread_mutex_unlock(&managed_lock);
}

void vgpu_cuda_managed_after(const struct vgpu_cuda_msg *m, CUresult rc)
{
	uint16_t c = m->call;
	/* Waited for the GPU: a synchronize, a query that found the work
	 * done, a blocking copy; for all of it (full): the context's
	 * synchronize, a blocking copy on the legacy default stream. */
	bool waited = rc == CUDA_SUCCESS &&
		      (c == VGPU_CUDA_SYNC || c == VGPU_CUDA_STREAM_SYNC || c == VGPU_CUDA_STREAM_QUERY ||
		       c == VGPU_CUDA_EVENT_SYNC || c == VGPU_CUDA_EVENT_QUERY || c == VGPU_CUDA_DTOH ||
		       c == VGPU_CUDA_HTOD || ((c == VGPU_CUDA_HTOD_WIN || c == VGPU_CUDA_DTOH_WIN) &&
						m->v[4] == 0));
	bool full = c == VGPU_CUDA_SYNC || (c == VGPU_CUDA_HTOD && m->v[1] == 0) ||
		    (c == VGPU_CUDA_DTOH && m->v[2] == 0) ||
		    ((c == VGPU_CUDA_HTOD_WIN || c == VGPU_CUDA_DTOH_WIN) && m->v[3] == 0);

	if (!atomic_load(&any) || inside || !waited)
		return;
	pthread_mutex_lock(&managed_lock);
	inside = true;
	/* What the GPU wrote, to the CPU's copy; after a narrower wait the
	 * GPU may still write (other streams): pulled again at the next. */
	if (device_newer && each(pull) != CUDA_SUCCESS)
		vgpu_cuda_log(true, "managed memory: the GPU's writes did not reach the CPU");
	if (full)
		device_newer = false;
	/* The CPU has the memory again: what it writes from now on goes to
	 * the host before the GPU's next work. */
	host_dirty = true;
	inside = false;
	pthread_mutex_unlock(&managed_lock);
}

bool vgpu_cuda_is_managed(CUdeviceptr ptr)
{
	bool found;

	if (!atomic_load(&any))
		return false;
	pthread_mutex_lock(&managed_lock);
	found = block_at(ptr) != NULL;
	pthread_mutex_unlock(&managed_lock);
	return found;
}

/* Whether page @page (an address) holds bytes of a block of ours other
 * than the one at @self. managed_lock held. */
static bool page_shared(uintptr_t page, CUdeviceptr self)
{
	for (size_t i = 0; i < n_blocks; i++)
		if (blocks[i].ptr != self && blocks[i].ptr < page + PAGE &&
		    page < blocks[i].ptr + blocks[i].size)
			return true;
	return false;
}

/* The pages of [@ptr, @ptr + @size) that are this block's alone, into
 * [*lo, *hi): NVIDIA's driver hands out small managed allocations from
 * shared pages, so a block's first and last page may hold its
 * neighbours' bytes too (mapped already, and kept while they live).
 * managed_lock held. */
static void own_pages(CUdeviceptr ptr, size_t size, uintptr_t *lo, uintptr_t *hi)
{
	*lo = (uintptr_t)ptr & ~(uintptr_t)(PAGE - 1);
	*hi = ((uintptr_t)ptr + size + PAGE - 1) & ~(uintptr_t)(PAGE - 1);
	if (page_shared(*lo, ptr))
		*lo += PAGE;
	if (*hi > *lo && page_shared(*hi - PAGE, ptr))
		*hi -= PAGE;
}

/* MEM_ALLOC of managed memory (@flags the attach flags) at an address
 * this process can map too: *@ptr, its pages mapped. managed_lock held. */
static CUresult alloc_mapped(size_t bytesize, unsigned int flags, CUdeviceptr *ptr)
{
	CUdeviceptr taken[TRIES];
	int n = 0;
	CUresult rc = CUDA_ERROR_OUT_OF_MEMORY;

	while (n < TRIES) {
		struct vgpu_cuda_msg m = { .call = VGPU_CUDA_MEM_ALLOC, .v = { bytesize, flags } }, r;
		uintptr_t lo, hi;
		void *at;

		rc = vgpu_cuda_call(&m, NULL, &r, NULL, 0);
		if (rc != CUDA_SUCCESS)
			break;
		own_pages((CUdeviceptr)r.v[0], bytesize, &lo, &hi);
		at = hi > lo ? mmap((void *)lo, hi - lo, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)
			     : (void *)lo;
		if (at == (void *)lo) {
			*ptr = (CUdeviceptr)r.v[0];
			break;
		}
		if (at != MAP_FAILED)
			munmap(at, hi - lo);
		taken[n++] = (CUdeviceptr)r.v[0];
		rc = CUDA_ERROR_OUT_OF_MEMORY;
		vgpu_cuda_log(true, "managed memory: the host's address %#llx is taken in this process",
			      (unsigned long long)r.v[0]);
	}
	for (int i = 0; i < n; i++) {
		struct vgpu_cuda_msg m = { .call = VGPU_CUDA_MEM_FREE, .v = { taken[i] } }, r;

		vgpu_cuda_call(&m, NULL, &r, NULL, 0);
	}
	return rc;
}

/* The pages of @ptr's block that no other block shares, unmapped.
 * managed_lock held. */
static void unmap_own(CUdeviceptr ptr, size_t size)
{
	uintptr_t lo, hi;

	own_pages(ptr, size, &lo, &hi);
	if (hi > lo)
		munmap((void *)lo, hi - lo);
}

CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
	struct managed b = { .size = bytesize };
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!dptr || bytesize == 0 || bytesize > SIZE_MAX - PAGE ||
	    (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST))
		return CUDA_ERROR_INVALID_VALUE;
	b.crc = calloc((bytesize + PAGE - 1) / PAGE, sizeof(*b.crc));
	if (!b.crc)
		return CUDA_ERROR_OUT_OF_MEMORY;
	pthread_mutex_lock(&managed_lock);
	if (n_blocks == cap_blocks) {
		size_t cap = cap_blocks ? 2 * cap_blocks : 16;
		struct managed *nb = realloc(blocks, cap * sizeof(*nb));

		if (!nb) {
			pthread_mutex_unlock(&managed_lock);
			free(b.crc);
			return CUDA_ERROR_OUT_OF_MEMORY;
		}
		blocks = nb;
		cap_blocks = cap;
	}
	inside = true;
	rc = alloc_mapped(bytesize, flags, &b.ptr);
	/* Both copies start as zeros: the host's as cuMemAllocManaged made
	 * it (not promised by CUDA, but the pages are new), the CPU's fresh
	 * pages; written over on the first push where the CPU changes them. */
	if (rc == CUDA_SUCCESS && (rc = cuMemsetD8_v2(b.ptr, 0, bytesize)) != CUDA_SUCCESS) {
		struct vgpu_cuda_msg m = { .call = VGPU_CUDA_MEM_FREE, .v = { b.ptr } }, r;

		vgpu_cuda_call(&m, NULL, &r, NULL, 0);
		unmap_own(b.ptr, bytesize);
	}
	/* Its bytes in a shared page may be a freed block's. */
	if (rc == CUDA_SUCCESS)
		memset((void *)b.ptr, 0, bytesize);
	inside = false;
	if (rc == CUDA_SUCCESS) {
		rehash(&b);
		blocks[n_blocks++] = b;
		host_dirty = true; /* the CPU has it now */
		atomic_store(&any, true);
		vgpu_cuda_block_add(b.ptr, bytesize, vgpu_cuda_current_device(), NULL);
		*dptr = b.ptr;
	} else {
		free(b.crc);
	}
	pthread_mutex_unlock(&managed_lock);
	return rc;
}

/* cuMemFree of @ptr when it is managed memory: the CPU's copy unmapped
 * once the host freed its own. false: not managed memory. */
bool vgpu_cuda_managed_free(CUdeviceptr ptr, CUresult *rc)
{
	size_t i;

	if (!atomic_load(&any))
		return false;
	pthread_mutex_lock(&managed_lock);
	for (i = 0; i < n_blocks && blocks[i].ptr != ptr; i++)
		;
	if (i == n_blocks) {
		pthread_mutex_unlock(&managed_lock);
		return false;
	}
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_MEM_FREE, .v = { ptr } }, r;

	inside = true;
	*rc = vgpu_cuda_call(&m, NULL, &r, NULL, 0);
	inside = false;
	if (*rc == CUDA_SUCCESS) {
		struct managed gone = blocks[i];

		blocks[i] = blocks[--n_blocks];
		unmap_own(gone.ptr, gone.size);
		free(gone.crc);
		vgpu_cuda_block_remove(ptr);
	}
	pthread_mutex_unlock(&managed_lock);
	return true;
}

/* Where managed memory should be: nothing to do here (it moves at
 * launches and synchronizes). CUDA 8.0's and 12.2's. */
CUresult cuMemPrefetchAsync_v1(CUdeviceptr devPtr, size_t count, CUdevice dstDevice,
			       CUstream hStream)
{
	CUmemLocation at = { .type = CU_MEM_LOCATION_TYPE_DEVICE, .id = dstDevice };

	return cuMemPrefetchAsync_v2(devPtr, count, at, 0, hStream);
}

CUresult cuMemAdvise_v1(CUdeviceptr devPtr, size_t count, CUmem_advise advice, CUdevice device)
{
	CUmemLocation at = { .type = CU_MEM_LOCATION_TYPE_DEVICE, .id = device };

	return cuMemAdvise_v2(devPtr, count, advice, at);
}

CUresult cuMemPrefetchAsync_v2(CUdeviceptr devPtr, size_t count, CUmemLocation location,
			       unsigned int flags, CUstream hStream)
{
	uint64_t host;
	CUresult rc = vgpu_cuda_ready();

	(void)location;
	if (rc == CUDA_SUCCESS)
		rc = vgpu_cuda_stream_host(hStream, &host);
	if (rc == CUDA_SUCCESS && (!vgpu_cuda_is_managed(devPtr) || !count || flags))
		rc = CUDA_ERROR_INVALID_VALUE;
	return rc;
}

CUresult cuMemAdvise_v2(CUdeviceptr devPtr, size_t count, CUmem_advise advice,
			CUmemLocation location)
{
	CUresult rc = vgpu_cuda_ready();

	(void)advice;
	(void)location;
	if (rc == CUDA_SUCCESS && (!vgpu_cuda_is_managed(devPtr) || !count))
		rc = CUDA_ERROR_INVALID_VALUE;
	return rc;
}

CUresult cuStreamAttachMemAsync(CUstream hStream, CUdeviceptr dptr, size_t length,
				unsigned int flags)
{
	uint64_t host;
	CUresult rc = vgpu_cuda_ready();

	(void)length;
	if (rc == CUDA_SUCCESS)
		rc = vgpu_cuda_stream_host(hStream, &host);
	if (rc == CUDA_SUCCESS && (!vgpu_cuda_is_managed(dptr) ||
				   (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST &&
				    flags != CU_MEM_ATTACH_SINGLE)))
		rc = CUDA_ERROR_INVALID_VALUE;
	return rc;
}
