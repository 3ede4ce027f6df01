/* SPDX-License-Identifier: MIT */
/*
 * texture.c - texture and surface objects (cuTexObjectCreate,
 * cuSurfObjectCreate and their destroys). The host's worker makes them
 * with its driver and answers the driver's own value, which is what a
 * kernel reads (its parameter); the worker keeps the ones each process
 * made, so only those can be destroyed and all go with the process.
 *
 * Served: textures of a CUDA array of ours, of linear or pitched device
 * memory; surfaces of a CUDA array. Refused with CUDA_ERROR_NOT_SUPPORTED:
 * mipmapped arrays. What the descriptors hold otherwise is the host's
 * driver's to check.
 */
#include <string.h>

#include "shim.h"

/* @res as the wire carries it (an array as its host handle) into @out;
 * the device its memory is on. */
static CUresult resource(const CUDA_RESOURCE_DESC *res, uint8_t out[VGPU_CUDA_RES_DESC_BYTES],
			 CUdevice *dev)
{
	CUDA_RESOURCE_DESC r;
	uint64_t host;

	if (!res)
		return CUDA_ERROR_INVALID_VALUE;
	r = *res;
	*dev = vgpu_cuda_current_device();
	switch (r.resType) {
	case CU_RESOURCE_TYPE_ARRAY:
		if (!vgpu_cuda_array_host(r.res.array.hArray, &host, dev))
			return CUDA_ERROR_INVALID_HANDLE;
		memcpy(&r.res.array.hArray, &host, sizeof(host));
		break;
	case CU_RESOURCE_TYPE_LINEAR:
	case CU_RESOURCE_TYPE_PITCH2D:
		break;
	case CU_RESOURCE_TYPE_MIPMAPPED_ARRAY:
		vgpu_cuda_log(true, "a texture of a mipmapped array is not served: "
			      "CUDA_ERROR_NOT_SUPPORTED");
		return CUDA_ERROR_NOT_SUPPORTED;
	default:
		return CUDA_ERROR_INVALID_VALUE;
	}
	memcpy(out, &r, VGPU_CUDA_RES_DESC_BYTES);
	return CUDA_SUCCESS;
}

static CUresult make(uint64_t what, CUdevice dev, const uint8_t *data, uint32_t len, bool view,
		     uint64_t *ret)
{
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_TEX, .v = { what, view } }, r;
	CUresult rc;

	m.data_len = len;
	rc = vgpu_cuda_call_on(dev, &m, data, &r, NULL, 0);
	if (rc == CUDA_SUCCESS && r.v[0] == 0)
		rc = CUDA_ERROR_INVALID_HANDLE;
	if (rc == CUDA_SUCCESS)
		*ret = r.v[0];
	return rc;
}

CUresult cuTexObjectCreate(CUtexObject *pTexObject, const CUDA_RESOURCE_DESC *pResDesc,
			   const CUDA_TEXTURE_DESC *pTexDesc,
			   const CUDA_RESOURCE_VIEW_DESC *pResViewDesc)
{
	uint8_t data[VGPU_CUDA_RES_DESC_BYTES + VGPU_CUDA_TEX_DESC_BYTES +
		     VGPU_CUDA_VIEW_DESC_BYTES];
	CUresult rc = vgpu_cuda_ready();
	CUdevice dev;
	uint64_t obj;

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!pTexObject || !pTexDesc)
		return CUDA_ERROR_INVALID_VALUE;
	rc = resource(pResDesc, data, &dev);
	if (rc != CUDA_SUCCESS)
		return rc;
	memcpy(data + VGPU_CUDA_RES_DESC_BYTES, pTexDesc, VGPU_CUDA_TEX_DESC_BYTES);
	if (pResViewDesc)
		memcpy(data + VGPU_CUDA_RES_DESC_BYTES + VGPU_CUDA_TEX_DESC_BYTES, pResViewDesc,
		       VGPU_CUDA_VIEW_DESC_BYTES);
	rc = make(VGPU_CUDA_TEX_CREATE, dev, data,
		  VGPU_CUDA_RES_DESC_BYTES + VGPU_CUDA_TEX_DESC_BYTES +
			  (pResViewDesc ? VGPU_CUDA_VIEW_DESC_BYTES : 0),
		  pResViewDesc != NULL, &obj);
	if (rc == CUDA_SUCCESS)
		*pTexObject = obj;
	return rc;
}

CUresult cuSurfObjectCreate(CUsurfObject *pSurfObject, const CUDA_RESOURCE_DESC *pResDesc)
{
	uint8_t data[VGPU_CUDA_RES_DESC_BYTES];
	CUresult rc = vgpu_cuda_ready();
	CUdevice dev;
	uint64_t obj;

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!pSurfObject)
		return CUDA_ERROR_INVALID_VALUE;
	rc = resource(pResDesc, data, &dev);
	if (rc == CUDA_SUCCESS)
		rc = make(VGPU_CUDA_SURF_CREATE, dev, data, sizeof(data), false, &obj);
	if (rc == CUDA_SUCCESS)
		*pSurfObject = obj;
	return rc;
}

CUresult cuTexObjectDestroy(CUtexObject texObject)
{
	return vgpu_cuda_call_args(VGPU_CUDA_TEX, VGPU_CUDA_TEX_DESTROY, texObject, 0, NULL);
}

CUresult cuSurfObjectDestroy(CUsurfObject surfObject)
{
	return vgpu_cuda_call_args(VGPU_CUDA_TEX, VGPU_CUDA_SURF_DESTROY, surfObject, 0, NULL);
}
