/* SPDX-License-Identifier: MIT */
/*
 * array.c - CUDA arrays and the copies to and from them (cuArrayCreate,
 * cuArray3DCreate, cuMemcpy2D/3D with an array on either side, cuMemcpyHtoA
 * and the like). The host's worker holds the arrays (handles from 1, what
 * each holds counted against the VM's quota: cudaworker/array.c); here
 * each is a record with that handle, its device and its descriptor,
 * checked by its magic, so that descriptors are answered here.
 *
 * A copy between an array and device memory is one call (ARRAY_COPY, on
 * the copy's stream). One with host memory goes through device memory
 * of this process's: the host side is copied to a buffer made for it
 * (counted against the quota like any allocation) and from there to the
 * array, or the other way, and the buffer freed once the stream has done
 * with it: such a copy waits for its stream, even cuMemcpy3DAsync's.
 *
 * Served: the formats of 8, 16 and 32-bit integers, half and float, with
 * 1, 2 or 4 channels, layered, cubemap, surface and gather arrays (what
 * the host's driver accepts). Refused with CUDA_ERROR_NOT_SUPPORTED:
 * other formats (block-compressed, video), mipmapped arrays, sparse
 * arrays, and arrays of other processes (interprocess handles).
 */
#include <stdlib.h>
#include <string.h>

#include "shim.h"

#define ARRAY_MAGIC 0x56415259u /* "VARY" */

struct CUarray_st {
	uint32_t magic;
	uint64_t host;
	CUdevice dev;
	CUDA_ARRAY3D_DESCRIPTOR d;
};

bool vgpu_cuda_array_host(CUarray a, uint64_t *host, CUdevice *dev)
{
	if (!VGPU_CUDA_IS(a, ARRAY_MAGIC))
		return false;
	*host = a->host;
	if (dev)
		*dev = a->dev;
	return true;
}

CUresult cuArray3DCreate_v2(CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *d)
{
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_ARRAY }, r;
	const unsigned served = CUDA_ARRAY3D_LAYERED | CUDA_ARRAY3D_SURFACE_LDST |
				CUDA_ARRAY3D_CUBEMAP | CUDA_ARRAY3D_TEXTURE_GATHER;
	CUresult rc = vgpu_cuda_ready();
	struct CUarray_st *a;

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!pHandle || !d || d->Width == 0 ||
	    (d->NumChannels != 1 && d->NumChannels != 2 && d->NumChannels != 4))
		return CUDA_ERROR_INVALID_VALUE;
	if (!vgpu_cuda_format_bytes(d->Format) || (d->Flags & ~served)) {
		vgpu_cuda_log(true, "cuArray3DCreate: format %#x, flags %#x not served: "
			      "CUDA_ERROR_NOT_SUPPORTED", (unsigned)d->Format, d->Flags);
		return CUDA_ERROR_NOT_SUPPORTED;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return CUDA_ERROR_OUT_OF_MEMORY;
	m.v[0] = 0;
	m.v[1] = d->Width;
	m.v[2] = d->Height;
	m.v[3] = d->Depth;
	m.v[4] = (uint64_t)d->Format | (uint64_t)d->NumChannels << 16 | (uint64_t)d->Flags << 32;
	rc = vgpu_cuda_call(&m, NULL, &r, NULL, 0);
	if (rc == CUDA_SUCCESS && r.v[0] == 0)
		rc = CUDA_ERROR_INVALID_HANDLE;
	if (rc != CUDA_SUCCESS) {
		free(a);
		return rc;
	}
	a->magic = ARRAY_MAGIC;
	a->host = r.v[0];
	a->dev = vgpu_cuda_current_device();
	a->d = *d;
	*pHandle = a;
	return CUDA_SUCCESS;
}

CUresult cuArrayCreate_v2(CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR *d)
{
	CUDA_ARRAY3D_DESCRIPTOR d3 = { 0 };

	if (!d)
		return CUDA_ERROR_INVALID_VALUE;
	d3.Width = d->Width;
	d3.Height = d->Height;
	d3.Format = d->Format;
	d3.NumChannels = d->NumChannels;
	return cuArray3DCreate_v2(pHandle, &d3);
}

