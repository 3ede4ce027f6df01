/* SPDX-License-Identifier: MIT */
/*
 * array.c - a process's CUDA arrays and texture and surface objects on the
 * host's driver (ARRAY, ARRAY_COPY and TEX of cuda_call.h).
 *
 * Arrays are handles here (index + 1), never the driver's pointers; what
 * each holds is counted against the VM's quota from its creation to its
 * destruction, as the driver may lay it out (array_bytes: its rows padded
 * to 512 bytes, its slices to 8 rows, at least 64 KiB: an array is stored
 * in blocks, not packed, and its elements' bytes alone would let a thin
 * array hold many times its count). A copy's box must lie within its arrays, and its
 * device memory within one of the process's allocations (the caller's
 * check, span_fn). Texture and surface objects are the driver's values,
 * which kernels read: the guest gets them, and only those it made here
 * can be destroyed; a texture's memory is one of its arrays or lies within
 * one of its allocations.
 *
 * Served: the formats of vgpu_cuda_format_bytes(), 1, 2 or 4 channels,
 * the layered, surface, cubemap and gather flags. Refused: mipmapped
 * arrays (NOT_SUPPORTED), anything else (INVALID_VALUE).
 */
#include <stdlib.h>
#include <string.h>

#include "worker.h"

#define ARRAY_FLAGS 0xfu /* LAYERED, SURFACE_LDST, CUBEMAP, TEXTURE_GATHER */
#define ARRAY_MAX_DIM ((uint64_t)1 << 20)
#define ARRAY_ROW_ALIGN 512u
#define ARRAY_SLICE_ROWS 8u
#define ARRAY_MIN_BYTES ((uint64_t)64 << 10)
/* The texture descriptor's flags CUDA has (CU_TRSF_*). */
#define TEX_FLAGS 0x73u

struct warray {
	CUarray arr;           /* NULL: a free slot */
	uint32_t dev;
	uint64_t w, h, d;      /* elements (h, d at least 1) */
	uint64_t elem;         /* bytes an element */
	uint64_t bytes;        /* counted against the quota */
};

struct wobj {
	uint64_t obj;          /* 0: a free slot */
	uint32_t dev;
	bool surface;
};

/* A free slot of @arr (its @n used, *@cap allocated, at most @max): the
 * first free one, or one more. */
static void *slot(void **arr, uint32_t *n, uint32_t *cap, size_t size, uint32_t max,
		  bool (*is_free)(const void *))
{
	for (uint32_t i = 0; i < *n; i++)
		if (is_free((uint8_t *)*arr + (size_t)i * size))
			return (uint8_t *)*arr + (size_t)i * size;
	if (!worker_room_for(arr, *n, cap, size, max))
		return NULL;
	return (uint8_t *)*arr + (size_t)(*n)++ * size;
}

static bool array_free(const void *p)
{
	return !((const struct warray *)p)->arr;
}

static bool obj_free(const void *p)
{
	return !((const struct wobj *)p)->obj;
}

static struct warray *array_of(struct arrays *ar, uint64_t handle)
{
	if (handle == 0 || handle > ar->n || !ar->a[handle - 1].arr)
		return NULL;
	return &ar->a[handle - 1];
}

