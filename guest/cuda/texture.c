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
 * mipmapped arrays. What the descriptors hold otherwise is the worker's
 * and the host's driver's to check. The descriptors an object was made
 * with are kept here (values are per device), for the queries.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"

struct obj {
	struct obj *next;
	uint64_t value;
	CUdevice dev;
	bool surface, has_view;
	CUDA_RESOURCE_DESC res;      /* as the caller gave it */
	CUDA_TEXTURE_DESC tex;
	CUDA_RESOURCE_VIEW_DESC view;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct obj *objs;

/* The object @value of the current device (lock held), or NULL. */
static struct obj **find(uint64_t value, bool surface)
{
	CUdevice dev = vgpu_cuda_current_device();

	for (struct obj **o = &objs; *o; o = &(*o)->next)
		if ((*o)->value == value && (*o)->dev == dev && (*o)->surface == surface)
			return o;
	return NULL;
}

/* Keep what @value was made with (a failure to keep it only fails the
 * queries later). */
static void keep(uint64_t value, CUdevice dev, bool surface, const CUDA_RESOURCE_DESC *res,
		 const CUDA_TEXTURE_DESC *tex, const CUDA_RESOURCE_VIEW_DESC *view)
{
	struct obj *o = calloc(1, sizeof(*o));

	if (!o)
		return;
	*o = (struct obj){ .value = value, .dev = dev, .surface = surface, .has_view = view != NULL,
			   .res = *res };
	if (tex)
		o->tex = *tex;
	if (view)
		o->view = *view;
	pthread_mutex_lock(&lock);
	o->next = objs;
	objs = o;
	pthread_mutex_unlock(&lock);
}

static CUresult destroy(uint64_t value, bool surface)
{
	CUresult rc = vgpu_cuda_call_args(VGPU_CUDA_TEX,
					  surface ? VGPU_CUDA_SURF_DESTROY : VGPU_CUDA_TEX_DESTROY,
					  value, 0, NULL);
	struct obj **o, *gone = NULL;

	if (rc != CUDA_SUCCESS)
		return rc;
	pthread_mutex_lock(&lock);
	o = find(value, surface);
	if (o) {
		gone = *o;
		*o = gone->next;
	}
	pthread_mutex_unlock(&lock);
	free(gone);
	return rc;
}

/* A copy of what the object @value was made with: its resource (@res),
 * texture (@tex) or view (@view) descriptor. */
static CUresult query(uint64_t value, bool surface, CUDA_RESOURCE_DESC *res,
		      CUDA_TEXTURE_DESC *tex, CUDA_RESOURCE_VIEW_DESC *view)
{
	struct obj **o;
	CUresult rc = CUDA_ERROR_INVALID_VALUE;

	pthread_mutex_lock(&lock);
	o = find(value, surface);
	if (o && (!view || (*o)->has_view)) {
		if (res)
			*res = (*o)->res;
		if (tex)
			*tex = (*o)->tex;
		if (view)
			*view = (*o)->view;
		rc = CUDA_SUCCESS;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

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
	if (rc == CUDA_SUCCESS) {
		keep(obj, dev, false, pResDesc, pTexDesc, pResViewDesc);
		*pTexObject = obj;
	}
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
	if (rc == CUDA_SUCCESS) {
		keep(obj, dev, true, pResDesc, NULL, NULL);
		*pSurfObject = obj;
	}
	return rc;
}

CUresult cuTexObjectDestroy(CUtexObject texObject)
{
	return destroy(texObject, false);
}

CUresult cuSurfObjectDestroy(CUsurfObject surfObject)
{
	return destroy(surfObject, true);
}

CUresult cuTexObjectGetResourceDesc(CUDA_RESOURCE_DESC *pResDesc, CUtexObject texObject)
{
	return pResDesc ? query(texObject, false, pResDesc, NULL, NULL) : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuTexObjectGetTextureDesc(CUDA_TEXTURE_DESC *pTexDesc, CUtexObject texObject)
{
	return pTexDesc ? query(texObject, false, NULL, pTexDesc, NULL) : CUDA_ERROR_INVALID_VALUE;
}

/* As CUDA: CUDA_ERROR_INVALID_VALUE for an object made without a view. */
CUresult cuTexObjectGetResourceViewDesc(CUDA_RESOURCE_VIEW_DESC *pResViewDesc,
					CUtexObject texObject)
{
	return pResViewDesc ? query(texObject, false, NULL, NULL, pResViewDesc)
			    : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuSurfObjectGetResourceDesc(CUDA_RESOURCE_DESC *pResDesc, CUsurfObject surfObject)
{
	return pResDesc ? query(surfObject, true, pResDesc, NULL, NULL) : CUDA_ERROR_INVALID_VALUE;
}
