/* SPDX-License-Identifier: MIT */
/*
 * kernel.c - kernels and launches. The first kernel asked of a library
 * sends its image to the host (LIB_LOAD); each kernel is asked of the
 * host once (GET_KERNEL), which answers with its parameters' layout as
 * the host's driver knows it (cuKernelGetParamInfo), so that a launch can
 * send the parameters' bytes as the kernel will read them: a pointer is a
 * device address of the host's, which cuMemAlloc handed out as it is.
 *
 * Launches are posted (call.c): they go without waiting for the host's
 * answer, whose error the next synchronizing call returns.
 * cuLaunchKernelEx's attributes go with the parameters; those that name
 * events (or belong to graphs or streams only) are refused
 * (docs/specs/cuda-remoting.md).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* libraries' kernel lists */

/* @lib's image on the host (lock held). */
static CUresult upload(struct CUlib_st *lib)
{
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_LIB_LOAD }, r;
	CUresult rc;

	if (lib->host)
		return CUDA_SUCCESS;
	if (lib->size > VGPU_CUDA_MAX_DATA) {
		vgpu_cuda_log(true, "a module of %zu bytes: at most %u go to the host", lib->size,
			      VGPU_CUDA_MAX_DATA);
		return CUDA_ERROR_NOT_SUPPORTED;
	}
	m.data_len = (uint32_t)lib->size;
	rc = vgpu_cuda_call(&m, lib->image, &r, NULL, 0);
	if (rc == CUDA_SUCCESS && r.v[0] == 0)
		rc = CUDA_ERROR_INVALID_HANDLE;
	if (rc == CUDA_SUCCESS) {
		lib->host = r.v[0];
		/* The host has it: the library's own copy is not read again. */
		free(lib->copy);
		lib->copy = NULL;
		lib->image = NULL;
	}
	return rc;
}

/* The host's answer for kernel @name of @lib (lock held). */
static CUresult ask(struct CUlib_st *lib, const char *name, size_t len, struct CUfunc_st **ret)
{
	static uint32_t layout[2 * VGPU_CUDA_MAX_PARAMS]; /* lock held */
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_GET_KERNEL, .v = { lib->host } }, r;
	struct CUfunc_st *k;
	CUresult rc;

	m.data_len = (uint32_t)len + 1;
	rc = vgpu_cuda_call(&m, name, &r, layout, sizeof(layout));
	if (rc != CUDA_SUCCESS)
		return rc;
	/* The layout within the bytes the host will read (cuda_call.c
	 * checked the counts against the data). */
	for (uint32_t i = 0; i < r.v[1]; i++)
		if (layout[2 * i + 1] == 0 || layout[2 * i] > r.v[2] ||
		    layout[2 * i + 1] > r.v[2] - layout[2 * i])
			return CUDA_ERROR_INVALID_IMAGE;
	k = calloc(1, sizeof(*k) + len + 1);
	if (k)
		k->layout = malloc(r.v[1] ? 8 * r.v[1] : 1);
	if (!k || !k->layout) {
		free(k);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	k->magic = VGPU_KERNEL_MAGIC;
	atomic_init(&k->refs, 1);
	k->host = r.v[0];
	k->n_params = (uint32_t)r.v[1];
	k->param_bytes = (uint32_t)r.v[2];
	memcpy(k->layout, layout, 8 * r.v[1]);
	memcpy(k->name, name, len + 1);
	k->next = lib->kernels;
	lib->kernels = k;
	*ret = k;
	return CUDA_SUCCESS;
}

CUresult cuLibraryGetKernel(CUkernel *pKernel, CUlibrary library, const char *name)
{
	struct CUfunc_st *k;
	size_t len;
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!pKernel || !name)
		return CUDA_ERROR_INVALID_VALUE;
	if (!VGPU_CUDA_IS(library, VGPU_LIB_MAGIC))
		return CUDA_ERROR_INVALID_HANDLE;
	len = strnlen(name, VGPU_CUDA_MAX_NAME);
	if (len == 0 || len >= VGPU_CUDA_MAX_NAME)
		return CUDA_ERROR_NOT_FOUND;
	pthread_mutex_lock(&lock);
	for (k = library->kernels; k && strcmp(k->name, name) != 0; k = k->next)
		;
	rc = k ? CUDA_SUCCESS : upload(library);
	if (!k && rc == CUDA_SUCCESS)
		rc = ask(library, name, len, &k);
	pthread_mutex_unlock(&lock);
	if (rc == CUDA_SUCCESS)
		*pKernel = (CUkernel)k;
	vgpu_cuda_log(false, "kernel %s: %d", name, rc);
	return rc;
}

