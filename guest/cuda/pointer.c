/* SPDX-License-Identifier: MIT */
/*
 * pointer.c - what a pointer is, answered in the guest: the device
 * memory this process allocated (each block as cuMemAlloc returned it,
 * kept here in address order), its window (host memory the device can
 * reach) and everything else (host memory of its own). With it, the
 * unified calls that take either kind of pointer work as under NVIDIA's
 * driver: cuMemcpy(Async) picks the direction, cuPointerGetAttribute(s)
 * and cuMemGetAddressRange answer without the host.
 *
 * Device addresses are the worker's (mem.c): they may equal addresses of
 * this process's own memory, so a pointer is device memory only when it
 * lies in a block allocated here, and host memory otherwise (NVIDIA's
 * unified addressing keeps the two apart; here the blocks decide).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"

struct block {
	CUdeviceptr ptr;
	size_t size;
	CUdevice dev;
	unsigned long long id;   /* CU_POINTER_ATTRIBUTE_BUFFER_ID */
	const void *lib;         /* a global variable of this library; NULL: allocated */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct block *blocks;  /* by ptr */
static size_t n_blocks, cap_blocks;
static unsigned long long next_id = 1;

/* The index of the first block starting after @ptr. Lock held. */
static size_t after(CUdeviceptr ptr)
{
	size_t lo = 0, hi = n_blocks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (blocks[mid].ptr <= ptr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The block holding @ptr, copied into *@b; false if none. */
static bool lookup(CUdeviceptr ptr, struct block *b)
{
	size_t i;
	bool found;

	pthread_mutex_lock(&lock);
	i = after(ptr);
	found = i > 0 && ptr - blocks[i - 1].ptr < blocks[i - 1].size;
	if (found)
		*b = blocks[i - 1];
	pthread_mutex_unlock(&lock);
	return found;
}

void vgpu_cuda_block_add(CUdeviceptr ptr, size_t size, CUdevice dev, const void *lib)
{
	pthread_mutex_lock(&lock);
	if (n_blocks == cap_blocks) {
		size_t cap = cap_blocks ? 2 * cap_blocks : 64;
		struct block *b = realloc(blocks, cap * sizeof(*b));

		if (!b) {
			pthread_mutex_unlock(&lock);
			return; /* unknown here: treated as host memory, as before */
		}
		blocks = b;
		cap_blocks = cap;
	}
	size_t i = after(ptr);

	memmove(&blocks[i + 1], &blocks[i], (n_blocks - i) * sizeof(*blocks));
	blocks[i] = (struct block){ ptr, size, dev, next_id++, lib };
	n_blocks++;
	pthread_mutex_unlock(&lock);
}

void vgpu_cuda_block_remove(CUdeviceptr ptr)
{
	pthread_mutex_lock(&lock);
	size_t i = after(ptr);

	if (i > 0 && blocks[i - 1].ptr == ptr) {
		memmove(&blocks[i - 1], &blocks[i], (n_blocks - i) * sizeof(*blocks));
		n_blocks--;
	}
	pthread_mutex_unlock(&lock);
}

void vgpu_cuda_block_forget_lib(const void *lib)
{
	size_t k = 0;

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n_blocks; i++)
		if (blocks[i].lib != lib)
			blocks[k++] = blocks[i];
	n_blocks = k;
	pthread_mutex_unlock(&lock);
}

bool vgpu_cuda_is_device(CUdeviceptr ptr)
{
	struct block b;

	return lookup(ptr, &b);
}

/* cuMemcpy(Async): the direction from what each pointer is. */
static CUresult copy(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream stream, bool async)
{
	bool d = vgpu_cuda_is_device(dst), s = vgpu_cuda_is_device(src);
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS || n == 0)
		return rc;
	if (d && s)
		return async ? cuMemcpyDtoDAsync_v2(dst, src, n, stream) : cuMemcpyDtoD_v2(dst, src, n);
	if (d)
		return async ? cuMemcpyHtoDAsync_v2(dst, (const void *)src, n, stream)
			     : cuMemcpyHtoD_v2(dst, (const void *)src, n);
	if (s)
		return async ? cuMemcpyDtoHAsync_v2((void *)dst, src, n, stream)
			     : cuMemcpyDtoH_v2((void *)dst, src, n);
	/* Host to host: in order with the stream's work, as the driver's;
	 * not into a capture (here, where it would have to wait for it). */
	if (async && vgpu_capture_refuse(stream, &rc) == VGPU_CAPTURE_DONE)
		return rc;
	rc = async ? cuStreamSynchronize(stream) : cuCtxSynchronize();
	if (rc == CUDA_SUCCESS)
		memmove((void *)dst, (const void *)src, n);
	return rc;
}

