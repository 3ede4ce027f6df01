/* SPDX-License-Identifier: MIT */
/*
 * mem.c - device memory and copies, on the host (call.c):
 * pointers are the host worker's own device addresses, opaque here; the
 * host checks each against what this VM allocated and its quota.
 *
 * A copy moves in one of three ways (docs/specs/cuda-remoting.md, "The
 * window"): from or to window memory (cuMemHostAlloc's), the worker's
 * DMA straight from it, posted when the copy is asynchronous; other
 * memory of at least STAGE_MIN bytes through the window's two staging
 * slots, a piece copied into one while the worker moves the other; the
 * rest (and everything without a window) in the calls themselves, in
 * pieces of at most VGPU_CUDA_PIECE_KIB (4 to 65536, the most a message
 * carries; default 65536), in order.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "shim.h"
#include "transport.h"

#define STAGE_MIN ((size_t)64 << 10)

static pthread_mutex_t stage_lock = PTHREAD_MUTEX_INITIALIZER; /* the slots */

static uint32_t piece_bytes(void)
{
	static uint32_t bytes;

	if (!bytes)
		bytes = (uint32_t)vgpu_env_ull("VGPU_CUDA_PIECE_KIB", 4, VGPU_CUDA_MAX_DATA >> 10,
					       VGPU_CUDA_MAX_DATA >> 10) << 10;
	return bytes;
}

CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_MEM_ALLOC, .v = { bytesize } }, r;
	CUresult rc;

	if (!dptr || bytesize == 0)
		return CUDA_ERROR_INVALID_VALUE;
	rc = vgpu_cuda_call(&m, NULL, &r, NULL, 0);
	if (rc == CUDA_SUCCESS) {
		*dptr = (CUdeviceptr)r.v[0];
		vgpu_cuda_block_add(*dptr, bytesize, vgpu_cuda_current_device(), NULL);
	}
	return rc;
}

/* Rows of @WidthInBytes padded to the device's pitch alignment (at least
 * 512 bytes, as NVIDIA's driver pads them), @Height of them. */
CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes, size_t Height,
			    unsigned int ElementSizeBytes)
{
	const struct vgpu_cuda_device_desc *d = vgpu_cuda_device(vgpu_cuda_current_device());
	size_t align = 512, pitch, bytes;
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!dptr || !pPitch || !WidthInBytes || !Height ||
	    (ElementSizeBytes != 4 && ElementSizeBytes != 8 && ElementSizeBytes != 16))
		return CUDA_ERROR_INVALID_VALUE;
	if (d && d->attr[CU_DEVICE_ATTRIBUTE_TEXTURE_PITCH_ALIGNMENT - 1] > 512)
		align = (size_t)d->attr[CU_DEVICE_ATTRIBUTE_TEXTURE_PITCH_ALIGNMENT - 1];
	if (WidthInBytes > SIZE_MAX - align)
		return CUDA_ERROR_INVALID_VALUE;
	pitch = (WidthInBytes + align - 1) / align * align;
	if (__builtin_mul_overflow(pitch, Height, &bytes))
		return CUDA_ERROR_INVALID_VALUE;
	rc = cuMemAlloc_v2(dptr, bytes);
	if (rc == CUDA_SUCCESS)
		*pPitch = pitch;
	return rc;
}

CUresult vgpu_cuda_free_device(CUdeviceptr dptr)
{
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_MEM_FREE, .v = { dptr } }, r;
	CUresult rc = vgpu_cuda_call(&m, NULL, &r, NULL, 0);

	if (rc == CUDA_SUCCESS)
		vgpu_cuda_block_remove(dptr);
	return rc;
}

/* Freeing 0 does nothing, as cudaFree(NULL) (cudart asks for it when a
 * program calls cudaFree(0) to make its context). A graph's allocation is
 * its graph's to free (graph_mem.c). */
CUresult cuMemFree_v2(CUdeviceptr dptr)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS || dptr == 0 || vgpu_cuda_managed_free(dptr, &rc) ||
	    vgpu_graph_mem_free_outside(dptr, &rc))
		return rc;
	return vgpu_cuda_free_device(dptr);
}