CUresult vgpu_cuda_library_host(CUlibrary library, uint64_t *ret)
{
	CUresult rc;

	if (!VGPU_CUDA_IS(library, VGPU_LIB_MAGIC))
		return CUDA_ERROR_INVALID_HANDLE;
	pthread_mutex_lock(&lock);
	rc = upload(library);
	*ret = library->host;
	pthread_mutex_unlock(&lock);
	return rc;
}

CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name)
{
	return cuLibraryGetKernel((CUkernel *)hfunc, (CUlibrary)hmod, name);
}

CUresult vgpu_cuda_library_drop(struct CUlib_st *lib)
{
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_LIB_UNLOAD, .v = { lib->host } }, r;
	CUresult rc = CUDA_SUCCESS;

	pthread_mutex_lock(&lock);
	while (lib->kernels) {
		struct CUfunc_st *k = lib->kernels;

		lib->kernels = k->next;
		k->magic = 0;
		vgpu_cuda_occupancy_forget(k);
		vgpu_cuda_kernel_release(k);
	}
	if (lib->host)
		rc = vgpu_cuda_call(&m, NULL, &r, NULL, 0);
	lib->host = 0;
	vgpu_cuda_block_forget_lib(lib);
	pthread_mutex_unlock(&lock);
	return rc;
}

void vgpu_cuda_kernel_hold(struct CUfunc_st *k)
{
	atomic_fetch_add(&k->refs, 1);
}

void vgpu_cuda_kernel_release(struct CUfunc_st *k)
{
	if (atomic_fetch_sub(&k->refs, 1) == 1) {
		free(k->layout);
		free(k);
	}
}

struct CUfunc_st *vgpu_cuda_kernel(const void *handle)
{
	const struct CUfunc_st *k = handle;

	return VGPU_CUDA_IS(k, VGPU_KERNEL_MAGIC) ? (struct CUfunc_st *)k : NULL;
}

CUresult cuKernelGetFunction(CUfunction *pFunc, CUkernel kernel)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!pFunc)
		return CUDA_ERROR_INVALID_VALUE;
	if (!vgpu_cuda_kernel(kernel))
		return CUDA_ERROR_INVALID_HANDLE;
	*pFunc = (CUfunction)kernel;
	return CUDA_SUCCESS;
}

CUresult cuKernelGetParamInfo(CUkernel kernel, size_t paramIndex, size_t *paramOffset,
			      size_t *paramSize)
{
	const struct CUfunc_st *k = vgpu_cuda_kernel(kernel);
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!k)
		return CUDA_ERROR_INVALID_HANDLE;
	if (paramIndex >= k->n_params)
		return CUDA_ERROR_INVALID_VALUE;
	if (paramOffset)
		*paramOffset = k->layout[2 * paramIndex];
	if (paramSize)
		*paramSize = k->layout[2 * paramIndex + 1];
	return CUDA_SUCCESS;
}

CUresult cuFuncGetParamInfo(CUfunction func, size_t paramIndex, size_t *paramOffset,
			    size_t *paramSize)
{
	return cuKernelGetParamInfo((CUkernel)func, paramIndex, paramOffset, paramSize);
}

/* The parameters' bytes from @extra (CU_LAUNCH_PARAM_BUFFER_POINTER and
 * _SIZE, then CU_LAUNCH_PARAM_END), or NULL. */
static const void *from_extra(void **extra, size_t *size)
{
	const void *buf = NULL;
	bool have_size = false;

	for (int i = 0; i < 16 && extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
		if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER) {
			buf = extra[i + 1];
		} else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE && extra[i + 1]) {
			*size = *(size_t *)extra[i + 1];
			have_size = true;
		} else {
			return NULL;
		}
	}
	return have_size ? buf : NULL;
}

/* @k's parameters from @params or @extra into @buf (room for
 * VGPU_CUDA_MAX_PARAM_BYTES), or *@ret pointed at @extra's own buffer. */
static CUresult pack(const struct CUfunc_st *k, void **params, void **extra, uint8_t *buf,
		     const void **ret)
{
	*ret = buf;
	if (params && extra)
		return CUDA_ERROR_INVALID_VALUE;
	if (extra) {
		size_t size = 0;

		*ret = from_extra(extra, &size);
		return *ret && size >= k->param_bytes ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
	}
	if (k->n_params && !params)
		return CUDA_ERROR_INVALID_VALUE;
	memset(buf, 0, k->param_bytes);
	for (uint32_t i = 0; i < k->n_params; i++) {
		if (!params[i])
			return CUDA_ERROR_INVALID_VALUE;
		memcpy(buf + k->layout[2 * i], params[i], k->layout[2 * i + 1]);
	}
	return CUDA_SUCCESS;
}