CUresult cuArrayDestroy(CUarray hArray)
{
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_ARRAY }, r;
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!VGPU_CUDA_IS(hArray, ARRAY_MAGIC))
		return CUDA_ERROR_INVALID_HANDLE;
	m.v[0] = 1;
	m.v[1] = hArray->host;
	rc = vgpu_cuda_call_on(hArray->dev, &m, NULL, &r, NULL, 0);
	if (rc == CUDA_SUCCESS) {
		hArray->magic = 0;
		free(hArray);
	}
	return rc;
}

CUresult cuArray3DGetDescriptor_v2(CUDA_ARRAY3D_DESCRIPTOR *d, CUarray hArray)
{
	if (!d)
		return CUDA_ERROR_INVALID_VALUE;
	if (!VGPU_CUDA_IS(hArray, ARRAY_MAGIC))
		return CUDA_ERROR_INVALID_HANDLE;
	*d = hArray->d;
	return CUDA_SUCCESS;
}

CUresult cuArrayGetDescriptor_v2(CUDA_ARRAY_DESCRIPTOR *d, CUarray hArray)
{
	if (!d)
		return CUDA_ERROR_INVALID_VALUE;
	if (!VGPU_CUDA_IS(hArray, ARRAY_MAGIC))
		return CUDA_ERROR_INVALID_HANDLE;
	if (hArray->d.Depth)
		return CUDA_ERROR_INVALID_VALUE; /* as CUDA: a 3D array has no 2D descriptor */
	*d = (CUDA_ARRAY_DESCRIPTOR){ .Width = hArray->d.Width, .Height = hArray->d.Height,
				      .Format = hArray->d.Format,
				      .NumChannels = hArray->d.NumChannels };
	return CUDA_SUCCESS;
}

/* One ARRAY_COPY: @dir between array @a (at @x, @y, @z) and device memory
 * @dptr (rows of @pitch, @slice_rows a slice) or array @b (@x2, @y2,
 * @z2), a box of @width bytes, @height rows, @depth slices. */
static CUresult array_copy(uint64_t dir, CUarray a, const size_t at[3], CUdeviceptr dptr,
			   size_t pitch, size_t slice_rows, CUarray b, const size_t at2[3],
			   const size_t box[3], CUstream stream)
{
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_ARRAY_COPY, .v = { 0, dir } }, r;
	struct vgpu_cuda_array_copy c = {
		.array = a->host, .array2 = b ? b->host : 0, .dptr = dptr, .pitch = pitch,
		.slice_rows = slice_rows, .x = at[0], .y = at[1], .z = at[2],
		.x2 = b ? at2[0] : 0, .y2 = b ? at2[1] : 0, .z2 = b ? at2[2] : 0,
		.width = box[0], .height = box[1], .depth = box[2],
	};
	CUresult rc = vgpu_cuda_stream_host(stream, &m.v[0]);

	if (rc != CUDA_SUCCESS)
		return rc;
	m.data_len = sizeof(c);
	return vgpu_cuda_call_on(a->dev, &m, &c, &r, NULL, 0);
}

/* One side of a 3D copy. */
struct side {
	CUmemorytype type;   /* HOST, DEVICE or ARRAY (UNIFIED resolved) */
	uint8_t *host;
	CUdeviceptr dev;
	CUarray array;
	size_t at[3];        /* x in bytes, y, z */
	size_t pitch, rows;  /* linear memory's row pitch and rows a slice */
};

