// SPDX-License-Identifier: MIT
// cuda-calls - what a CUDA program pays per driver call, run natively or
// through vgpu's libcuda.so.1 (issue 12's performance targets; built with
// nvcc's defaults, static cudart, as users' programs are):
//   launch       N launches of an empty kernel back to back: the time one
//                cudaLaunchKernel takes in the caller;
//   launch+sync  N times a launch then cudaStreamSynchronize: p50, p99;
//   copies       64 MiB host to device and back from cudaMallocHost
//                memory: GB/s, the best of 5.
// Prints one JSON line; exit status 1 when a call failed.
//
//   cuda-calls [--n N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <cuda_runtime.h>

__global__ void empty(int *p)
{
	if (p)
		*p = 1;
}

static double now_us()
{
	return std::chrono::duration<double, std::micro>(
		       std::chrono::steady_clock::now().time_since_epoch())
		.count();
}

int main(int argc, char **argv)
{
	int n = 2000;

	if (argc == 3 && strcmp(argv[1], "--n") == 0)
		n = atoi(argv[2]);
	if (n < 10 || n > 1000000) {
		fprintf(stderr, "usage: cuda-calls [--n 10..1000000]\n");
		return 2;
	}
	int bad = cudaFree(0) != cudaSuccess;
	for (int i = 0; i < 100; i++)
		empty<<<1, 1>>>(nullptr);
	bad |= cudaDeviceSynchronize() != cudaSuccess;

	double t0 = now_us();
	for (int i = 0; i < n; i++)
		empty<<<1, 1>>>(nullptr);
	double launch_us = (now_us() - t0) / n;
	bad |= cudaDeviceSynchronize() != cudaSuccess;

	std::vector<double> pair(n);
	for (int i = 0; i < n; i++) {
		double a = now_us();
		empty<<<1, 1>>>(nullptr);
		bad |= cudaStreamSynchronize(0) != cudaSuccess;
		pair[i] = now_us() - a;
	}
	std::sort(pair.begin(), pair.end());

	const size_t bytes = (size_t)64 << 20;
	void *h = nullptr, *d = nullptr;
	double h2d = 0, d2h = 0;
	bad |= cudaMallocHost(&h, bytes) != cudaSuccess;
	bad |= cudaMalloc(&d, bytes) != cudaSuccess;
	if (!bad) {
		memset(h, 7, bytes);
		for (int r = 0; r < 5; r++) {
			double a = now_us();
			bad |= cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice) != cudaSuccess;
			double b = now_us();
			bad |= cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost) != cudaSuccess;
			double c = now_us();
			h2d = std::max(h2d, bytes / (b - a) / 1e3);
			d2h = std::max(d2h, bytes / (c - b) / 1e3);
		}
		bad |= ((unsigned char *)h)[bytes - 1] != 7;
	}
	cudaFreeHost(h);
	cudaFree(d);
	bad |= cudaGetLastError() != cudaSuccess;
	printf("{\"n\":%d,\"launch_us\":%.3f,\"launch_sync_us\":{\"p50\":%.2f,\"p99\":%.2f},"
	       "\"h2d_gbs\":%.2f,\"d2h_gbs\":%.2f,\"ok\":%s}\n",
	       n, launch_us, pair[n / 2], pair[n * 99 / 100], h2d, d2h, bad ? "false" : "true");
	return bad ? 1 : 0;
}
