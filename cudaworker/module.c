/* SPDX-License-Identifier: MIT */
/*
 * module.c - a process's modules and kernels on the host's driver
 * (LIB_LOAD, LIB_UNLOAD, GET_KERNEL, LAUNCH of cuda_call.h).
 *
 * An image is the guest's: its length from its own headers must be the
 * bytes received (cuda_image.h checks every entry, section and segment
 * lies within them), and it is handed to the driver at the end of a
 * mapping whose next page is inaccessible, so that a parser reading past
 * what was checked faults this worker (its VM's own processes) rather
 * than reading anything else. Handles given to the guest are indexes
 * here, never the driver's pointers; a launch's parameters must be
 * exactly the bytes the driver's layout of the kernel says.
 *
 * A kernel runs in the VM's own context: whatever it reads or writes is
 * the VM's device memory, or faults that context.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "worker.h"

struct wlib {
	CUlibrary lib;         /* NULL: a free slot */
	uint8_t *map;          /* the image's mapping, guard page after it */
	size_t map_len;
	uint64_t bytes;        /* the image's */
};

struct wkernel {
	CUkernel kernel;       /* NULL: a free slot */
	uint32_t lib;          /* index in libs */
	uint32_t n_params;
	uint32_t param_bytes;
	uint32_t *layout;      /* n_params pairs: offset, size */
};

bool worker_room_for(void *arr, uint32_t n, uint32_t *cap, size_t size, uint32_t max)
{
	void **a = arr;
	uint32_t c = *cap ? *cap * 2 : 64;

	if (n < *cap)
		return true;
	if (*cap >= max)
		return false;
	if (c > max)
		c = max;
	uint8_t *p = realloc(*a, (size_t)c * size);

	if (!p)
		return false;
	memset(p + (size_t)*cap * size, 0, (size_t)(c - *cap) * size);
	*a = p;
	*cap = c;
	return true;
}