static CUresult side_of(CUmemorytype type, const void *host, CUdeviceptr dev, CUarray array,
			size_t x, size_t y, size_t z, size_t pitch, size_t rows, size_t width,
			struct side *s)
{
	*s = (struct side){ .type = type, .host = (uint8_t *)host, .dev = dev, .array = array,
			    .at = { x, y, z }, .pitch = pitch ? pitch : width, .rows = rows };
	if (type == CU_MEMORYTYPE_UNIFIED) {
		s->type = vgpu_cuda_is_device(dev) ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST;
		s->host = (uint8_t *)dev;
	}
	if (s->type == CU_MEMORYTYPE_ARRAY)
		return VGPU_CUDA_IS(array, ARRAY_MAGIC) ? CUDA_SUCCESS
							    : CUDA_ERROR_INVALID_HANDLE;
	if (s->type != CU_MEMORYTYPE_HOST && s->type != CU_MEMORYTYPE_DEVICE)
		return CUDA_ERROR_INVALID_VALUE;
	if (s->pitch < width)
		return CUDA_ERROR_INVALID_VALUE;
	return CUDA_SUCCESS;
}

/* A linear side's byte at the box's row @y of slice @z. */
static size_t offset_of(const struct side *s, size_t y, size_t z)
{
	return (s->at[2] + z) * s->rows * s->pitch + (s->at[1] + y) * s->pitch + s->at[0];
}

/* Linear (host or device) to linear: a 2D copy a slice. */
static CUresult linear_copy(const struct side *src, const struct side *dst, const size_t box[3],
			    CUstream stream, bool async)
{
	CUresult rc = CUDA_SUCCESS;

	for (size_t z = 0; z < box[2] && rc == CUDA_SUCCESS; z++) {
		CUDA_MEMCPY2D c = {
			.srcMemoryType = src->type, .dstMemoryType = dst->type,
			.srcPitch = src->pitch, .dstPitch = dst->pitch,
			.WidthInBytes = box[0], .Height = box[1],
		};
		size_t so = offset_of(src, 0, z), d_o = offset_of(dst, 0, z);

		if (src->type == CU_MEMORYTYPE_HOST)
			c.srcHost = src->host + so;
		else
			c.srcDevice = src->dev + so;
		if (dst->type == CU_MEMORYTYPE_HOST)
			c.dstHost = dst->host + d_o;
		else
			c.dstDevice = dst->dev + d_o;
		rc = async ? cuMemcpy2DAsync_v2(&c, stream) : cuMemcpy2D_v2(&c);
	}
	return rc;
}

/* Host memory and an array: through a device buffer of the box's bytes. */
static CUresult staged_copy(const struct side *src, const struct side *dst, const size_t box[3],
			    CUstream stream)
{
	size_t bytes;
	CUdeviceptr buf;
	CUresult rc, rc2;
	bool to_array = dst->type == CU_MEMORYTYPE_ARRAY;
	struct side mid = { .type = CU_MEMORYTYPE_DEVICE, .pitch = box[0], .rows = box[1] };

	if (__builtin_mul_overflow(box[0], box[1], &bytes) ||
	    __builtin_mul_overflow(bytes, box[2], &bytes))
		return CUDA_ERROR_INVALID_VALUE;
	rc = cuMemAlloc_v2(&buf, bytes);
	if (rc != CUDA_SUCCESS)
		return rc;
	mid.dev = buf;
	if (to_array) {
		rc = linear_copy(src, &mid, box, stream, true);
		if (rc == CUDA_SUCCESS)
			rc = array_copy(VGPU_CUDA_TO_ARRAY, dst->array, dst->at, buf, box[0], box[1],
					NULL, NULL, box, stream);
	} else {
		rc = array_copy(VGPU_CUDA_FROM_ARRAY, src->array, src->at, buf, box[0], box[1], NULL,
				NULL, box, stream);
		if (rc == CUDA_SUCCESS)
			rc = linear_copy(&mid, dst, box, stream, true);
	}
	rc2 = cuStreamSynchronize(stream);
	if (rc == CUDA_SUCCESS)
		rc = rc2;
	rc2 = cuMemFree_v2(buf);
	return rc == CUDA_SUCCESS ? rc2 : rc;
}

