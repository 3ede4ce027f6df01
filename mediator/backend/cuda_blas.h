/* SPDX-License-Identifier: MIT */
/*
 * cuda_blas.h - cuBLAS, loaded with dlopen() when the CUDA backend starts.
 *
 * Loading at run time keeps libcublas (hundreds of MiB with cublasLt) out of
 * the mediator's link: the same binary runs with the CPU backend where
 * cuBLAS is missing, and --backend auto says why it did not pick cuda.
 *
 * Never: be used before vgpu_cublas_load() succeeded.
 */
#ifndef VGPU_CUDA_BLAS_H
#define VGPU_CUDA_BLAS_H

#include <stddef.h>

#include <cublas_v2.h>

struct vgpu_cublas {
	void *dl;  /* dlopen() handle */
	cublasStatus_t (*create)(cublasHandle_t *handle);
	cublasStatus_t (*destroy)(cublasHandle_t handle);
	cublasStatus_t (*set_stream)(cublasHandle_t handle, cudaStream_t stream);
	cublasStatus_t (*sgemm)(cublasHandle_t handle, cublasOperation_t transa,
				cublasOperation_t transb, int m, int n, int k, const float *alpha,
				const float *a, int lda, const float *b, int ldb, const float *beta,
				float *c, int ldc);
};

/*
 * Load libcublas, once per process: $VGPU_CUBLAS if set, else
 * libcublas.so.13 from the loader's path, then from the CUDA library
 * directory of the build. On failure @err says what was tried; @b is then
 * unusable. Thread-safe.
 */
int vgpu_cublas_load(struct vgpu_cublas *b, char *err, size_t err_size);

/* Forget @b; the library stays loaded. A zeroed or failed @b is fine. */
void vgpu_cublas_unload(struct vgpu_cublas *b);

#endif