CUresult cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount)
{
	return copy(dst, src, ByteCount, NULL, false);
}

CUresult cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount, CUstream hStream)
{
	return copy(dst, src, ByteCount, hStream, true);
}

CUresult cuMemGetAddressRange_v2(CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr)
{
	struct block b;
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!lookup(dptr, &b))
		return CUDA_ERROR_NOT_FOUND;
	if (pbase)
		*pbase = b.ptr;
	if (psize)
		*psize = b.size;
	return CUDA_SUCCESS;
}

/* One attribute of @ptr into @data; CUDA_ERROR_INVALID_VALUE for memory
 * the driver does not know (cuPointerGetAttributes answers it anyway). */
static CUresult attribute(void *data, CUpointer_attribute attr, CUdeviceptr ptr)
{
	struct block b;
	bool dev = lookup(ptr, &b);
	CUdeviceptr mapped = dev ? 0 : vgpu_cuda_window_device((const void *)ptr);
	bool known = dev || mapped;
	uint64_t off;

	if (!known && vgpu_cuda_window_offset((const void *)ptr, 1, &off))
		known = true; /* window memory the device cannot reach: host memory still */
	switch (attr) {
	case CU_POINTER_ATTRIBUTE_CONTEXT:
		*(CUcontext *)data = known ? vgpu_cuda_primary(dev ? b.dev : 0) : NULL;
		break;
	case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
		*(unsigned int *)data = !known ? 0 : dev ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST;
		break;
	case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
		*(CUdeviceptr *)data = dev ? ptr : mapped;
		if (!dev && !mapped)
			return CUDA_ERROR_INVALID_VALUE;
		break;
	case CU_POINTER_ATTRIBUTE_HOST_POINTER: {
		bool host = known && (!dev || vgpu_cuda_is_managed(ptr)); /* managed: both */

		*(void **)data = host ? (void *)ptr : NULL;
		if (!host)
			return CUDA_ERROR_INVALID_VALUE;
		break;
	}
	case CU_POINTER_ATTRIBUTE_IS_MANAGED:
		*(unsigned int *)data = dev && vgpu_cuda_is_managed(ptr);
		break;
	case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
		*(int *)data = known ? (dev ? b.dev : 0) : -2;
		break;
	case CU_POINTER_ATTRIBUTE_BUFFER_ID:
		*(unsigned long long *)data = dev ? b.id : 0;
		break;
	case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
		*(CUdeviceptr *)data = dev ? b.ptr : 0;
		break;
	case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
		*(size_t *)data = dev ? b.size : 0;
		break;
	case CU_POINTER_ATTRIBUTE_MAPPED:
		*(int *)data = dev;
		break;
	case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS:
	case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE:
	case CU_POINTER_ATTRIBUTE_IS_GPU_DIRECT_RDMA_CAPABLE:
	case CU_POINTER_ATTRIBUTE_IS_HW_DECOMPRESS_CAPABLE:
		*(int *)data = 0;
		break;
	case CU_POINTER_ATTRIBUTE_ACCESS_FLAGS:
		*(int *)data = known ? CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READWRITE : 0;
		break;
	case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES:
		*(unsigned long long *)data = 0;
		break;
	case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
		*(CUmemoryPool *)data = NULL;
		break;
	case CU_POINTER_ATTRIBUTE_MAPPING_SIZE:
		*(size_t *)data = dev ? b.size : 0;
		break;
	case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR:
		*(void **)data = dev ? (void *)b.ptr : NULL;
		break;
	case CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID:
		*(unsigned long long *)data = dev ? b.id : 0;
		break;
	default:
		vgpu_cuda_log(false, "pointer attribute %d: not served", (int)attr);
		return CUDA_ERROR_NOT_SUPPORTED;
	}
	return known ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuPointerGetAttribute(void *data, CUpointer_attribute attribute_, CUdeviceptr ptr)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!data)
		return CUDA_ERROR_INVALID_VALUE;
	return attribute(data, attribute_, ptr);
}

/* Every attribute asked for; memory the driver does not know is no
 * error here (its type 0, its context NULL, its ordinal -2), as CUDA's. */
CUresult cuPointerGetAttributes(unsigned int numAttributes, CUpointer_attribute *attributes,
				void **data, CUdeviceptr ptr)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!attributes || !data)
		return CUDA_ERROR_INVALID_VALUE;
	for (unsigned int i = 0; i < numAttributes; i++) {
		if (!data[i])
			return CUDA_ERROR_INVALID_VALUE;
		rc = attribute(data[i], attributes[i], ptr);
		if (rc == CUDA_ERROR_NOT_SUPPORTED)
			return rc;
	}
	return CUDA_SUCCESS;
}

