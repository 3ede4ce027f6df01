// SPDX-License-Identifier: MIT
// cuda_probe.cu - an ordinary CUDA program, built with nvcc's defaults
// (static cudart), that the guest libcuda.so.1 tests run: it asks cudart
// what users' programs ask first and prints one line per answer, for
// tests/guest/test-cuda-shim.sh to check.
#include <cstdio>
#include <cuda_runtime.h>

int main()
{
	int count = -1, driver = -1;
	cudaError_t e = cudaGetDeviceCount(&count);

	printf("count %d %d\n", (int)e, count);
	if (e != cudaSuccess)
		return 1;
	cudaDriverGetVersion(&driver);
	printf("driver %d\n", driver);
	for (int d = 0; d < count; d++) {
		cudaDeviceProp p;

		e = cudaGetDeviceProperties(&p, d);
		printf("device %d %d name=%s cc=%d.%d mem=%zu sms=%d warp=%d bus=%d uuid0=%02x\n", d,
		       (int)e, p.name, p.major, p.minor, p.totalGlobalMem, p.multiProcessorCount,
		       p.warpSize, p.pciBusID, (unsigned char)p.uuid.bytes[0]);
	}
	// Makes the primary context, then frees nothing: the first call that
	// needs the host's worker (cuMemFree).
	e = cudaFree(0);
	printf("free %d %s\n", (int)e, cudaGetErrorName(e));
	return 0;
}