/* One attribute's values (at most three u32) as the wire carries them. */
static bool attr_values(const CUlaunchAttribute *a, uint32_t v[3])
{
	const CUlaunchAttributeValue *val = &a->value;

	switch (a->id) {
	case CU_LAUNCH_ATTRIBUTE_COOPERATIVE:
		v[0] = (uint32_t)val->cooperative;
		return true;
	case CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION:
		v[0] = val->clusterDim.x;
		v[1] = val->clusterDim.y;
		v[2] = val->clusterDim.z;
		return true;
	case CU_LAUNCH_ATTRIBUTE_PREFERRED_CLUSTER_DIMENSION:
		v[0] = val->preferredClusterDim.x;
		v[1] = val->preferredClusterDim.y;
		v[2] = val->preferredClusterDim.z;
		return true;
	case CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
		v[0] = (uint32_t)val->clusterSchedulingPolicyPreference;
		return true;
	case CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION:
		v[0] = (uint32_t)val->programmaticStreamSerializationAllowed;
		return true;
	case CU_LAUNCH_ATTRIBUTE_PRIORITY:
		v[0] = (uint32_t)val->priority;
		return true;
	case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP:
		v[0] = val->memSyncDomainMap.default_;
		v[1] = val->memSyncDomainMap.remote;
		return true;
	case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN:
		v[0] = (uint32_t)val->memSyncDomain;
		return true;
	case CU_LAUNCH_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
		v[0] = val->sharedMemCarveout;
		return true;
	default:
		return false;
	}
}

CUresult vgpu_cuda_launch_attrs(const CUlaunchAttribute *attrs, unsigned int n, uint8_t *out,
				unsigned int *ret_n)
{
	unsigned int k = 0;

	if (n && !attrs)
		return CUDA_ERROR_INVALID_VALUE;
	for (unsigned int i = 0; i < n; i++) {
		uint32_t v[3] = { 0, 0, 0 };

		if (attrs[i].id == CU_LAUNCH_ATTRIBUTE_IGNORE ||
		    attrs[i].id == CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW)
			continue;
		if (!attr_values(&attrs[i], v)) {
			vgpu_cuda_log(true, "launch attribute %d is not served: CUDA_ERROR_NOT_SUPPORTED",
				      (int)attrs[i].id);
			return CUDA_ERROR_NOT_SUPPORTED;
		}
		if (k == VGPU_CUDA_MAX_LAUNCH_ATTRS)
			return CUDA_ERROR_INVALID_VALUE;
		uint32_t w[4] = { (uint32_t)attrs[i].id, v[0], v[1], v[2] };

		memcpy(out + VGPU_CUDA_LAUNCH_ATTR_BYTES * k++, w, sizeof(w));
	}
	*ret_n = k;
	return CUDA_SUCCESS;
}

/* LAUNCH of @k on @stream (stream.c: both default streams are the legacy
 * one), @data its parameters and then @n_attrs attributes, posted: what
 * the host finds wrong with it comes back at the next synchronizing call
 * (call.c). */
static CUresult launch_attrs(const struct CUfunc_st *k, const unsigned int dims[6], unsigned int shared,
		       CUstream stream, const uint8_t *data, unsigned int n_attrs)
{
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_LAUNCH };
	uint64_t host_stream;
	CUresult rc = vgpu_cuda_stream_host(stream, &host_stream);

	if (rc != CUDA_SUCCESS)
		return rc;
	for (int i = 0; i < 6; i++)
		if (!dims[i])
			return CUDA_ERROR_INVALID_VALUE;
	m.v[0] = k->host;
	m.v[1] = dims[0] | (uint64_t)dims[1] << 32;
	m.v[2] = dims[2] | (uint64_t)dims[3] << 32;
	m.v[3] = dims[4] | (uint64_t)dims[5] << 32;
	m.v[4] = shared | host_stream << 32;
	m.data_len = k->param_bytes + n_attrs * VGPU_CUDA_LAUNCH_ATTR_BYTES;
	return vgpu_cuda_post(&m, data);
}

CUresult vgpu_cuda_kernel_pack(const struct CUfunc_st *k, void **params, void **extra,
			       uint8_t *buf)
{
	const void *data;
	CUresult rc = pack(k, params, extra, buf, &data);

	if (rc == CUDA_SUCCESS && data != buf)
		memcpy(buf, data, k->param_bytes);
	return rc;
}

