/* SPDX-License-Identifier: MIT */
/*
 * cuda_kernels.h - the CUDA backend's own kernels (cuda_kernels.cu), as
 * C-callable launchers that enqueue on a stream and return the launch
 * status. sgemm is not here: it is cuBLAS (cuda_blas.c).
 *
 * Never: synchronize. Every function only enqueues.
 */
#ifndef VGPU_CUDA_KERNELS_H
#define VGPU_CUDA_KERNELS_H

#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Blocks of the first reduce stage: a chunk's scratch holds this many doubles. */
#define VGPU_CUDA_REDUCE_BLOCKS 256

/* out[i] = a[i] + b[i], i < n (out may be a). Any pointer the device can
 * reach: device memory, or pinned host memory (the small works' path). */
cudaError_t vgpu_cuda_vector_add(float *out, const float *a, const float *b, uint32_t n,
				 cudaStream_t s);

/* out[i] = alpha * x[i] + y[i], i < n (out may be y), rounded like the CPU
 * (no fused multiply-add). */
cudaError_t vgpu_cuda_saxpy(float *out, float alpha, const float *x, const float *y, uint32_t n,
			    cudaStream_t s);

/*
 * *out = the sum of x[0..n) in double. @scratch holds VGPU_CUDA_REDUCE_BLOCKS
 * doubles and belongs to the stream (reused by the next call on it).
 */
cudaError_t vgpu_cuda_reduce_chunk(const float *x, uint32_t n, double *scratch, double *out,
				   cudaStream_t s);

/* *out = (float)(the sum of partials[0..count)), summed in a fixed order. */
cudaError_t vgpu_cuda_reduce_final(const double *partials, uint32_t count, float *out,
				   cudaStream_t s);

#ifdef __cplusplus
}
#endif

#endif