/* The image's bytes, ending against an inaccessible page. */
static uint8_t *guarded_copy(const uint8_t *image, size_t len, size_t *map_len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t body = (len + page - 1) / page * page;
	uint8_t *map = mmap(NULL, body + page, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (map == MAP_FAILED)
		return NULL;
	if (mprotect(map + body, page, PROT_NONE) != 0) {
		munmap(map, body + page);
		return NULL;
	}
	memcpy(map + body - len, image, len);
	*map_len = body + page;
	return map;
}

CUresult module_load(struct worker *w, struct modules *mo, const uint8_t *image, uint32_t len,
		     uint64_t *handle)
{
	struct wlib *l = NULL;
	uint32_t i;
	CUresult rc;

	if (vgpu_cuda_image_len(image, len) != len)
		return CUDA_ERROR_INVALID_IMAGE;
	if (mo->image_bytes + len > WORKER_MAX_IMAGE_BYTES)
		return CUDA_ERROR_OUT_OF_MEMORY;
	for (i = mo->free_lib; i < mo->n_libs && mo->libs[i].lib; i++)
		;
	if (i == mo->n_libs &&
	    !worker_room_for(&mo->libs, mo->n_libs, &mo->cap_libs, sizeof(*mo->libs), WORKER_MAX_LIBS))
		return CUDA_ERROR_OUT_OF_MEMORY;
	/* The VM's budget last: every refusal above leaves it as it was. */
	if (!worker_take(w, &w->image_bytes, WORKER_VM_MAX_IMAGE_BYTES, len))
		return CUDA_ERROR_OUT_OF_MEMORY;
	if (i == mo->n_libs)
		mo->n_libs++;
	l = &mo->libs[i];
	l->map = guarded_copy(image, len, &l->map_len);
	if (!l->map) {
		worker_give(w, &w->image_bytes, len);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	rc = w->drv.library_load(&l->lib, l->map + l->map_len - (size_t)sysconf(_SC_PAGESIZE) - len,
				 NULL, NULL, 0, NULL, NULL, 0);
	if (rc != CUDA_SUCCESS || !l->lib) {
		munmap(l->map, l->map_len);
		*l = (struct wlib){ 0 };
		worker_give(w, &w->image_bytes, len);
		return rc != CUDA_SUCCESS ? rc : CUDA_ERROR_INVALID_IMAGE;
	}
	l->bytes = len;
	mo->image_bytes += len;
	mo->free_lib = i + 1;
	*handle = (uint64_t)i + 1;
	return CUDA_SUCCESS;
}

static struct wlib *lib_of(struct modules *mo, uint64_t handle)
{
	return handle >= 1 && handle <= mo->n_libs && mo->libs[handle - 1].lib
		       ? &mo->libs[handle - 1] : NULL;
}

static void lib_free(struct worker *w, struct modules *mo, struct wlib *l)
{
	uint32_t index = (uint32_t)(l - mo->libs);

	for (uint32_t i = 0; i < mo->n_kernels; i++) {
		struct wkernel *k = &mo->kernels[i];

		if (k->kernel && k->lib == index) {
			free(k->layout);
			*k = (struct wkernel){ 0 };
			if (i < mo->free_kernel)
				mo->free_kernel = i;
		}
	}
	w->drv.library_unload(l->lib);
	munmap(l->map, l->map_len);
	mo->image_bytes -= l->bytes;
	worker_give(w, &w->image_bytes, l->bytes);
	*l = (struct wlib){ 0 };
	if (index < mo->free_lib)
		mo->free_lib = index;
}

CUresult module_unload(struct worker *w, struct modules *mo, uint64_t handle)
{
	struct wlib *l = lib_of(mo, handle);

	if (!l)
		return CUDA_ERROR_INVALID_HANDLE;
	lib_free(w, mo, l);
	return CUDA_SUCCESS;
}

/* The layout of @k's parameters, as the driver has it. */
static CUresult layout(struct worker *w, struct wkernel *k)
{
	uint32_t pairs[2 * VGPU_CUDA_MAX_PARAMS];
	uint64_t end = 0;
	uint32_t n;

	for (n = 0; n <= VGPU_CUDA_MAX_PARAMS; n++) {
		size_t off, size;

		if (w->drv.kernel_param_info(k->kernel, n, &off, &size) != CUDA_SUCCESS)
			break;
		if (n == VGPU_CUDA_MAX_PARAMS || size == 0 || off > VGPU_CUDA_MAX_PARAM_BYTES ||
		    size > VGPU_CUDA_MAX_PARAM_BYTES - off)
			return CUDA_ERROR_NOT_SUPPORTED;
		pairs[2 * n] = (uint32_t)off;
		pairs[2 * n + 1] = (uint32_t)size;
		if (off + size > end)
			end = off + size;
	}
	k->layout = malloc(n ? 8 * (size_t)n : 1);
	if (!k->layout)
		return CUDA_ERROR_OUT_OF_MEMORY;
	memcpy(k->layout, pairs, 8 * (size_t)n);
	k->n_params = n;
	k->param_bytes = (uint32_t)end;
	return CUDA_SUCCESS;
}

CUresult module_kernel(struct worker *w, struct modules *mo, uint64_t lib, const char *name,
		       uint32_t len, uint64_t res[3], const uint32_t **ret_layout)
{
	struct wlib *l = lib_of(mo, lib);
	struct wkernel *k;
	uint32_t i;
	CUresult rc;

	if (!l)
		return CUDA_ERROR_INVALID_HANDLE;
	if (len < 2 || name[len - 1] != '\0' || strlen(name) != len - 1)
		return CUDA_ERROR_INVALID_VALUE;
	for (i = mo->free_kernel; i < mo->n_kernels && mo->kernels[i].kernel; i++)
		;
	if (i == mo->n_kernels) {
		if (!worker_room_for(&mo->kernels, mo->n_kernels, &mo->cap_kernels, sizeof(*mo->kernels),
			      WORKER_MAX_KERNELS))
			return CUDA_ERROR_OUT_OF_MEMORY;
		mo->n_kernels++;
	}
	k = &mo->kernels[i];
	rc = w->drv.library_get_kernel(&k->kernel, l->lib, name);
	if (rc == CUDA_SUCCESS && !k->kernel)
		rc = CUDA_ERROR_NOT_FOUND;
	if (rc == CUDA_SUCCESS)
		rc = layout(w, k);
	if (rc != CUDA_SUCCESS) {
		*k = (struct wkernel){ 0 };
		return rc;
	}
	k->lib = (uint32_t)(l - mo->libs);
	mo->free_kernel = i + 1;
	res[0] = (uint64_t)i + 1;
	res[1] = k->n_params;
	res[2] = k->param_bytes;
	*ret_layout = k->layout;
	return CUDA_SUCCESS;
}

/* Launch attributes from the wire (cuda_call.h: u32 id, u32 values[3]),
 * @n of them at @in, into @out: only those whose values are plain numbers
 * the driver checks itself (no pointer, no handle of the driver's);
 * CUDA_ERROR_NOT_SUPPORTED for any other. */
static CUresult attrs_in(const uint8_t *in, uint32_t n, CUlaunchAttribute *out)
{
	for (uint32_t i = 0; i < n; i++) {
		uint32_t w[4];
		CUlaunchAttributeValue *v = &out[i].value;

		memcpy(w, in + VGPU_CUDA_LAUNCH_ATTR_BYTES * i, sizeof(w));
		memset(&out[i], 0, sizeof(out[i]));
		out[i].id = (CUlaunchAttributeID)w[0];
		switch (w[0]) {
		case CU_LAUNCH_ATTRIBUTE_COOPERATIVE:
			v->cooperative = (int)w[1];
			break;
		case CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION:
			v->clusterDim.x = w[1];
			v->clusterDim.y = w[2];
			v->clusterDim.z = w[3];
			break;
		case CU_LAUNCH_ATTRIBUTE_PREFERRED_CLUSTER_DIMENSION:
			v->preferredClusterDim.x = w[1];
			v->preferredClusterDim.y = w[2];
			v->preferredClusterDim.z = w[3];
			break;
		case CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
			v->clusterSchedulingPolicyPreference = (CUclusterSchedulingPolicy)w[1];
			break;
		case CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION:
			v->programmaticStreamSerializationAllowed = (int)w[1];
			break;
		case CU_LAUNCH_ATTRIBUTE_PRIORITY:
			v->priority = (int)w[1];
			break;
		case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP:
			if (w[1] > 0xff || w[2] > 0xff)
				return CUDA_ERROR_INVALID_VALUE;
			v->memSyncDomainMap.default_ = (unsigned char)w[1];
			v->memSyncDomainMap.remote = (unsigned char)w[2];
			break;
		case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN:
			v->memSyncDomain = (CUlaunchMemSyncDomain)w[1];
			break;
		case CU_LAUNCH_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
			v->sharedMemCarveout = w[1];
			break;
		default:
			return CUDA_ERROR_NOT_SUPPORTED;
		}
	}
	return CUDA_SUCCESS;
}

static struct wkernel *kernel_of(struct modules *mo, uint64_t handle)
{
	struct wkernel *k = handle >= 1 && handle <= mo->n_kernels ? &mo->kernels[handle - 1] : NULL;

	return k && k->kernel ? k : NULL;
}

CUresult module_launch(struct worker *w, struct modules *mo, const struct vgpu_cuda_msg *m,
		       uint8_t *params, CUstream stream)
{
	void *args[VGPU_CUDA_MAX_PARAMS];
	CUlaunchAttribute attrs[VGPU_CUDA_MAX_LAUNCH_ATTRS];
	struct wkernel *k = kernel_of(mo, m->v[0]);
	uint32_t extra, n;
	CUresult rc;

	if (!k)
		return CUDA_ERROR_INVALID_HANDLE;
	extra = m->data_len - (m->data_len < k->param_bytes ? m->data_len : k->param_bytes);
	n = extra / VGPU_CUDA_LAUNCH_ATTR_BYTES;
	if (m->data_len < k->param_bytes || extra % VGPU_CUDA_LAUNCH_ATTR_BYTES ||
	    n > VGPU_CUDA_MAX_LAUNCH_ATTRS)
		return CUDA_ERROR_INVALID_VALUE;
	for (uint32_t i = 0; i < k->n_params; i++)
		args[i] = params + k->layout[2 * i];
	if (n == 0)
		return w->drv.launch((CUfunction)k->kernel, (uint32_t)m->v[1],
				     (uint32_t)(m->v[1] >> 32), (uint32_t)m->v[2],
				     (uint32_t)(m->v[2] >> 32), (uint32_t)m->v[3],
				     (uint32_t)(m->v[3] >> 32), (uint32_t)m->v[4], stream, args, NULL);
	rc = attrs_in(params + k->param_bytes, n, attrs);
	if (rc != CUDA_SUCCESS)
		return rc;
	CUlaunchConfig config = {
		.gridDimX = (uint32_t)m->v[1], .gridDimY = (uint32_t)(m->v[1] >> 32),
		.gridDimZ = (uint32_t)m->v[2], .blockDimX = (uint32_t)(m->v[2] >> 32),
		.blockDimY = (uint32_t)m->v[3], .blockDimZ = (uint32_t)(m->v[3] >> 32),
		.sharedMemBytes = (uint32_t)m->v[4], .hStream = stream, .attrs = attrs, .numAttrs = n,
	};

	return w->drv.launch_ex(&config, (CUfunction)k->kernel, args, NULL);
}

CUresult module_query(struct worker *w, struct modules *mo, const struct vgpu_cuda_msg *m,
		      const uint8_t *data, uint64_t res[2])
{
	CUlaunchAttribute attrs[VGPU_CUDA_MAX_LAUNCH_ATTRS];
	struct wkernel *k = kernel_of(mo, m->v[0]);
	CUfunction f = NULL;
	int value = 0;
	size_t bytes = 0;
	CUresult rc;

	if (!k)
		return CUDA_ERROR_INVALID_HANDLE;
	rc = w->drv.kernel_get_function(&f, k->kernel);
	if (rc != CUDA_SUCCESS)
		return rc;
	if (m->call == VGPU_CUDA_FUNC_ATTR) {
		if (m->v[1] >= CU_FUNC_ATTRIBUTE_MAX || m->v[2] > 1 || m->v[3] > UINT32_MAX ||
		    (m->v[2] == 0 && m->v[3]))
			return CUDA_ERROR_INVALID_VALUE;
		if (m->v[2])
			return w->drv.func_set_attr(f, (CUfunction_attribute)m->v[1],
						    (int)(int32_t)(uint32_t)m->v[3]);
		rc = w->drv.func_get_attr(&value, (CUfunction_attribute)m->v[1], f);
		res[0] = (uint32_t)value;
		return rc;
	}
	switch (m->v[1]) {
	case VGPU_CUDA_OCC_BLOCKS:
		if (m->v[2] == 0 || m->v[2] > INT32_MAX || m->v[4] > UINT32_MAX)
			return CUDA_ERROR_INVALID_VALUE;
		rc = w->drv.occ_blocks(&value, f, (int)m->v[2], (size_t)m->v[3], (unsigned)m->v[4]);
		res[0] = (uint32_t)value;
		return rc;
	case VGPU_CUDA_OCC_SMEM:
		if (m->v[2] == 0 || m->v[2] > INT32_MAX || m->v[3] == 0 || m->v[3] > INT32_MAX ||
		    m->v[4])
			return CUDA_ERROR_INVALID_VALUE;
		rc = w->drv.occ_smem(&bytes, f, (int)m->v[2], (int)m->v[3]);
		res[0] = bytes;
		return rc;
	case VGPU_CUDA_OCC_CLUSTERS: {
		uint32_t c[8];
		uint32_t n = (m->data_len - VGPU_CUDA_LAUNCH_CONFIG_BYTES) / VGPU_CUDA_LAUNCH_ATTR_BYTES;

		if (m->v[2] || m->v[3] || m->v[4])
			return CUDA_ERROR_INVALID_VALUE;
		memcpy(c, data, sizeof(c));
		rc = attrs_in(data + VGPU_CUDA_LAUNCH_CONFIG_BYTES, n, attrs);
		if (rc != CUDA_SUCCESS)
			return rc;
		CUlaunchConfig config = {
			.gridDimX = c[0], .gridDimY = c[1], .gridDimZ = c[2], .blockDimX = c[3],
			.blockDimY = c[4], .blockDimZ = c[5], .sharedMemBytes = c[6],
			.attrs = attrs, .numAttrs = n,
		};

		rc = w->drv.occ_clusters(&value, f, &config);
		res[0] = (uint32_t)value;
		return rc;
	}
	default:
		return CUDA_ERROR_INVALID_VALUE;
	}
}

CUresult module_global(struct worker *w, struct modules *mo, uint64_t lib, const char *name,
		       uint32_t len, uint64_t res[2])
{
	struct wlib *l = lib_of(mo, lib);
	CUdeviceptr ptr = 0;
	size_t bytes = 0;
	CUresult rc;

	if (!l)
		return CUDA_ERROR_INVALID_HANDLE;
	if (len < 2 || name[len - 1] != '\0' || strlen(name) != len - 1)
		return CUDA_ERROR_INVALID_VALUE;
	rc = w->drv.library_get_global(&ptr, &bytes, l->lib, name);
	if (rc == CUDA_SUCCESS && (!ptr || !bytes))
		rc = CUDA_ERROR_NOT_FOUND;
	res[0] = ptr;
	res[1] = bytes;
	return rc;
}

void module_release(struct worker *w, struct modules *mo)
{
	for (uint32_t i = 0; i < mo->n_libs; i++)
		if (mo->libs[i].lib)
			lib_free(w, mo, &mo->libs[i]);
	free(mo->libs);
	free(mo->kernels);
	*mo = (struct modules){ 0 };
}