CUresult cuMemGetInfo_v2(size_t *free, size_t *total)
{
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_MEM_INFO }, r;
	CUresult rc;

	if (!free || !total)
		return CUDA_ERROR_INVALID_VALUE;
	rc = vgpu_cuda_call(&m, NULL, &r, NULL, 0);
	if (rc == CUDA_SUCCESS) {
		*free = (size_t)r.v[0];
		*total = (size_t)r.v[1];
	}
	return rc;
}

/* A copy between device memory @dev and window offset @off, @len bytes,
 * on @stream: posted when @async, else done on return. */
static _Atomic bool async_posted; /* an asynchronous window copy, maybe not done */

static CUresult window_copy(uint16_t call, CUdeviceptr dev, uint64_t off, size_t len,
			    uint64_t stream, bool async)
{
	struct vgpu_cuda_msg m = { .call = call, .v = { dev, off, len, stream, async } }, r;

	if (async)
		atomic_store(&async_posted, true);
	return async ? vgpu_cuda_post(&m, NULL) : vgpu_cuda_call(&m, NULL, &r, NULL, 0);
}

void vgpu_cuda_window_settle(void)
{
	/* As cudaFreeHost waits: the context's work done, so that no copy
	 * posted earlier still moves bytes of the block about to go. */
	if (atomic_exchange(&async_posted, false))
		cuCtxSynchronize();
}

/* HTOD (@up) or DTOH of @len bytes between @dev and the caller's memory
 * @host, through the staging slots: false when there are none. Each
 * piece but the last is posted quietly, a slot reused once its piece's
 * reply is in; the last is a call, which reads every reply before its
 * own (a DTOH's reports the errors of work posted before it). */
static bool staged(bool up, CUdeviceptr dev, char *host, size_t len, uint64_t stream,
		   CUresult *ret)
{
	uint16_t call = up ? VGPU_CUDA_HTOD_WIN : VGPU_CUDA_DTOH_WIN;
	uint8_t *slot[2];
	uint64_t off[2], id[2] = { 0, 0 };
	size_t piece, pieces;
	CUresult rc = CUDA_SUCCESS;

	pthread_mutex_lock(&stage_lock);
	piece = vgpu_cuda_window_stage(slot, off);
	if (!piece) {
		pthread_mutex_unlock(&stage_lock);
		return false;
	}
	pieces = (len + piece - 1) / piece;
	vgpu_cuda_quiet_take();
#define AT(i) ((i) * piece)
#define LEN(i) ((i) + 1 < pieces ? piece : len - AT(i))
	for (size_t i = 0; i < pieces && rc == CUDA_SUCCESS; i++) {
		int k = (int)(i % 2);
		struct vgpu_cuda_msg m = { .call = call,
					   .v = { dev + AT(i), off[k], LEN(i), stream, 0 } }, r;

		if (i >= 2)
			rc = vgpu_cuda_wait_quiet(id[k]);
		if (rc == CUDA_SUCCESS && i >= 2 && !up)
			memcpy(host + AT(i - 2), slot[k], LEN(i - 2));
		if (rc == CUDA_SUCCESS && up)
			memcpy(slot[k], host + AT(i), LEN(i));
		if (rc != CUDA_SUCCESS)
			break;
		rc = i + 1 < pieces ? vgpu_cuda_post_quiet(&m, &id[k])
				    : vgpu_cuda_call(&m, NULL, &r, NULL, 0);
	}
	/* The last call read every reply (and after a failure, the pieces
	 * posted are waited for: the slots are free for the next copy): the
	 * last two pieces' bytes are in. */
	if (rc != CUDA_SUCCESS && (id[0] || id[1]))
		vgpu_cuda_wait_quiet(id[0] > id[1] ? id[0] : id[1]);
	CUresult quiet = vgpu_cuda_quiet_take();

	if (rc == CUDA_SUCCESS && quiet == CUDA_SUCCESS && !up)
		for (size_t i = pieces >= 2 ? pieces - 2 : 0; i < pieces; i++)
			memcpy(host + AT(i), slot[i % 2], LEN(i));
#undef AT
#undef LEN
	pthread_mutex_unlock(&stage_lock);
	*ret = quiet != CUDA_SUCCESS ? quiet : rc;
	return true;
}