static CUresult copy_3d(const CUDA_MEMCPY3D *c, CUstream stream, bool async)
{
	struct side src, dst;
	size_t box[3];
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!c)
		return CUDA_ERROR_INVALID_VALUE;
	/* In a capture: a node (capture.c); posted too, its pieces not
	 * recorded again. */
	int v = async ? vgpu_capture_copy(c, stream, &rc) : VGPU_CAPTURE_OFF;

	if (v == VGPU_CAPTURE_DONE)
		return rc;
	if (v == VGPU_CAPTURE_POST) {
		vgpu_capture_nest(true);
		rc = copy_3d(c, stream, async);
		vgpu_capture_nest(false);
		return rc;
	}
	box[0] = c->WidthInBytes;
	box[1] = c->Height ? c->Height : 1;
	box[2] = c->Depth ? c->Depth : 1;
	rc = side_of(c->srcMemoryType, c->srcHost, c->srcDevice, c->srcArray, c->srcXInBytes,
		     c->srcY, c->srcZ, c->srcPitch, c->srcHeight ? c->srcHeight : box[1], box[0],
		     &src);
	if (rc == CUDA_SUCCESS)
		rc = side_of(c->dstMemoryType, c->dstHost, c->dstDevice, c->dstArray,
			     c->dstXInBytes, c->dstY, c->dstZ, c->dstPitch,
			     c->dstHeight ? c->dstHeight : box[1], box[0], &dst);
	if (rc != CUDA_SUCCESS || box[0] == 0)
		return rc;
	if (src.type != CU_MEMORYTYPE_ARRAY && dst.type != CU_MEMORYTYPE_ARRAY)
		return linear_copy(&src, &dst, box, stream, async);
	if (src.type == CU_MEMORYTYPE_ARRAY && dst.type == CU_MEMORYTYPE_ARRAY)
		rc = array_copy(VGPU_CUDA_ARRAY_TO_ARRAY, src.array, src.at, 0, 0, 0, dst.array,
				dst.at, box, stream);
	else if (dst.type == CU_MEMORYTYPE_DEVICE)
		rc = array_copy(VGPU_CUDA_FROM_ARRAY, src.array, src.at,
				dst.dev + offset_of(&dst, 0, 0), dst.pitch, dst.rows, NULL, NULL,
				box, stream);
	else if (src.type == CU_MEMORYTYPE_DEVICE)
		rc = array_copy(VGPU_CUDA_TO_ARRAY, dst.array, dst.at,
				src.dev + offset_of(&src, 0, 0), src.pitch, src.rows, NULL, NULL,
				box, stream);
	else
		return staged_copy(&src, &dst, box, stream);
	/* A synchronous copy is done when it returns, as CUDA's. */
	return rc == CUDA_SUCCESS && !async ? cuStreamSynchronize(stream) : rc;
}

CUresult cuMemcpy3D_v2(const CUDA_MEMCPY3D *pCopy)
{
	return copy_3d(pCopy, NULL, false);
}

CUresult cuMemcpy3DAsync_v2(const CUDA_MEMCPY3D *pCopy, CUstream hStream)
{
	return copy_3d(pCopy, hStream, true);
}

CUDA_MEMCPY3D vgpu_cuda_memcpy3d_of(const CUDA_MEMCPY2D *c)
{
	return (CUDA_MEMCPY3D){
		.srcXInBytes = c->srcXInBytes, .srcY = c->srcY, .srcMemoryType = c->srcMemoryType,
		.srcHost = c->srcHost, .srcDevice = c->srcDevice, .srcArray = c->srcArray,
		.srcPitch = c->srcPitch,
		.dstXInBytes = c->dstXInBytes, .dstY = c->dstY, .dstMemoryType = c->dstMemoryType,
		.dstHost = c->dstHost, .dstDevice = c->dstDevice, .dstArray = c->dstArray,
		.dstPitch = c->dstPitch,
		.WidthInBytes = c->WidthInBytes, .Height = c->Height, .Depth = 1,
	};
}

