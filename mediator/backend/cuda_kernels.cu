/* SPDX-License-Identifier: MIT */
/*
 * cuda_kernels.cu - the kernels of the CUDA backend's catalogue: vector_add,
 * saxpy and the two stages of reduce_sum (sgemm is cuBLAS).
 *
 * Results match the CPU backend: vector_add and saxpy round every operation
 * like IEEE float on the CPU (saxpy uses __fmul_rn/__fadd_rn so nvcc cannot
 * fuse it), and reduce_sum accumulates in double, in a fixed order (no
 * atomics), so a sum is the same on every run.
 *
 * Trusted code: it runs in the mediator's one context. Never: read or write
 * past n, synchronize, or allocate.
 */
#include "cuda_kernels.h"

#define THREADS 256
#define MAX_BLOCKS 65535u

static unsigned int blocks_for(uint32_t n)
{
	uint32_t b = (n + THREADS - 1) / THREADS;

	return b < MAX_BLOCKS ? (b ? b : 1) : MAX_BLOCKS;
}

__global__ void k_vector_add(float *out, const float *a, const float *b, uint32_t n)
{
	for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
		out[i] = __fadd_rn(a[i], b[i]);
}

__global__ void k_saxpy(float *out, float alpha, const float *x, const float *y, uint32_t n)
{
	for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
		out[i] = __fadd_rn(__fmul_rn(alpha, x[i]), y[i]);
}

/* Sum of this block's @acc values; valid in thread 0. */
__device__ double block_sum(double acc)
{
	__shared__ double s[THREADS];

	s[threadIdx.x] = acc;
	__syncthreads();
	for (unsigned int step = THREADS / 2; step > 0; step /= 2) {
		if (threadIdx.x < step)
			s[threadIdx.x] += s[threadIdx.x + step];
		__syncthreads();
	}
	return s[0];
}

__global__ void k_reduce_blocks(const float *x, uint32_t n, double *block_sums)
{
	double acc = 0.0;

	for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
		acc += x[i];
	acc = block_sum(acc);
	if (threadIdx.x == 0)
		block_sums[blockIdx.x] = acc;
}

/* One block: sums @count doubles into *out_d or *out_f. */
__global__ void k_reduce_doubles(const double *in, uint32_t count, double *out_d, float *out_f)
{
	double acc = 0.0;

	for (uint32_t i = threadIdx.x; i < count; i += blockDim.x)
		acc += in[i];
	acc = block_sum(acc);
	if (threadIdx.x == 0) {
		if (out_d)
			*out_d = acc;
		if (out_f)
			*out_f = (float)acc;
	}
}

extern "C" cudaError_t vgpu_cuda_vector_add(float *out, const float *a, const float *b,
					    uint32_t n, cudaStream_t s)
{
	k_vector_add<<<blocks_for(n), THREADS, 0, s>>>(out, a, b, n);
	return cudaGetLastError();
}

extern "C" cudaError_t vgpu_cuda_saxpy(float *out, float alpha, const float *x, const float *y,
				       uint32_t n, cudaStream_t s)
{
	k_saxpy<<<blocks_for(n), THREADS, 0, s>>>(out, alpha, x, y, n);
	return cudaGetLastError();
}

extern "C" cudaError_t vgpu_cuda_reduce_chunk(const float *x, uint32_t n, double *scratch,
					      double *out, cudaStream_t s)
{
	cudaError_t e;

	k_reduce_blocks<<<VGPU_CUDA_REDUCE_BLOCKS, THREADS, 0, s>>>(x, n, scratch);
	e = cudaGetLastError();
	if (e != cudaSuccess)
		return e;
	k_reduce_doubles<<<1, THREADS, 0, s>>>(scratch, VGPU_CUDA_REDUCE_BLOCKS, out, NULL);
	return cudaGetLastError();
}

extern "C" cudaError_t vgpu_cuda_reduce_final(const double *partials, uint32_t count, float *out,
					      cudaStream_t s)
{
	k_reduce_doubles<<<1, THREADS, 0, s>>>(partials, count, NULL, out);
	return cudaGetLastError();
}
