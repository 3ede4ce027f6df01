/* SPDX-License-Identifier: MIT */
/*
 * cuda_blas.c - dlopen() of cuBLAS for the CUDA backend (see cuda_blas.h).
 *
 * Loaded once per process and never unloaded: what cuBLAS's constructors
 * allocate would leak at each dlclose() (LeakSanitizer reports it), and a
 * reload costs tens of milliseconds. A failed load is remembered too.
 *
 * Never: keep a half-loaded library (every symbol or none).
 */
#include <dlfcn.h>
#include <pthread.h>
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

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static struct vgpu_cublas loaded;
static int load_rc;
static char load_err[1280];

static void load(void)
{
	char tried[1024];
	struct vgpu_cublas *b = &loaded;

	b->dl = open_first(tried, sizeof(tried));
	if (!b->dl) {
		snprintf(load_err, sizeof(load_err),
			 "cuBLAS not found (set VGPU_CUBLAS to its path): %s", tried);
		load_rc = VGPU_NOT_FOUND;
		return;
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
		snprintf(load_err, sizeof(load_err), "cuBLAS lacks a symbol the backend needs");
		dlclose(b->dl);
		memset(b, 0, sizeof(*b));
		load_rc = VGPU_NOT_FOUND;
	}
}

int vgpu_cublas_load(struct vgpu_cublas *b, char *err, size_t err_size)
{
	pthread_once(&load_once, load);
	if (load_rc != VGPU_OK) {
		memset(b, 0, sizeof(*b));
		snprintf(err, err_size, "%s", load_err);
		return load_rc;
	}
	*b = loaded;
	return VGPU_OK;
}

void vgpu_cublas_unload(struct vgpu_cublas *b)
{
	memset(b, 0, sizeof(*b)); /* the library itself stays (see the top) */
}