CUresult vgpu_cuda_kernel_launch(const struct CUfunc_st *k, const unsigned int dims[6],
				 unsigned int shared, CUstream stream, const uint8_t *data)
{
	return launch_attrs(k, dims, shared, stream, data, 0);
}

/* A launch on a capturing @stream: a kernel node (capture.c), unless it
 * has attributes a node does not keep (@attrs). */
static int captured(CUfunction f, const unsigned int dims[6], unsigned int shared, CUstream stream,
		    void **params, void **extra, bool attrs, CUresult *rc)
{
	CUgraphNodeParams p = {
		.type = CU_GRAPH_NODE_TYPE_KERNEL,
		.kernel = { .func = f, .gridDimX = dims[0], .gridDimY = dims[1], .gridDimZ = dims[2],
			    .blockDimX = dims[3], .blockDimY = dims[4], .blockDimZ = dims[5],
			    .sharedMemBytes = shared, .kernelParams = params, .extra = extra },
	};

	if (!vgpu_cuda_stream_capture(stream))
		return VGPU_CAPTURE_OFF;
	return attrs ? vgpu_capture_host_call(stream, rc)
		     : vgpu_capture_node(stream, &p, false, NULL, rc);
}

CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
			unsigned int bx, unsigned int by, unsigned int bz, unsigned int shared,
			CUstream stream, void **params, void **extra)
{
	static _Thread_local uint8_t buf[VGPU_CUDA_MAX_PARAM_BYTES];
	const struct CUfunc_st *k = vgpu_cuda_kernel(f);
	const unsigned int dims[6] = { gx, gy, gz, bx, by, bz };
	const void *data;
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!k)
		return CUDA_ERROR_INVALID_HANDLE;
	if (captured(f, dims, shared, stream, params, extra, false, &rc) == VGPU_CAPTURE_DONE)
		return rc;
	rc = pack(k, params, extra, buf, &data);
	return rc == CUDA_SUCCESS ? launch_attrs(k, dims, shared, stream, data, 0) : rc;
}

/* A cooperative launch: cuLaunchKernelEx with CU_LAUNCH_ATTRIBUTE_COOPERATIVE
 * (the host's driver checks that the grid fits on the GPU at once). */
CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
				   unsigned int bx, unsigned int by, unsigned int bz,
				   unsigned int shared, CUstream stream, void **params)
{
	CUlaunchAttribute attr = { .id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE, .value.cooperative = 1 };
	CUlaunchConfig config = { .gridDimX = gx, .gridDimY = gy, .gridDimZ = gz,
				  .blockDimX = bx, .blockDimY = by, .blockDimZ = bz,
				  .sharedMemBytes = shared, .hStream = stream,
				  .attrs = &attr, .numAttrs = 1 };

	return cuLaunchKernelEx(&config, f, params, NULL);
}

/* cuLaunchKernelEx: the attributes follow the parameters on the wire. */
CUresult cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **params, void **extra)
{
	static _Thread_local uint8_t buf[VGPU_CUDA_MAX_PARAM_BYTES +
					 VGPU_CUDA_MAX_LAUNCH_ATTRS * VGPU_CUDA_LAUNCH_ATTR_BYTES];
	const struct CUfunc_st *k = vgpu_cuda_kernel(f);
	const void *data;
	unsigned int n = 0;
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!k)
		return CUDA_ERROR_INVALID_HANDLE;
	if (!config)
		return CUDA_ERROR_INVALID_VALUE;
	rc = pack(k, params, extra, buf, &data);
	if (rc == CUDA_SUCCESS && data != buf) {
		memcpy(buf, data, k->param_bytes); /* extra's buffer: the attributes go after */
		data = buf;
	}
	if (rc == CUDA_SUCCESS)
		rc = vgpu_cuda_launch_attrs(config->attrs, config->numAttrs, buf + k->param_bytes, &n);
	if (rc != CUDA_SUCCESS)
		return rc;
	const unsigned int dims[6] = { config->gridDimX,  config->gridDimY,  config->gridDimZ,
				       config->blockDimX, config->blockDimY, config->blockDimZ };

	if (captured(f, dims, config->sharedMemBytes, config->hStream, params, extra, n > 0, &rc) ==
	    VGPU_CAPTURE_DONE)
		return rc;
	return launch_attrs(k, dims, config->sharedMemBytes, config->hStream, data, n);
}