CUresult vgpu_cuda_copy_2d_array(const CUDA_MEMCPY2D *c, CUstream stream, bool async)
{
	CUDA_MEMCPY3D c3 = vgpu_cuda_memcpy3d_of(c);

	return copy_3d(&c3, stream, async);
}

/* The 1D copies of arrays (cuMemcpyHtoA and the like): a row at a byte
 * offset. */
static CUresult copy_1d(CUmemorytype st, const void *sh, CUdeviceptr sd, CUarray sa, size_t so,
			CUmemorytype dt, void *dh, CUdeviceptr dd, CUarray da, size_t d_o,
			size_t bytes, CUstream stream, bool async)
{
	CUDA_MEMCPY3D c = {
		.srcXInBytes = so, .srcMemoryType = st, .srcHost = sh, .srcDevice = sd,
		.srcArray = sa, .dstXInBytes = d_o, .dstMemoryType = dt, .dstHost = dh,
		.dstDevice = dd, .dstArray = da, .WidthInBytes = bytes, .Height = 1, .Depth = 1,
	};

	return copy_3d(&c, stream, async);
}

CUresult cuMemcpyHtoA_v2(CUarray dstArray, size_t dstOffset, const void *srcHost, size_t ByteCount)
{
	return copy_1d(CU_MEMORYTYPE_HOST, srcHost, 0, NULL, 0, CU_MEMORYTYPE_ARRAY, NULL, 0,
		       dstArray, dstOffset, ByteCount, NULL, false);
}

CUresult cuMemcpyHtoAAsync_v2(CUarray dstArray, size_t dstOffset, const void *srcHost,
			      size_t ByteCount, CUstream hStream)
{
	return copy_1d(CU_MEMORYTYPE_HOST, srcHost, 0, NULL, 0, CU_MEMORYTYPE_ARRAY, NULL, 0,
		       dstArray, dstOffset, ByteCount, hStream, true);
}

CUresult cuMemcpyAtoH_v2(void *dstHost, CUarray srcArray, size_t srcOffset, size_t ByteCount)
{
	return copy_1d(CU_MEMORYTYPE_ARRAY, NULL, 0, srcArray, srcOffset, CU_MEMORYTYPE_HOST,
		       dstHost, 0, NULL, 0, ByteCount, NULL, false);
}

CUresult cuMemcpyAtoHAsync_v2(void *dstHost, CUarray srcArray, size_t srcOffset, size_t ByteCount,
			      CUstream hStream)
{
	return copy_1d(CU_MEMORYTYPE_ARRAY, NULL, 0, srcArray, srcOffset, CU_MEMORYTYPE_HOST,
		       dstHost, 0, NULL, 0, ByteCount, hStream, true);
}

CUresult cuMemcpyDtoA_v2(CUarray dstArray, size_t dstOffset, CUdeviceptr srcDevice,
			 size_t ByteCount)
{
	return copy_1d(CU_MEMORYTYPE_DEVICE, NULL, srcDevice, NULL, 0, CU_MEMORYTYPE_ARRAY, NULL,
		       0, dstArray, dstOffset, ByteCount, NULL, false);
}

CUresult cuMemcpyAtoD_v2(CUdeviceptr dstDevice, CUarray srcArray, size_t srcOffset,
			 size_t ByteCount)
{
	return copy_1d(CU_MEMORYTYPE_ARRAY, NULL, 0, srcArray, srcOffset, CU_MEMORYTYPE_DEVICE,
		       NULL, dstDevice, NULL, 0, ByteCount, NULL, false);
}

CUresult cuMemcpyAtoA_v2(CUarray dstArray, size_t dstOffset, CUarray srcArray, size_t srcOffset,
			 size_t ByteCount)
{
	return copy_1d(CU_MEMORYTYPE_ARRAY, NULL, 0, srcArray, srcOffset, CU_MEMORYTYPE_ARRAY,
		       NULL, 0, dstArray, dstOffset, ByteCount, NULL, false);
}