static CUresult create(struct worker *w, struct arrays *ar, const struct vgpu_cuda_msg *m,
		       uint32_t dev, uint64_t res[2])
{
	uint32_t format = (uint32_t)(m->v[4] & 0xffff), channels = (uint32_t)(m->v[4] >> 16 & 0xffff);
	uint32_t flags = (uint32_t)(m->v[4] >> 32);
	uint64_t h = m->v[2] ? m->v[2] : 1, d = m->v[3] ? m->v[3] : 1, elem, bytes;
	CUDA_ARRAY3D_DESCRIPTOR desc = {
		.Width = m->v[1], .Height = m->v[2], .Depth = m->v[3], .Format = format,
		.NumChannels = channels, .Flags = flags,
	};
	struct warray *a;
	CUresult rc;

	elem = (uint64_t)vgpu_cuda_format_bytes(format) * channels;
	/* Rows padded to ARRAY_ROW_ALIGN, each slice to ARRAY_SLICE_ROWS (all
	 * below 2^20 * 16 + 511, 2^20 + 7 and 2^20: no overflow but the
	 * products'). */
	uint64_t row = (m->v[1] * elem + ARRAY_ROW_ALIGN - 1) / ARRAY_ROW_ALIGN * ARRAY_ROW_ALIGN;
	uint64_t rows = (h + ARRAY_SLICE_ROWS - 1) / ARRAY_SLICE_ROWS * ARRAY_SLICE_ROWS;

	if (!elem || (channels != 1 && channels != 2 && channels != 4) || (flags & ~ARRAY_FLAGS) ||
	    m->v[1] == 0 || m->v[1] > ARRAY_MAX_DIM || m->v[2] > ARRAY_MAX_DIM ||
	    m->v[3] > ARRAY_MAX_DIM || __builtin_mul_overflow(row, rows, &bytes) ||
	    __builtin_mul_overflow(bytes, d, &bytes))
		return CUDA_ERROR_INVALID_VALUE;
	if (bytes < ARRAY_MIN_BYTES)
		bytes = ARRAY_MIN_BYTES;
	a = slot((void **)&ar->a, &ar->n, &ar->cap, sizeof(*a), WORKER_MAX_ARRAYS, array_free);
	if (!a || !worker_take(w, &w->arrays, WORKER_VM_MAX_ARRAYS, 1))
		return CUDA_ERROR_OUT_OF_MEMORY;
	if (!worker_take_memory(w, bytes)) {
		worker_give(w, &w->arrays, 1);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	rc = w->drv.array_create(&a->arr, &desc);
	if (rc != CUDA_SUCCESS) {
		a->arr = NULL;
		worker_give(w, &w->held, bytes);
		worker_give(w, &w->arrays, 1);
		return rc;
	}
	*a = (struct warray){ .arr = a->arr, .dev = dev, .w = m->v[1], .h = h, .d = d,
			      .elem = elem, .bytes = bytes };
	res[0] = (uint64_t)(a - ar->a) + 1;
	res[1] = bytes;
	return CUDA_SUCCESS;
}

static void destroy(struct worker *w, struct warray *a)
{
	if (worker_on_device(w, a->dev) == CUDA_SUCCESS)
		w->drv.array_destroy(a->arr);
	worker_give(w, &w->held, a->bytes);
	worker_give(w, &w->arrays, 1);
	a->arr = NULL;
}

CUresult array_call(struct worker *w, struct arrays *ar, const struct vgpu_cuda_msg *m,
		    uint32_t dev, uint64_t res[2])
{
	struct warray *a;

	switch (m->v[0]) {
	case 0:
		return create(w, ar, m, dev, res);
	case 1:
		a = array_of(ar, m->v[1]);
		if (!a || m->v[2] || m->v[3] || m->v[4])
			return a ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_INVALID_HANDLE;
		destroy(w, a);
		return CUDA_SUCCESS;
	default:
		return CUDA_ERROR_INVALID_VALUE;
	}
}

/* Whether the box of @c at (@x, @y, @z) lies within @a. */
static bool in_array(const struct warray *a, const struct vgpu_cuda_array_copy *c, uint64_t x,
		     uint64_t y, uint64_t z)
{
	return x <= a->w * a->elem && c->width <= a->w * a->elem - x && y <= a->h &&
	       c->height <= a->h - y && z <= a->d && c->depth <= a->d - z;
}

CUresult array_copy_span(const struct vgpu_cuda_array_copy *c, uint64_t *len)
{
	uint64_t rows, n;

	/* ((depth - 1) * slice_rows + height - 1) * pitch + width */
	if (c->width == 0 || c->height == 0 || c->depth == 0 || c->pitch < c->width ||
	    c->slice_rows < c->height || __builtin_mul_overflow(c->depth - 1, c->slice_rows, &rows) ||
	    __builtin_add_overflow(rows, c->height - 1, &rows) ||
	    __builtin_mul_overflow(rows, c->pitch, &n) || __builtin_add_overflow(n, c->width, &n))
		return CUDA_ERROR_INVALID_VALUE;
	*len = n;
	return CUDA_SUCCESS;
}

CUresult array_copy(struct worker *w, struct arrays *ar, uint64_t dir,
		    const struct vgpu_cuda_array_copy *c, CUstream s, uint32_t mem_dev)
{
	CUresult rc;
	struct warray *a = array_of(ar, c->array), *b = NULL;
	CUDA_MEMCPY3D m = { .WidthInBytes = c->width, .Height = c->height, .Depth = c->depth };

	if (!a || (dir == VGPU_CUDA_ARRAY_TO_ARRAY && !(b = array_of(ar, c->array2))))
		return CUDA_ERROR_INVALID_HANDLE;
	if (dir > VGPU_CUDA_ARRAY_TO_ARRAY || c->width == 0 || c->height == 0 || c->depth == 0 ||
	    c->width % a->elem || c->x % a->elem || !in_array(a, c, c->x, c->y, c->z) ||
	    (b && (b->elem != a->elem || b->dev != a->dev || c->x2 % a->elem ||
		   !in_array(b, c, c->x2, c->y2, c->z2))) ||
	    (!b && (c->array2 || c->x2 || c->y2 || c->z2 || mem_dev != a->dev)))
		return CUDA_ERROR_INVALID_VALUE;
	rc = worker_on_device(w, a->dev);
	if (rc != CUDA_SUCCESS)
		return rc;
	if (dir == VGPU_CUDA_FROM_ARRAY || dir == VGPU_CUDA_ARRAY_TO_ARRAY) {
		m.srcMemoryType = CU_MEMORYTYPE_ARRAY;
		m.srcArray = a->arr;
		m.srcXInBytes = c->x;
		m.srcY = c->y;
		m.srcZ = c->z;
	} else {
		m.dstMemoryType = CU_MEMORYTYPE_ARRAY;
		m.dstArray = a->arr;
		m.dstXInBytes = c->x;
		m.dstY = c->y;
		m.dstZ = c->z;
	}
	if (dir == VGPU_CUDA_ARRAY_TO_ARRAY) {
		m.dstMemoryType = CU_MEMORYTYPE_ARRAY;
		m.dstArray = b->arr;
		m.dstXInBytes = c->x2;
		m.dstY = c->y2;
		m.dstZ = c->z2;
	} else if (dir == VGPU_CUDA_FROM_ARRAY) {
		m.dstMemoryType = CU_MEMORYTYPE_DEVICE;
		m.dstDevice = c->dptr;
		m.dstPitch = c->pitch;
		m.dstHeight = c->slice_rows;
	} else {
		m.srcMemoryType = CU_MEMORYTYPE_DEVICE;
		m.srcDevice = c->dptr;
		m.srcPitch = c->pitch;
		m.srcHeight = c->slice_rows;
	}
	return w->drv.copy_3d_async(&m, s);
}

/* A texture's or surface's resource from the wire (an array as its
 * handle here) into @r, checked. */
static CUresult resource(struct arrays *ar, const uint8_t *data, CUDA_RESOURCE_DESC *r,
			 uint32_t dev, worker_span_fn in_allocs, void *ctx, struct warray **arr)
{
	struct warray *a;
	uint64_t handle, elem, n;
	uint32_t on = dev;

	memcpy(r, data, sizeof(*r));
	if (r->flags)
		return CUDA_ERROR_INVALID_VALUE;
	switch (r->resType) {
	case CU_RESOURCE_TYPE_ARRAY:
		memcpy(&handle, &r->res.array.hArray, sizeof(handle));
		a = array_of(ar, handle);
		if (!a)
			return CUDA_ERROR_INVALID_HANDLE;
		if (a->dev != dev)
			return CUDA_ERROR_INVALID_VALUE;
		r->res.array.hArray = a->arr;
		*arr = a;
		return CUDA_SUCCESS;
	case CU_RESOURCE_TYPE_LINEAR:
		elem = (uint64_t)vgpu_cuda_format_bytes(r->res.linear.format) *
		       r->res.linear.numChannels;
		if (!elem || (r->res.linear.numChannels & (r->res.linear.numChannels - 1)) ||
		    r->res.linear.numChannels > 4 || r->res.linear.sizeInBytes == 0 ||
		    !in_allocs(ctx, r->res.linear.devPtr, r->res.linear.sizeInBytes, &on) ||
		    on != dev)
			return CUDA_ERROR_INVALID_VALUE;
		return CUDA_SUCCESS;
	case CU_RESOURCE_TYPE_PITCH2D:
		elem = (uint64_t)vgpu_cuda_format_bytes(r->res.pitch2D.format) *
		       r->res.pitch2D.numChannels;
		if (!elem || (r->res.pitch2D.numChannels & (r->res.pitch2D.numChannels - 1)) ||
		    r->res.pitch2D.numChannels > 4 || r->res.pitch2D.width == 0 ||
		    r->res.pitch2D.height == 0 ||
		    __builtin_mul_overflow(r->res.pitch2D.width, elem, &n) ||
		    r->res.pitch2D.pitchInBytes < n ||
		    __builtin_mul_overflow(r->res.pitch2D.height - 1, r->res.pitch2D.pitchInBytes,
					   &handle) ||
		    __builtin_add_overflow(handle, n, &n) ||
		    !in_allocs(ctx, r->res.pitch2D.devPtr, n, &on) || on != dev)
			return CUDA_ERROR_INVALID_VALUE;
		return CUDA_SUCCESS;
	case CU_RESOURCE_TYPE_MIPMAPPED_ARRAY:
		return CUDA_ERROR_NOT_SUPPORTED;
	default:
		return CUDA_ERROR_INVALID_VALUE;
	}
}

/* Whether texture descriptor @t and view @v (NULL: none) of array @a
 * (NULL: a resource of device memory) are within what CUDA has: the view
 * the whole array (its formats here have no block-compressed views), no
 * mipmap levels, layers within it, reserved fields zero. */
static bool descs_ok(const CUDA_TEXTURE_DESC *t, const CUDA_RESOURCE_VIEW_DESC *v,
		     const struct warray *a)
{
	static const int zero[16];

	if ((t->flags & ~TEX_FLAGS) || memcmp(t->reserved, zero, sizeof(t->reserved)))
		return false;
	if (!v)
		return true;
	return a && v->width == a->w && v->height <= a->h && (a->h == 1 || v->height == a->h) &&
	       v->depth <= a->d && v->firstMipmapLevel == 0 &&
	       v->lastMipmapLevel == 0 && v->firstLayer <= v->lastLayer && v->lastLayer < a->d &&
	       !memcmp(v->reserved, zero, sizeof(v->reserved));
}

CUresult tex_call(struct worker *w, struct arrays *ar, const struct vgpu_cuda_msg *m,
		  const uint8_t *data, worker_span_fn in_allocs, void *ctx, uint32_t dev,
		  uint64_t *res)
{
	bool surface = m->v[0] == VGPU_CUDA_SURF_CREATE || m->v[0] == VGPU_CUDA_SURF_DESTROY;
	struct warray *a = NULL;
	CUDA_RESOURCE_DESC r;
	CUDA_TEXTURE_DESC t;
	CUDA_RESOURCE_VIEW_DESC v;
	CUtexObject made = 0; /* CUsurfObject is the same 64 bits */
	struct wobj *o;
	CUresult rc;

	if (m->v[0] == VGPU_CUDA_TEX_DESTROY || m->v[0] == VGPU_CUDA_SURF_DESTROY) {
		/* Values are the driver's per context: this GPU's, in its
		 * context (the caller's). */
		for (uint32_t i = 0; i < ar->n_objs; i++) {
			o = &ar->objs[i];
			if (!o->obj || o->obj != m->v[1] || o->surface != surface || o->dev != dev)
				continue;
			rc = surface ? w->drv.surf_destroy(o->obj) : w->drv.tex_destroy(o->obj);
			if (rc == CUDA_SUCCESS) {
				o->obj = 0;
				worker_give(w, &w->texobjs, 1);
			}
			return rc;
		}
		return CUDA_ERROR_INVALID_VALUE; /* as CUDA, for a value it never gave */
	}
	if (m->v[0] != VGPU_CUDA_TEX_CREATE && m->v[0] != VGPU_CUDA_SURF_CREATE)
		return CUDA_ERROR_INVALID_VALUE;
	if (m->v[1] > 1 || (surface && m->v[1]))
		return CUDA_ERROR_INVALID_VALUE;
	rc = resource(ar, data, &r, dev, in_allocs, ctx, &a);
	if (rc != CUDA_SUCCESS)
		return rc;
	if (surface && r.resType != CU_RESOURCE_TYPE_ARRAY)
		return CUDA_ERROR_INVALID_VALUE;
	if (!surface) {
		memcpy(&t, data + VGPU_CUDA_RES_DESC_BYTES, sizeof(t));
		if (m->v[1])
			memcpy(&v, data + VGPU_CUDA_RES_DESC_BYTES + VGPU_CUDA_TEX_DESC_BYTES,
			       sizeof(v));
		if (!descs_ok(&t, m->v[1] ? &v : NULL, a))
			return CUDA_ERROR_INVALID_VALUE;
	}
	o = slot((void **)&ar->objs, &ar->n_objs, &ar->cap_objs, sizeof(*o), WORKER_MAX_TEXOBJS,
		 obj_free);
	if (!o || !worker_take(w, &w->texobjs, WORKER_VM_MAX_TEXOBJS, 1))
		return CUDA_ERROR_OUT_OF_MEMORY;
	if (surface)
		rc = w->drv.surf_create(&made, &r);
	else
		rc = w->drv.tex_create(&made, &r, &t, m->v[1] ? &v : NULL);
	if (rc != CUDA_SUCCESS || !made) {
		worker_give(w, &w->texobjs, 1);
		return rc != CUDA_SUCCESS ? rc : CUDA_ERROR_UNKNOWN;
	}
	*o = (struct wobj){ .obj = made, .dev = dev, .surface = surface };
	*res = made;
	return CUDA_SUCCESS;
}

void array_release(struct worker *w, struct arrays *ar)
{
	for (uint32_t i = 0; i < ar->n_objs; i++) {
		if (!ar->objs[i].obj)
			continue;
		if (worker_on_device(w, ar->objs[i].dev) == CUDA_SUCCESS)
			(ar->objs[i].surface ? w->drv.surf_destroy : w->drv.tex_destroy)(ar->objs[i].obj);
		worker_give(w, &w->texobjs, 1);
	}
	for (uint32_t i = 0; i < ar->n; i++)
		if (ar->a[i].arr)
			destroy(w, &ar->a[i]);
	free(ar->objs);
	free(ar->a);
	memset(ar, 0, sizeof(*ar));
}