/* One side of a 2D copy: the address of its row @row, and whether it is
 * device memory; false for a kind CUDA does not have. */
static bool side(CUmemorytype type, const void *host, CUdeviceptr dev, size_t x, size_t y,
		 size_t pitch, CUdeviceptr *at, bool *is_dev)
{
	switch (type) {
	case CU_MEMORYTYPE_HOST:
		*at = (CUdeviceptr)host + y * pitch + x;
		*is_dev = false;
		return true;
	case CU_MEMORYTYPE_DEVICE:
		*at = dev + y * pitch + x;
		*is_dev = true;
		return true;
	case CU_MEMORYTYPE_UNIFIED:
		*at = dev + y * pitch + x;
		*is_dev = vgpu_cuda_is_device(dev);
		return true;
	default:
		return false;
	}
}

/*
 * cuMemcpy2D(Async): row by row, each row a copy of its own (one copy
 * when both sides are contiguous), in order; device rows are posted and
 * window rows DMA, so what costs a round trip per row is pageable host
 * memory in a synchronous copy. A copy with a CUDA array is array.c's.
 */
static CUresult copy_2d(const CUDA_MEMCPY2D *c, CUstream stream, bool async)
{
	CUdeviceptr src, dst;
	bool src_dev, dst_dev;
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!c)
		return CUDA_ERROR_INVALID_VALUE;
	/* In a capture: a node (capture.c); posted too, its pieces not
	 * recorded again. */
	int v = async ? vgpu_capture_copy_2d(c, stream, &rc) : VGPU_CAPTURE_OFF;

	if (v == VGPU_CAPTURE_DONE)
		return rc;
	if (v == VGPU_CAPTURE_POST) {
		vgpu_capture_nest(true);
		rc = copy_2d(c, stream, async);
		vgpu_capture_nest(false);
		return rc;
	}
	if (c->srcMemoryType == CU_MEMORYTYPE_ARRAY || c->dstMemoryType == CU_MEMORYTYPE_ARRAY)
		return vgpu_cuda_copy_2d_array(c, stream, async);
	size_t spitch = c->srcMemoryType == CU_MEMORYTYPE_HOST || c->srcPitch ? c->srcPitch
									       : c->WidthInBytes;
	size_t dpitch = c->dstMemoryType == CU_MEMORYTYPE_HOST || c->dstPitch ? c->dstPitch
									       : c->WidthInBytes;

	if ((c->Height > 1 && (spitch < c->WidthInBytes || dpitch < c->WidthInBytes)))
		return CUDA_ERROR_INVALID_VALUE;
	if (!side(c->srcMemoryType, c->srcHost, c->srcDevice, c->srcXInBytes, c->srcY, spitch, &src,
		  &src_dev) ||
	    !side(c->dstMemoryType, c->dstHost, c->dstDevice, c->dstXInBytes, c->dstY, dpitch, &dst,
		  &dst_dev))
		return CUDA_ERROR_INVALID_VALUE;
	size_t rows = c->Height, width = c->WidthInBytes;

	if (spitch == width && dpitch == width) {
		width *= rows;
		rows = 1;
	}
	for (size_t y = 0; y < rows && rc == CUDA_SUCCESS && width; y++) {
		CUdeviceptr d = dst + y * dpitch, s = src + y * spitch;

		if (dst_dev && src_dev)
			rc = async ? cuMemcpyDtoDAsync_v2(d, s, width, stream) : cuMemcpyDtoD_v2(d, s, width);
		else if (dst_dev)
			rc = async ? cuMemcpyHtoDAsync_v2(d, (const void *)s, width, stream)
				   : cuMemcpyHtoD_v2(d, (const void *)s, width);
		else if (src_dev)
			rc = async ? cuMemcpyDtoHAsync_v2((void *)d, s, width, stream)
				   : cuMemcpyDtoH_v2((void *)d, s, width);
		else if (y == 0)
			rc = async ? cuStreamSynchronize(stream) : cuCtxSynchronize();
		if (rc == CUDA_SUCCESS && !dst_dev && !src_dev)
			memmove((void *)d, (const void *)s, width);
	}
	return rc;
}

CUresult cuMemcpy2D_v2(const CUDA_MEMCPY2D *pCopy)
{
	return copy_2d(pCopy, NULL, false);
}

CUresult cuMemcpy2DUnaligned_v2(const CUDA_MEMCPY2D *pCopy)
{
	return copy_2d(pCopy, NULL, false);
}

CUresult cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D *pCopy, CUstream hStream)
{
	return copy_2d(pCopy, hStream, true);
}
