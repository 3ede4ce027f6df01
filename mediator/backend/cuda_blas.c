/*
 * cuda_blas.c - dlopen() of cuBLAS for the CUDA backend (see cuda_blas.h).
 *
 * Never: keep a half-loaded library (every symbol or none).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_blas.h"
#include "vgpu_error.h"

#ifndef VGPU_CUDA_LIBDIR
#define VGPU_CUDA_LIBDIR "/usr/local/cuda/lib64"
#endif
#define CUBLAS_SONAME "libcublas.so.13"

static void *open_first(char *tried, size_t tried_size)
{
	const char *env = getenv("VGPU_CUBLAS");
	const char *names[] = {
		env && env[0] ? env : NULL,
		CUBLAS_SONAME,
		VGPU_CUDA_LIBDIR "/" CUBLAS_SONAME,
		"/usr/local/cuda/lib64/" CUBLAS_SONAME,
	};
	size_t used = 0;

	tried[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!names[i])
			continue;
		void *dl = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);

		if (dl)
			return dl;
		const char *why = dlerror();
		int n = snprintf(tried + used, tried_size - used, "%s%s", used ? "; " : "",
				 why ? why : names[i]);

		if (n > 0 && (size_t)n < tried_size - used)
			used += (size_t)n;
	}
	return NULL;
}

int vgpu_cublas_load(struct vgpu_cublas *b, char *err, size_t err_size)
{
	char tried[1024];

	memset(b, 0, sizeof(*b));
	b->dl = open_first(tried, sizeof(tried));
	if (!b->dl) {
		snprintf(err, err_size, "cuBLAS not found (set VGPU_CUBLAS to its path): %s", tried);
		return VGPU_NOT_FOUND;
	}
	b->create = (cublasStatus_t(*)(cublasHandle_t *))dlsym(b->dl, "cublasCreate_v2");
	b->destroy = (cublasStatus_t(*)(cublasHandle_t))dlsym(b->dl, "cublasDestroy_v2");
	b->set_stream = (cublasStatus_t(*)(cublasHandle_t, cudaStream_t))dlsym(b->dl,
										"cublasSetStream_v2");
	b->sgemm = (cublasStatus_t(*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int,
				      int, int, const float *, const float *, int,
				      const float *, int, const float *, float *,
				      int))dlsym(b->dl, "cublasSgemm_v2");
	if (!b->create || !b->destroy || !b->set_stream || !b->sgemm) {
		snprintf(err, err_size, "cuBLAS lacks a symbol the backend needs");
		vgpu_cublas_unload(b);
		return VGPU_NOT_FOUND;
	}
	return VGPU_OK;
}

void vgpu_cublas_unload(struct vgpu_cublas *b)
{
	if (b->dl)
		dlclose(b->dl);
	memset(b, 0, sizeof(*b));
}