/* HTOD (@up) or DTOH of @len bytes between @dev and @host on @stream,
 * the bytes in the calls, in pieces. */
static CUresult in_calls(bool up, CUdeviceptr dev, char *host, size_t len, uint64_t stream)
{
	CUresult rc = CUDA_SUCCESS;

	for (size_t off = 0; off < len && rc == CUDA_SUCCESS;) {
		uint32_t n = len - off < piece_bytes() ? (uint32_t)(len - off) : piece_bytes();
		struct vgpu_cuda_msg m = { .call = up ? VGPU_CUDA_HTOD : VGPU_CUDA_DTOH }, r;

		m.v[0] = dev + off;
		if (up) {
			m.v[1] = stream;
			m.data_len = n;
			rc = vgpu_cuda_call(&m, host + off, &r, NULL, 0);
		} else {
			m.v[1] = n;
			m.v[2] = stream;
			rc = vgpu_cuda_call(&m, NULL, &r, host + off, n);
			if (rc == CUDA_SUCCESS && r.data_len != n)
				rc = CUDA_ERROR_UNKNOWN;
		}
		off += n;
	}
	return rc;
}

/* HTOD on the host's stream @stream (0: the default one); @async: the
 * caller need not wait for it. */
static CUresult htod(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount, uint64_t stream,
		     bool async)
{
	const char *src = srcHost;
	uint64_t at;
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!srcHost && ByteCount)
		return CUDA_ERROR_INVALID_VALUE;
	if (ByteCount && vgpu_cuda_window_offset(srcHost, ByteCount, &at))
		return window_copy(VGPU_CUDA_HTOD_WIN, dstDevice, at, ByteCount, stream, async);
	if (ByteCount >= STAGE_MIN && staged(true, dstDevice, (char *)src, ByteCount, stream, &rc))
		return rc;
	return in_calls(true, dstDevice, (char *)src, ByteCount, stream);
}

/* DTOH on the host's stream @stream (0: the default one); @async as
 * htod's. */
static CUresult dtoh(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount, uint64_t stream,
		     bool async)
{
	char *dst = dstHost;
	uint64_t at;
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!dstHost && ByteCount)
		return CUDA_ERROR_INVALID_VALUE;
	if (ByteCount && vgpu_cuda_window_offset(dstHost, ByteCount, &at))
		return window_copy(VGPU_CUDA_DTOH_WIN, srcDevice, at, ByteCount, stream, async);
	if (ByteCount >= STAGE_MIN && staged(false, srcDevice, dst, ByteCount, stream, &rc))
		return rc;
	return in_calls(false, srcDevice, dst, ByteCount, stream);
}

CUresult vgpu_cuda_copy_bytes(bool up, CUdeviceptr dev, void *host, size_t len)
{
	return in_calls(up, dev, host, len, 0);
}

CUresult cuMemcpyHtoD_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount)
{
	return htod(dstDevice, srcHost, ByteCount, 0, false);
}

CUresult cuMemcpyDtoH_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount)
{
	return dtoh(dstHost, srcDevice, ByteCount, 0, false);
}

/* The async copies are ordered on their stream on the host. From or to
 * window memory they are posted, as CUDA's from page-locked memory; from
 * other memory each returns once the host has the bytes (HTOD) or sent
 * them (DTOH): the caller's memory is free, or filled, on return, which
 * CUDA allows for pageable memory. */
/* An async copy on a capturing stream: a node (capture.c). */
static int captured(CUmemorytype st, const void *sh, CUdeviceptr sd, CUmemorytype dt, void *dh,
		    CUdeviceptr dd, size_t bytes, CUstream stream, CUresult *rc)
{
	CUDA_MEMCPY3D c = { .srcMemoryType = st, .srcHost = sh, .srcDevice = sd,
			    .dstMemoryType = dt, .dstHost = dh, .dstDevice = dd,
			    .WidthInBytes = bytes, .Height = 1, .Depth = 1 };

	if (!bytes || !vgpu_cuda_stream_capture(stream))
		return VGPU_CAPTURE_OFF;
	return vgpu_capture_copy(&c, stream, rc);
}

CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount,
			      CUstream hStream)
{
	uint64_t stream;
	CUresult rc = vgpu_cuda_stream_host(hStream, &stream);

	if (rc == CUDA_SUCCESS && srcHost &&
	    captured(CU_MEMORYTYPE_HOST, srcHost, 0, CU_MEMORYTYPE_DEVICE, NULL, dstDevice,
		     ByteCount, hStream, &rc) == VGPU_CAPTURE_DONE)
		return rc;
	return rc == CUDA_SUCCESS ? htod(dstDevice, srcHost, ByteCount, stream, true) : rc;
}

CUresult cuMemcpyDtoHAsync_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount,
			      CUstream hStream)
{
	uint64_t stream;
	CUresult rc = vgpu_cuda_stream_host(hStream, &stream);

	if (rc == CUDA_SUCCESS && dstHost &&
	    captured(CU_MEMORYTYPE_DEVICE, NULL, srcDevice, CU_MEMORYTYPE_HOST, dstHost, 0,
		     ByteCount, hStream, &rc) == VGPU_CAPTURE_DONE)
		return rc;
	return rc == CUDA_SUCCESS ? dtoh(dstHost, srcDevice, ByteCount, stream, true) : rc;
}

/* MEMSET (@a3 the element's bytes) or DTOD on @stream, posted: the host
 * checks the ranges against what this process allocated, and a range it
 * refuses fails the next synchronizing call (call.c). Nothing to do is
 * done at once. */
static CUresult device_op(uint16_t call, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
			  CUstream stream)
{
	struct vgpu_cuda_msg m = { .call = call, .v = { a0, a1, a2 } };
	uint64_t host;
	CUresult rc = vgpu_cuda_ready();

	if (rc == CUDA_SUCCESS)
		rc = vgpu_cuda_stream_host(stream, &host);
	if (rc != CUDA_SUCCESS || a2 == 0)
		return rc;
	if (host && vgpu_cuda_stream_capture(stream)) {
		/* In a capture: a node (capture.c). */
		CUgraphNodeParams p = { .type = CU_GRAPH_NODE_TYPE_MEMSET,
					.memset = { .dst = a0, .value = (unsigned int)a1,
						    .elementSize = (unsigned int)a3, .width = a2,
						    .height = 1 } };
		CUDA_MEMCPY3D c = { .srcMemoryType = CU_MEMORYTYPE_DEVICE, .srcDevice = a1,
				    .dstMemoryType = CU_MEMORYTYPE_DEVICE, .dstDevice = a0,
				    .WidthInBytes = a2, .Height = 1, .Depth = 1 };
		int v = call == VGPU_CUDA_MEMSET ? vgpu_capture_node(stream, &p, false, NULL, &rc)
						 : vgpu_capture_copy(&c, stream, &rc);

		if (v == VGPU_CAPTURE_DONE)
			return rc;
	}
	if (call == VGPU_CUDA_MEMSET) {
		m.v[3] = a3;
		m.v[4] = host;
	} else {
		m.v[3] = host;
	}
	return vgpu_cuda_post(&m, NULL);
}

CUresult cuMemsetD8_v2(CUdeviceptr dstDevice, unsigned char uc, size_t N)
{
	return device_op(VGPU_CUDA_MEMSET, dstDevice, uc, N, 1, NULL);
}

CUresult cuMemsetD16_v2(CUdeviceptr dstDevice, unsigned short us, size_t N)
{
	return device_op(VGPU_CUDA_MEMSET, dstDevice, us, N, 2, NULL);
}

CUresult cuMemsetD32_v2(CUdeviceptr dstDevice, unsigned int ui, size_t N)
{
	return device_op(VGPU_CUDA_MEMSET, dstDevice, ui, N, 4, NULL);
}

CUresult cuMemsetD8Async(CUdeviceptr dstDevice, unsigned char uc, size_t N, CUstream hStream)
{
	return device_op(VGPU_CUDA_MEMSET, dstDevice, uc, N, 1, hStream);
}

