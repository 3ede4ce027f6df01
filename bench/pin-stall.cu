/* SPDX-License-Identifier: MIT */
/*
 * pin-stall.cu - what pinning a shared-memory window costs the other VMs
 * (issue 9; docs/performance.md, run 24). One thread copies 4 KiB to the
 * GPU and back on its own stream, every 200 us, the whole time; meanwhile
 * the main thread pins 1 GiB of fresh MAP_SHARED memory with
 * cudaHostRegister (in --step MiB calls), waits 100 ms and unpins it, three
 * times. Prints how long pinning and unpinning took and the copies' p50,
 * p99 and worst round trip in each round: the worst shows how long the
 * driver held the copies back. --populate faults the memory in before
 * pinning (as the CUDA backend does now). --alloc pins with cudaHostAlloc
 * and unpins with cudaFreeHost instead (as the backend's request buffers
 * did before run 27). Then one 64 MiB copy from
 * pageable memory, from one registration, and across two adjacent
 * registrations (which CUDA refuses: windows cannot be pinned piecewise).
 *
 *   nvcc -O2 -std=c++17 bench/pin-stall.cu -o pin-stall
 *   pin-stall [--populate | --alloc] [--step MiB]
 */
#include <cuda_runtime.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "vgpu_clock.h"

static volatile int stop;
static std::vector<double> lat; /* us; the copier's, read after it joined */

static void *copier(void *)
{
	cudaStream_t s;
	void *h, *d;

	cudaSetDevice(0);
	cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
	cudaHostAlloc(&h, 4096, 0);
	cudaMalloc(&d, 4096);
	while (!stop) {
		uint64_t t0 = vgpu_now_ns();

		cudaMemcpyAsync(d, h, 4096, cudaMemcpyHostToDevice, s);
		cudaMemcpyAsync(h, d, 4096, cudaMemcpyDeviceToHost, s);
		cudaStreamSynchronize(s);
		lat.push_back((double)(vgpu_now_ns() - t0) / 1e3);
		usleep(200);
	}
	cudaFree(d);
	cudaFreeHost(h);
	cudaStreamDestroy(s);
	return NULL;
}

static void report(const char *what)
{
	std::sort(lat.begin(), lat.end());
	size_t n = lat.size();

	if (n)
		printf("%s: copies n=%zu p50 %.0f p99 %.0f worst %.0f us\n", what, n, lat[n / 2],
		       lat[n * 99 / 100], lat[n - 1]);
	lat.clear();
}

int main(int argc, char **argv)
{
	const size_t size = (size_t)1 << 30;
	size_t step = size;
	bool populate = false, alloc = false;
	pthread_t t;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--populate")) {
			populate = true;
		} else if (!strcmp(argv[i], "--alloc")) {
			alloc = true;
		} else if (!strcmp(argv[i], "--step") && i + 1 < argc) {
			char *end;
			unsigned long mib = strtoul(argv[++i], &end, 10);

			if (*argv[i] < '0' || *argv[i] > '9' || *end || mib == 0 || mib > 1024) {
				fprintf(stderr, "pin-stall: --step: '%s' is not a number from 1 to 1024\n",
					argv[i]);
				return 2;
			}
			step = (size_t)mib << 20;
		} else {
			fprintf(stderr, "usage: pin-stall [--populate | --alloc] [--step MiB]\n");
			return 2;
		}
	}
	cudaSetDevice(0);
	cudaFree(0);
	stop = 0;
	pthread_create(&t, NULL, copier, NULL);
	sleep(1);
	stop = 1;
	pthread_join(t, NULL);
	report("alone");
	for (int round = 0; round < 3; round++) {
		char *p = alloc ? NULL
				: (char *)mmap(NULL, size, PROT_READ | PROT_WRITE,
					       MAP_SHARED | MAP_ANONYMOUS |
						       (populate ? MAP_POPULATE : 0),
					       -1, 0);
		if (p == MAP_FAILED)
			return 1;
		stop = 0;
		pthread_create(&t, NULL, copier, NULL);
		usleep(100000);
		uint64_t t0 = vgpu_now_ns();
		if (alloc && cudaHostAlloc((void **)&p, size, cudaHostAllocPortable) != cudaSuccess) {
			fprintf(stderr, "pin-stall: cudaHostAlloc failed\n");
			return 1;
		}
		for (size_t off = 0; !alloc && off < size; off += step)
			if (cudaHostRegister(p + off, std::min(step, size - off), 0) != cudaSuccess) {
				fprintf(stderr, "pin-stall: cudaHostRegister failed\n");
				return 1;
			}
		uint64_t t1 = vgpu_now_ns();
		usleep(100000);
		uint64_t t2 = vgpu_now_ns();
		if (alloc)
			cudaFreeHost(p);
		for (size_t off = 0; !alloc && off < size; off += step)
			cudaHostUnregister(p + off);
		uint64_t t3 = vgpu_now_ns();
		if (!alloc)
			munmap(p, size);
		usleep(100000);
		stop = 1;
		pthread_join(t, NULL);
		char what[128];
		snprintf(what, sizeof(what), "pin 1 GiB%s in %zu MiB steps: %.0f ms, unpin %.0f ms",
			 alloc ? " (cudaHostAlloc)" : populate ? " (populated)" : "", step >> 20,
			 (double)(t1 - t0) / 1e6, (double)(t3 - t2) / 1e6);
		report(what);
	}
	const size_t half = (size_t)64 << 20;
	char *p = (char *)mmap(NULL, 2 * half, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			       -1, 0);
	void *d;
	cudaStream_t s;

	if (p == MAP_FAILED)
		return 1;
	memset(p, 1, 2 * half);
	cudaMalloc(&d, half);
	cudaStreamCreate(&s);
	for (int mode = 0; mode < 3; mode++) {
		if (mode == 1)
			cudaHostRegister(p, 2 * half, 0);
		if (mode == 2) {
			cudaHostUnregister(p);
			cudaHostRegister(p, half, 0);
			cudaHostRegister(p + half, half, 0);
		}
		cudaError_t e = cudaSuccess;
		double best = 1e18;
		for (int i = 0; i < 5 && e == cudaSuccess; i++) {
			uint64_t t0 = vgpu_now_ns();

			e = cudaMemcpyAsync(d, p + half / 2, half, cudaMemcpyHostToDevice, s);
			cudaStreamSynchronize(s);
			best = std::min(best, (double)(vgpu_now_ns() - t0));
		}
		printf("64 MiB copy %s: %s", mode == 0 ? "from pageable memory"
					     : mode == 1 ? "from one registration"
							 : "across two registrations",
		       e == cudaSuccess ? "" : cudaGetErrorString(e));
		if (e == cudaSuccess)
			printf("%.1f GB/s", (double)half / best);
		printf("\n");
		cudaGetLastError();
	}
	return 0;
}
