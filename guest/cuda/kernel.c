/* SPDX-License-Identifier: MIT */
/*
 * kernel.c - kernels and launches. The first kernel asked of a library
 * sends its image to the host (LIB_LOAD); each kernel is asked of the
 * host once (GET_KERNEL), which answers with its parameters' layout as
 * the host's driver knows it (cuKernelGetParamInfo), so that a launch can
 * send the parameters' bytes as the kernel will read them: a pointer is a
 * device address of the host's, which cuMemAlloc handed out as it is.
 *
 * Launches go to the host one at a time and wait for its answer (the
 * launch itself is queued there, as with NVIDIA's driver); streams other
 * than the default ones are not served yet (docs/specs/cuda-remoting.md).
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
	if (rc == CUDA_SUCCESS)
		lib->host = r.v[0];
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
	if (!library || library->magic != VGPU_LIB_MAGIC)
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
		free(k->layout);
		free(k);
	}
	if (lib->host)
		rc = vgpu_cuda_call(&m, NULL, &r, NULL, 0);
	lib->host = 0;
	pthread_mutex_unlock(&lock);
	return rc;
}

static struct CUfunc_st *kernel_of(const void *handle)
{
	const struct CUfunc_st *k = handle;

	return k && k->magic == VGPU_KERNEL_MAGIC ? (struct CUfunc_st *)k : NULL;
}

CUresult cuKernelGetFunction(CUfunction *pFunc, CUkernel kernel)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!pFunc)
		return CUDA_ERROR_INVALID_VALUE;
	if (!kernel_of(kernel))
		return CUDA_ERROR_INVALID_HANDLE;
	*pFunc = (CUfunction)kernel;
	return CUDA_SUCCESS;
}

CUresult cuKernelGetParamInfo(CUkernel kernel, size_t paramIndex, size_t *paramOffset,
			      size_t *paramSize)
{
	const struct CUfunc_st *k = kernel_of(kernel);
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

/* On the host's stream of @stream (stream.c: both default streams are
 * the legacy one), posted: what the host finds wrong with it comes back
 * at the next synchronizing call (call.c). */
CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
			unsigned int bx, unsigned int by, unsigned int bz, unsigned int shared,
			CUstream stream, void **params, void **extra)
{
	static _Thread_local uint8_t buf[VGPU_CUDA_MAX_PARAM_BYTES];
	const struct CUfunc_st *k = kernel_of(f);
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_LAUNCH };
	const void *data = buf;
	uint64_t host_stream;
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!k)
		return CUDA_ERROR_INVALID_HANDLE;
	rc = vgpu_cuda_stream_host(stream, &host_stream);
	if (rc != CUDA_SUCCESS)
		return rc;
	if (!gx || !gy || !gz || !bx || !by || !bz || (params && extra))
		return CUDA_ERROR_INVALID_VALUE;
	if (extra) {
		size_t size = 0;

		data = from_extra(extra, &size);
		if (!data || size < k->param_bytes)
			return CUDA_ERROR_INVALID_VALUE;
	} else if (k->n_params) {
		if (!params)
			return CUDA_ERROR_INVALID_VALUE;
		memset(buf, 0, k->param_bytes);
		for (uint32_t i = 0; i < k->n_params; i++) {
			if (!params[i])
				return CUDA_ERROR_INVALID_VALUE;
			memcpy(buf + k->layout[2 * i], params[i], k->layout[2 * i + 1]);
		}
	}
	m.v[0] = k->host;
	m.v[1] = gx | (uint64_t)gy << 32;
	m.v[2] = gz | (uint64_t)bx << 32;
	m.v[3] = by | (uint64_t)bz << 32;
	m.v[4] = shared | host_stream << 32;
	m.data_len = k->param_bytes;
	return vgpu_cuda_post(&m, data);
}