CUresult cuMemsetD16Async(CUdeviceptr dstDevice, unsigned short us, size_t N, CUstream hStream)
{
	return device_op(VGPU_CUDA_MEMSET, dstDevice, us, N, 2, hStream);
}

CUresult cuMemsetD32Async(CUdeviceptr dstDevice, unsigned int ui, size_t N, CUstream hStream)
{
	return device_op(VGPU_CUDA_MEMSET, dstDevice, ui, N, 4, hStream);
}

/* A 2D memset (@width elements of @elem bytes in each of @height rows,
 * @pitch bytes apart): one MEMSET when the rows touch, else one per row,
 * each posted like any memset (the host checks every range). */
static CUresult memset_2d(CUdeviceptr dst, size_t pitch, uint64_t value, size_t width, size_t height,
			  unsigned int elem, CUstream stream)
{
	CUresult rc = CUDA_SUCCESS;

	if (width > SIZE_MAX / elem || (height > 1 && (pitch == 0 || pitch < width * elem)) ||
	    (height > 1 && (height - 1) > (UINT64_MAX - dst) / pitch))
		return CUDA_ERROR_INVALID_VALUE;
	if (height == 0 || width == 0)
		return device_op(VGPU_CUDA_MEMSET, dst, value, 0, elem, stream);
	if (pitch == width * elem && width <= SIZE_MAX / height)
		return device_op(VGPU_CUDA_MEMSET, dst, value, width * height, elem, stream);
	for (size_t r = 0; r < height && rc == CUDA_SUCCESS; r++)
		rc = device_op(VGPU_CUDA_MEMSET, dst + r * pitch, value, width, elem, stream);
	return rc;
}

CUresult cuMemsetD2D8_v2(CUdeviceptr dstDevice, size_t dstPitch, unsigned char uc, size_t Width,
			 size_t Height)
{
	return memset_2d(dstDevice, dstPitch, uc, Width, Height, 1, NULL);
}

CUresult cuMemsetD2D16_v2(CUdeviceptr dstDevice, size_t dstPitch, unsigned short us, size_t Width,
			  size_t Height)
{
	return memset_2d(dstDevice, dstPitch, us, Width, Height, 2, NULL);
}

CUresult cuMemsetD2D32_v2(CUdeviceptr dstDevice, size_t dstPitch, unsigned int ui, size_t Width,
			  size_t Height)
{
	return memset_2d(dstDevice, dstPitch, ui, Width, Height, 4, NULL);
}

CUresult cuMemsetD2D8Async(CUdeviceptr dstDevice, size_t dstPitch, unsigned char uc, size_t Width,
			   size_t Height, CUstream hStream)
{
	return memset_2d(dstDevice, dstPitch, uc, Width, Height, 1, hStream);
}

CUresult cuMemsetD2D16Async(CUdeviceptr dstDevice, size_t dstPitch, unsigned short us, size_t Width,
			    size_t Height, CUstream hStream)
{
	return memset_2d(dstDevice, dstPitch, us, Width, Height, 2, hStream);
}

CUresult cuMemsetD2D32Async(CUdeviceptr dstDevice, size_t dstPitch, unsigned int ui, size_t Width,
			    size_t Height, CUstream hStream)
{
	return memset_2d(dstDevice, dstPitch, ui, Width, Height, 4, hStream);
}

CUresult cuMemcpyDtoD_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount)
{
	return device_op(VGPU_CUDA_DTOD, dstDevice, srcDevice, ByteCount, 0, NULL);
}

CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount,
			      CUstream hStream)
{
	return device_op(VGPU_CUDA_DTOD, dstDevice, srcDevice, ByteCount, 0, hStream);
}

CUresult cuCtxSynchronize(void)
{
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_SYNC }, r;

	return vgpu_cuda_call(&m, NULL, &r, NULL, 0);
}

/* CUDA 13: @ctx's work (NULL: the current context's); the process has
 * one context per device, all on the host's one connection. */
CUresult cuCtxSynchronize_v2(CUcontext ctx)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (ctx && vgpu_cuda_ctx_device(ctx) < 0)
		return CUDA_ERROR_INVALID_CONTEXT;
	return cuCtxSynchronize();
}
