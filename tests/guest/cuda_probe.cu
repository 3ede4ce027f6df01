// SPDX-License-Identifier: MIT
// cuda_probe.cu - an ordinary CUDA program, built with nvcc's defaults
// (static cudart), that the guest libcuda.so.1 tests run: it asks cudart
// what users' programs ask first and prints one line per answer, for
// tests/guest/test-cuda-shim.sh to check.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cuda.h>
#include <cuda_runtime.h>

// A kernel whose parameters have padding between them (a char, then a
// struct aligned to 4): y[i] = s.a * x[i] + y[i] + tag.
struct Scale {
	float a;
	int n;
};

__global__ void scale_add(float *y, const float *x, char tag, Scale s)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;

	if (i < s.n)
		y[i] = s.a * x[i] + y[i] + tag;
}

// A global variable, for cudaMemcpyToSymbol and back.
__device__ float probe_table[4];

// Launch scale_add over 1000 floats and check every result; prints
// "launch <launch error> <sync error> <copies' errors> same|different".
static void launch_check()
{
	const int n = 1000;
	float x[n], y[n];
	float *dx = nullptr, *dy = nullptr;

	for (int i = 0; i < n; i++) {
		x[i] = (float)i;
		y[i] = 1.0f;
	}
	cudaError_t a = cudaMalloc(&dx, sizeof(x)), b = cudaMalloc(&dy, sizeof(y));
	cudaError_t up = cudaMemcpy(dx, x, sizeof(x), cudaMemcpyHostToDevice);
	cudaError_t up2 = cudaMemcpy(dy, y, sizeof(y), cudaMemcpyHostToDevice);
	(void)cudaGetLastError(); // the earlier failures' error, cleared
	scale_add<<<4, 256>>>(dy, dx, 2, Scale{ 0.5f, n });
	cudaError_t launched = cudaGetLastError();
	cudaError_t synced = cudaDeviceSynchronize();
	cudaError_t down = cudaMemcpy(y, dy, sizeof(y), cudaMemcpyDeviceToHost);
	bool same = true;
	for (int i = 0; i < n; i++)
		same = same && y[i] == 0.5f * (float)i + 3.0f;
	printf("launch %d %d %d %s\n", (int)launched, (int)synced,
	       (int)(a || b || up || up2 || down), same ? "same" : "different");
	cudaFree(dx);
	cudaFree(dy);
}

// The same kernel on a stream of its own, between two events, its copies
// async on that stream; then the bad cases a program can make. Prints
// "stream <first error> same|different ms=<elapsed>", then
// "stream-bad <elapsed of an unrecorded event> <a destroyed stream's sync>".
static void stream_check()
{
	const int n = 1000;
	float x[n], y[n];
	float *dx = nullptr, *dy = nullptr, ms = -1.0f;
	cudaStream_t s = nullptr;
	cudaEvent_t start = nullptr, end = nullptr, never = nullptr;
	cudaError_t e[16];
	int k = 0;

	for (int i = 0; i < n; i++) {
		x[i] = (float)i;
		y[i] = 1.0f;
	}
	(void)cudaGetLastError(); // the earlier checks' error, cleared
	e[k++] = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
	e[k++] = cudaEventCreate(&start);
	e[k++] = cudaEventCreate(&end);
	e[k++] = cudaMalloc(&dx, sizeof(x));
	e[k++] = cudaMalloc(&dy, sizeof(y));
	e[k++] = cudaMemcpyAsync(dx, x, sizeof(x), cudaMemcpyHostToDevice, s);
	e[k++] = cudaMemcpyAsync(dy, y, sizeof(y), cudaMemcpyHostToDevice, s);
	e[k++] = cudaEventRecord(start, s);
	scale_add<<<4, 256, 0, s>>>(dy, dx, 2, Scale{ 0.5f, n });
	e[k++] = cudaGetLastError();
	e[k++] = cudaEventRecord(end, s);
	e[k++] = cudaMemcpyAsync(y, dy, sizeof(y), cudaMemcpyDeviceToHost, s);
	e[k++] = cudaStreamSynchronize(s);
	e[k++] = cudaEventSynchronize(end);
	e[k++] = cudaEventElapsedTime(&ms, start, end);
	e[k++] = cudaStreamQuery(s);
	e[k++] = cudaEventQuery(end);
	int first = 0;
	for (int i = 0; i < k && !first; i++)
		first = (int)e[i];
	bool same = true;
	for (int i = 0; i < n; i++)
		same = same && y[i] == 0.5f * (float)i + 3.0f;
	printf("stream %d %s ms=%s\n", first, same ? "same" : "different",
	       ms > 0.0f && ms < 1000.0f ? "ok" : "bad");
	cudaEventCreate(&never);
	cudaError_t unrecorded = cudaEventElapsedTime(&ms, start, never);
	cudaStreamDestroy(s);
	cudaEventDestroy(start);
	cudaEventDestroy(end);
	cudaEventDestroy(never);
	(void)cudaGetLastError();
	printf("stream-bad %d\n", (int)unrecorded);
	cudaFree(dx);
	cudaFree(dy);
}

// 600 launches back to back, more than the guest library keeps posted
// before it reads their replies, a memset among them, then one
// synchronize: every one ran, in order. Prints "posted <launch error>
// <sync error> same|different".
static void posted_check()
{
	const int n = 300, k = 600;
	float x[n], y[n];
	float *dx = nullptr, *dy = nullptr;

	for (int i = 0; i < n; i++)
		x[i] = (float)i;
	(void)cudaGetLastError();
	cudaMalloc(&dx, sizeof(x));
	cudaMalloc(&dy, sizeof(y));
	cudaMemcpy(dx, x, sizeof(x), cudaMemcpyHostToDevice);
	cudaMemset(dy, 0, sizeof(y));
	cudaError_t launched = cudaSuccess;
	for (int i = 0; i < k; i++) {
		// Halfway, a memset, posted too: only the launches after it count.
		if (i == k / 2)
			cudaMemset(dy, 0, sizeof(y));
		scale_add<<<2, 256>>>(dy, dx, 0, Scale{ 1.0f, n });
		if (launched == cudaSuccess)
			launched = cudaGetLastError();
	}
	cudaError_t synced = cudaDeviceSynchronize();
	cudaMemcpy(y, dy, sizeof(y), cudaMemcpyDeviceToHost);
	bool same = true;
	for (int i = 0; i < n; i++)
		same = same && y[i] == (float)(k / 2 * i);
	printf("posted %d %d %s\n", (int)launched, (int)synced, same ? "same" : "different");
	cudaFree(dx);
	cudaFree(dy);
}

// Page-locked host memory, memsets and device-to-device copies: prints
// "memops <first error> same|different zeros|not-zeros", then
// "memops-bad <freeing it again> <mapped host memory> <a memset past the
// end> <a copy from past it> <the next synchronize> <the one after>".
static void memops_check()
{
	const int n = 4096;
	float *h = nullptr, *d1 = nullptr, *d2 = nullptr;
	unsigned int flags = 99;
	cudaError_t e[10];
	int k = 0;

	(void)cudaGetLastError();
	e[k++] = cudaMallocHost(&h, n * sizeof(float));
	if (e[0] != cudaSuccess) {
		printf("memops %d\n", (int)e[0]);
		return;
	}
	for (int i = 0; i < n; i++)
		h[i] = (float)i;
	e[k++] = cudaHostGetFlags(&flags, h + 7);
	e[k++] = cudaMalloc(&d1, n * sizeof(float));
	e[k++] = cudaMalloc(&d2, n * sizeof(float));
	e[k++] = cudaMemcpy(d1, h, n * sizeof(float), cudaMemcpyHostToDevice);
	e[k++] = cudaMemcpy(d2, d1, n * sizeof(float), cudaMemcpyDeviceToDevice);
	e[k++] = cudaMemset(d1, 0, n * sizeof(float));
	e[k++] = cudaMemcpy(h, d2, n * sizeof(float), cudaMemcpyDeviceToHost);
	bool same = flags == 0;
	for (int i = 0; i < n; i++)
		same = same && h[i] == (float)i;
	e[k++] = cudaMemcpy(h, d1, n * sizeof(float), cudaMemcpyDeviceToHost);
	bool zeros = true;
	for (int i = 0; i < n; i++)
		zeros = zeros && h[i] == 0.0f;
	e[k++] = cudaFreeHost(h);
	int first = 0;
	for (int i = 0; i < k && !first; i++)
		first = (int)e[i];
	printf("memops %d %s %s\n", first, same ? "same" : "different", zeros ? "zeros" : "not-zeros");
	cudaError_t again = cudaFreeHost(h);
	void *mapped = nullptr;
	cudaError_t map = cudaHostAlloc(&mapped, 4096, cudaHostAllocMapped);
	if (map == cudaSuccess)
		cudaFreeHost(mapped);
	// A memset past its allocation's end: posted, so the error comes with
	// the next call that synchronizes (as a kernel's own errors do).
	// A call that fails on its own in between keeps it for the next.
	cudaError_t past = cudaMemset(d1, 0, (n + 1) * sizeof(float));
	float one = 0.0f;
	cudaError_t failed = cudaMemcpy(&one, (char *)d1 + ((size_t)1 << 30), sizeof(one),
					cudaMemcpyDeviceToHost);
	cudaError_t synced = cudaDeviceSynchronize();
	cudaError_t after = cudaDeviceSynchronize();
	(void)cudaGetLastError();
	printf("memops-bad %d %d %d %d %d %d\n", (int)again, (int)map, (int)past, (int)failed,
	       (int)synced, (int)after);
	cudaFree(d1);
	cudaFree(d2);
}

// What programs ask of a kernel before they launch it, and a launch with
// attributes (cudaLaunchKernelEx: a priority and a cluster of one block),
// and one cooperatively. Prints "func <first error> threads=<max threads
// per block> blocks=ok|bad potential=ok|bad", "symbol <error>
// same|different", "launch-ex <launch error> <sync error>
// same|different", "coop <launch error> <sync error> same|different", "capture
// <error> <status>", "limit <error> ok|bad".
static void func_check()
{
	const int n = 1000;
	float x[n], y[n];
	float *dx = nullptr, *dy = nullptr;
	cudaFuncAttributes fa = {};
	cudaError_t e[8];
	int k = 0, blocks = 0, grid = 0, block = 0;

	(void)cudaGetLastError();
	e[k++] = cudaFuncGetAttributes(&fa, scale_add);
	e[k++] = cudaFuncSetAttribute(scale_add, cudaFuncAttributeMaxDynamicSharedMemorySize, 1024);
	e[k++] = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, scale_add, 256, 0);
	e[k++] = cudaOccupancyMaxPotentialBlockSize(&grid, &block, scale_add);
	int first = 0;
	for (int i = 0; i < k && !first; i++)
		first = (int)e[i];
	printf("func %d threads=%d blocks=%s potential=%s\n", first, fa.maxThreadsPerBlock,
	       blocks > 0 && blocks <= 64 ? "ok" : "bad",
	       block > 0 && block % 32 == 0 && block <= fa.maxThreadsPerBlock && grid > 0 ? "ok"
											  : "bad");

	const float table[4] = { 1.5f, -2.0f, 3.25f, 8.0f };
	float back[4] = {};
	cudaError_t to = cudaMemcpyToSymbol(probe_table, table, sizeof(table));
	cudaError_t from = cudaMemcpyFromSymbol(back, probe_table, sizeof(back));
	// Its address, as device memory to cudaMemcpyDefault and back.
	void *addr = nullptr;
	const float twice[4] = { 3.0f, -4.0f, 6.5f, 16.0f };
	float again[4] = {};
	cudaError_t at = cudaGetSymbolAddress(&addr, probe_table);
	cudaError_t put = cudaMemcpy(addr, twice, sizeof(twice), cudaMemcpyDefault);
	cudaError_t got = cudaMemcpy(again, addr, sizeof(again), cudaMemcpyDefault);
	cudaError_t se = to ? to : from ? from : at ? at : put ? put : got;
	printf("symbol %d %s\n", (int)se,
	       memcmp(table, back, sizeof(table)) == 0 && memcmp(twice, again, sizeof(twice)) == 0
		       ? "same" : "different");

	for (int i = 0; i < n; i++) {
		x[i] = (float)i;
		y[i] = 1.0f;
	}
	cudaMalloc(&dx, sizeof(x));
	cudaMalloc(&dy, sizeof(y));
	cudaMemcpy(dx, x, sizeof(x), cudaMemcpyHostToDevice);
	cudaMemcpy(dy, y, sizeof(y), cudaMemcpyHostToDevice);
	cudaLaunchAttribute attrs[2];
	attrs[0].id = cudaLaunchAttributePriority;
	attrs[0].val.priority = 0;
	attrs[1].id = cudaLaunchAttributeClusterDimension;
	attrs[1].val.clusterDim.x = 1;
	attrs[1].val.clusterDim.y = 1;
	attrs[1].val.clusterDim.z = 1;
	cudaLaunchConfig_t config = {};
	config.gridDim = dim3(4);
	config.blockDim = dim3(256);
	config.attrs = attrs;
	config.numAttrs = 2;
	cudaError_t launched = cudaLaunchKernelEx(&config, scale_add, dy, (const float *)dx, (char)2,
						  Scale{ 0.5f, n });
	cudaError_t synced = cudaDeviceSynchronize();
	cudaMemcpy(y, dy, sizeof(y), cudaMemcpyDeviceToHost);
	bool same = true;
	for (int i = 0; i < n; i++)
		same = same && y[i] == 0.5f * (float)i + 3.0f;
	printf("launch-ex %d %d %s\n", (int)launched, (int)synced, same ? "same" : "different");

	// A cooperative launch (cudaLaunchCooperativeKernel: the driver's
	// cuLaunchCooperativeKernel), y back at 1 first.
	for (int i = 0; i < n; i++)
		y[i] = 1.0f;
	cudaMemcpy(dy, y, sizeof(y), cudaMemcpyHostToDevice);
	const float *cdx = dx;
	char tag = 2;
	Scale sc{ 0.5f, n };
	void *args[] = { &dy, &cdx, &tag, &sc };
	launched = cudaLaunchCooperativeKernel((const void *)scale_add, dim3(4), dim3(256), args, 0, 0);
	synced = cudaDeviceSynchronize();
	cudaMemcpy(y, dy, sizeof(y), cudaMemcpyDeviceToHost);
	same = true;
	for (int i = 0; i < n; i++)
		same = same && y[i] == 0.5f * (float)i + 3.0f;
	printf("coop %d %d %s\n", (int)launched, (int)synced, same ? "same" : "different");

	cudaStreamCaptureStatus status = cudaStreamCaptureStatusActive;
	e[0] = cudaStreamIsCapturing(0, &status);
	printf("capture %d %d\n", (int)e[0], (int)status);
	size_t stack = 0;
	e[0] = cudaDeviceGetLimit(&stack, cudaLimitStackSize);
	printf("limit %d %s\n", (int)e[0], stack > 0 ? "ok" : "bad");
	// cudaDeviceSetLimit: the malloc heap to 16 MiB and back (cudaDeviceGetLimit
	// reads it), the persisting L2 set-aside refused.
	size_t heap0 = 0, heap = 0;
	e[0] = cudaDeviceGetLimit(&heap0, cudaLimitMallocHeapSize);
	e[1] = cudaDeviceSetLimit(cudaLimitMallocHeapSize, (size_t)16 << 20);
	e[2] = cudaDeviceGetLimit(&heap, cudaLimitMallocHeapSize);
	e[3] = cudaDeviceSetLimit(cudaLimitMallocHeapSize, heap0);
	cudaError_t l2 = cudaDeviceSetLimit(cudaLimitPersistingL2CacheSize, (size_t)1 << 20);
	(void)cudaGetLastError();
	printf("setlimit %d %d %d %d heap=%zu l2=%d\n", (int)e[0], (int)e[1], (int)e[2], (int)e[3],
	       heap >> 20, (int)l2);
	cudaFree(dx);
	cudaFree(dy);
}

// Copies whose direction the pointers tell (cudaMemcpyDefault), and what
// each kind of pointer is. Prints "unified <first error> same|different
// types=<device>,<pinned>,<pageable>".
static void unified_check()
{
	const int n = 4096;
	unsigned char h[n], back[n];
	unsigned char *d = nullptr, *p = nullptr;
	cudaPointerAttributes ad = {}, ap = {}, ah = {};
	cudaError_t e[10];
	int k = 0;

	for (int i = 0; i < n; i++)
		h[i] = (unsigned char)(i * 13 + 1);
	(void)cudaGetLastError();
	e[k++] = cudaMalloc(&d, n);
	e[k++] = cudaMallocHost(&p, n);
	e[k++] = cudaMemcpy(d, h, n, cudaMemcpyDefault);
	e[k++] = cudaMemcpy(p, d, n, cudaMemcpyDefault);
	e[k++] = cudaMemcpyAsync(d + n / 2, p, n / 2, cudaMemcpyDefault, 0);
	e[k++] = cudaMemcpy(back, d, n, cudaMemcpyDefault);
	e[k++] = cudaPointerGetAttributes(&ad, d + 100);
	e[k++] = cudaPointerGetAttributes(&ap, p);
	e[k++] = cudaPointerGetAttributes(&ah, h);
	int first = 0;
	for (int i = 0; i < k && !first; i++)
		first = (int)e[i];
	bool same = memcmp(p, h, n) == 0 && memcmp(back, h, n / 2) == 0 &&
		    memcmp(back + n / 2, h, n / 2) == 0;
	printf("unified %d %s types=%d,%d,%d\n", first, same ? "same" : "different", (int)ad.type,
	       (int)ap.type, (int)ah.type);
	cudaFreeHost(p);
	cudaFree(d);
}

// Memory the program registers (cudaHostRegister): anonymous pages, part
// of a heap block, a shared mapping that must stay shared, mapped
// registration. Prints "register <first error> same|different
// kept|lost shared|cut mapped=<error>".
static void register_check()
{
	const size_t n = 1 << 20, odd = 10000;
	unsigned char *a = (unsigned char *)mmap(nullptr, n, PROT_READ | PROT_WRITE,
						  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *h = (unsigned char *)malloc(odd + 3), *d = nullptr;
	int fd = memfd_create("probe", 0);
	cudaError_t e[16];
	int k = 0;

	if (a == MAP_FAILED || !h || fd < 0 || ftruncate(fd, 4096) != 0) {
		printf("register setup-failed\n");
		return;
	}
	unsigned char *s1 = (unsigned char *)mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
						   fd, 0);
	unsigned char *s2 = (unsigned char *)mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
						   fd, 0);
	for (size_t i = 0; i < n; i++)
		a[i] = (unsigned char)(i * 7 + 5);
	for (size_t i = 0; i < odd; i++)
		h[3 + i] = (unsigned char)(i * 3 + 1);
	(void)cudaGetLastError();
	e[k++] = cudaMalloc(&d, n);
	e[k++] = cudaHostRegister(a, n, cudaHostRegisterDefault);
	e[k++] = cudaHostRegister(h + 3, odd, cudaHostRegisterDefault);
	e[k++] = cudaHostRegister(s1, 4096, cudaHostRegisterDefault);
	e[k++] = cudaMemcpy(d, a, n, cudaMemcpyHostToDevice);
	memset(a, 0, n);
	e[k++] = cudaMemcpy(a, d, n, cudaMemcpyDeviceToHost);
	e[k++] = cudaMemcpy(d, h + 3, odd, cudaMemcpyHostToDevice);
	e[k++] = cudaMemcpy(h + 3 + odd / 2, d, odd / 2, cudaMemcpyDeviceToHost);
	s2[100] = 42;
	bool shared = s1[100] == 42;
	e[k++] = cudaHostUnregister(a);
	e[k++] = cudaHostUnregister(h + 3);
	e[k++] = cudaHostUnregister(s1);
	bool same = true;
	for (size_t i = 0; i < n; i++)
		same = same && a[i] == (unsigned char)(i * 7 + 5);
	for (size_t i = 0; i < odd / 2; i++)
		same = same && h[3 + odd / 2 + i] == (unsigned char)(i * 3 + 1);
	// After unregistering, the memory is the program's as before.
	a[n - 1] = 9;
	bool kept = a[n - 1] == 9 && a[0] == 5;
	s2[200] = 43;
	shared = shared && s1[200] == 43;
	cudaError_t mapped = cudaHostRegister(a, 4096, cudaHostRegisterMapped);
	if (mapped == cudaSuccess)
		cudaHostUnregister(a);
	// Whole pages of this thread's own stack: registered where they are.
	alignas(4096) unsigned char st[8192];
	for (size_t i = 0; i < sizeof(st); i++)
		st[i] = (unsigned char)i;
	e[k++] = cudaHostRegister(st, sizeof(st), cudaHostRegisterDefault);
	e[k++] = cudaMemcpy(d, st, sizeof(st), cudaMemcpyHostToDevice);
	memset(st, 0, sizeof(st));
	e[k++] = cudaMemcpy(st, d, sizeof(st), cudaMemcpyDeviceToHost);
	e[k++] = cudaHostUnregister(st);
	for (size_t i = 0; i < sizeof(st); i++)
		same = same && st[i] == (unsigned char)i;
	int first = 0;
	for (int i = 0; i < k && !first; i++)
		first = (int)e[i];
	printf("register %d %s %s %s mapped=%d\n", first, same ? "same" : "different",
	       kept ? "kept" : "lost", shared ? "shared" : "cut", (int)mapped);
	cudaFree(d);
	munmap(a, n);
	munmap(s1, 4096);
	munmap(s2, 4096);
	close(fd);
	free(h);
}

// fork(): the child has no context (its CUDA calls fail), and the
// parent's page-locked memory (cudaMallocHost) and registered memory are
// the child's own copies: its writes do not reach the parent. Prints
// "fork <child's cudaMalloc error> pinned=private|shared
// registered=private|shared child=ok|bad".
static void fork_check()
{
	const size_t n = 3 * 4096;
	unsigned char *p = nullptr;
	unsigned char *r = (unsigned char *)mmap(nullptr, n, PROT_READ | PROT_WRITE,
						  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int pipefd[2];

	if (r == MAP_FAILED || cudaMallocHost((void **)&p, n) != cudaSuccess ||
	    cudaHostRegister(r, n, cudaHostRegisterDefault) != cudaSuccess || pipe(pipefd) != 0) {
		printf("fork setup-failed\n");
		return;
	}
	memset(p, 'A', n);
	memset(r, 'B', n);
	pid_t pid = fork();
	if (pid == 0) {
		void *d = nullptr;
		int e = (int)cudaMalloc(&d, 4096);
		// The child sees what the parent wrote, then writes its own.
		int seen = p[n - 1] == 'A' && r[n - 1] == 'B';
		memset(p, 'C', n);
		memset(r, 'D', n);
		int msg[2] = { e, seen && p[0] == 'C' && r[0] == 'D' };
		if (write(pipefd[1], msg, sizeof(msg)) != (ssize_t)sizeof(msg))
			_exit(1);
		_exit(0);
	}
	int msg[2] = { -1, 0 }, status = 0;
	close(pipefd[1]);
	bool got = pid > 0 && read(pipefd[0], msg, sizeof(msg)) == (ssize_t)sizeof(msg);
	if (pid > 0)
		waitpid(pid, &status, 0);
	close(pipefd[0]);
	bool pinned = true, registered = true;
	for (size_t i = 0; i < n; i++) {
		pinned = pinned && p[i] == 'A';
		registered = registered && r[i] == 'B';
	}
	printf("fork %d pinned=%s registered=%s child=%s\n", got ? msg[0] : -1,
	       pinned ? "private" : "shared", registered ? "private" : "shared",
	       got && msg[1] && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : "bad");
	cudaHostUnregister(r);
	cudaFreeHost(p);
	munmap(r, n);
}

// Pitched memory and 2D copies: host (packed) to device (pitched), device
// to device, device to host (rows 512 bytes apart, the padding left as it
// was). Prints "copy2d <first error> same|different pitch=ok|bad".
static void copy2d_check()
{
	const size_t w = 100 * sizeof(float), h = 50, hp = 512;
	float src[100 * 50];
	unsigned char back[512 * 50];
	void *d1 = nullptr, *d2 = nullptr;
	size_t p1 = 0, p2 = 0;
	cudaError_t e[6];
	int k = 0;

	for (size_t i = 0; i < 100 * 50; i++)
		src[i] = (float)i * 0.5f;
	memset(back, 0xee, sizeof(back));
	(void)cudaGetLastError();
	e[k++] = cudaMallocPitch(&d1, &p1, w, h);
	e[k++] = cudaMallocPitch(&d2, &p2, w, h);
	e[k++] = cudaMemcpy2D(d1, p1, src, w, w, h, cudaMemcpyHostToDevice);
	e[k++] = cudaMemcpy2D(d2, p2, d1, p1, w, h, cudaMemcpyDeviceToDevice);
	e[k++] = cudaMemcpy2DAsync(back, hp, d2, p2, w, h, cudaMemcpyDeviceToHost, 0);
	e[k++] = cudaDeviceSynchronize();
	bool same = true;
	for (size_t y = 0; y < h; y++) {
		same = same && memcmp(back + y * hp, (const unsigned char *)src + y * w, w) == 0;
		for (size_t x = w; x < hp; x++)
			same = same && back[y * hp + x] == 0xee;
	}
	int first = 0;
	for (int i = 0; i < k && !first; i++)
		first = (int)e[i];
	printf("copy2d %d %s pitch=%s\n", first, same ? "same" : "different",
	       p1 >= w && p1 % 256 == 0 && p1 == p2 ? "ok" : "bad");
	cudaFree(d1);
	cudaFree(d2);
}

// A CUDA array and a texture of it: 37 x 5 floats copied in from the host
// (cudaMemcpy2DToArray), read by a kernel through a texture object
// (point sampling at each element's centre), and copied back out
// (cudaMemcpy2DFromArray); a second array filled from the first
// (cudaMemcpy2DArrayToArray) and through device memory; its descriptor;
// the texture's descriptors queried back (and no view: an error).
// Prints "texture <first error> kernel=same|different back=same|different
// copies=same|different desc=ok|bad queries=ok|bad".
__global__ void tex_read(float *out, cudaTextureObject_t t, int w, int h)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;

	if (i < w * h)
		out[i] = tex2D<float>(t, (float)(i % w) + 0.5f, (float)(i / w) + 0.5f);
}

static void texture_check()
{
	const int w = 37, h = 5;
	float src[w * h], read[w * h], back[w * h], again[w * h];
	cudaChannelFormatDesc cd = cudaCreateChannelDesc<float>(), got = {};
	cudaArray_t a = nullptr, b = nullptr;
	cudaTextureObject_t t = 0;
	float *out = nullptr, *lin = nullptr;
	cudaResourceDesc res = {};
	cudaTextureDesc td = {};
	cudaExtent ext = {};
	unsigned flags = 1;
	cudaError_t e[16];
	int k = 0;

	for (int i = 0; i < w * h; i++)
		src[i] = (float)i * 0.25f + 1.0f;
	(void)cudaGetLastError();
	e[k++] = cudaMallocArray(&a, &cd, w, h);
	e[k++] = cudaMallocArray(&b, &cd, w, h);
	e[k++] = cudaMemcpy2DToArray(a, 0, 0, src, w * sizeof(float), w * sizeof(float), h,
				     cudaMemcpyHostToDevice);
	res.resType = cudaResourceTypeArray;
	res.res.array.array = a;
	td.addressMode[0] = td.addressMode[1] = cudaAddressModeClamp;
	td.filterMode = cudaFilterModePoint;
	td.readMode = cudaReadModeElementType;
	e[k++] = cudaCreateTextureObject(&t, &res, &td, nullptr);
	e[k++] = cudaMalloc(&out, sizeof(read));
	e[k++] = cudaMalloc(&lin, sizeof(read));
	tex_read<<<(w * h + 127) / 128, 128>>>(out, t, w, h);
	e[k++] = cudaGetLastError();
	e[k++] = cudaMemcpy(read, out, sizeof(read), cudaMemcpyDeviceToHost);
	e[k++] = cudaMemcpy2DFromArray(back, w * sizeof(float), a, 0, 0, w * sizeof(float), h,
				       cudaMemcpyDeviceToHost);
	e[k++] = cudaMemcpy2DArrayToArray(b, 0, 0, a, 0, 0, w * sizeof(float), h);
	e[k++] = cudaMemcpy2DFromArray(lin, w * sizeof(float), b, 0, 0, w * sizeof(float), h,
				       cudaMemcpyDeviceToDevice);
	e[k++] = cudaMemcpy(again, lin, sizeof(again), cudaMemcpyDeviceToHost);
	e[k++] = cudaArrayGetInfo(&got, &ext, &flags, a);
	cudaResourceDesc rq = {};
	cudaTextureDesc tq = {};
	cudaResourceViewDesc vq = {};
	e[k++] = cudaGetTextureObjectResourceDesc(&rq, t);
	e[k++] = cudaGetTextureObjectTextureDesc(&tq, t);
	cudaError_t no_view = cudaGetTextureObjectResourceViewDesc(&vq, t);
	(void)cudaGetLastError();
	bool queries = rq.resType == cudaResourceTypeArray && rq.res.array.array == a &&
		       tq.filterMode == cudaFilterModePoint &&
		       tq.addressMode[1] == cudaAddressModeClamp && no_view != cudaSuccess;
	e[k++] = cudaDestroyTextureObject(t);
	e[k++] = cudaFreeArray(a);
	e[k++] = cudaFreeArray(b);
	cudaFree(out);
	cudaFree(lin);
	int first = 0;
	for (int i = 0; i < k && !first; i++)
		first = (int)e[i];
	printf("texture %d kernel=%s back=%s copies=%s desc=%s queries=%s\n", first,
	       memcmp(read, src, sizeof(src)) ? "different" : "same",
	       memcmp(back, src, sizeof(src)) ? "different" : "same",
	       memcmp(again, src, sizeof(src)) ? "different" : "same",
	       got.x == 32 && got.f == cudaChannelFormatKindFloat && ext.width == (size_t)w &&
			       ext.height == (size_t)h && ext.depth == 0 && flags == 0
		       ? "ok"
		       : "bad",
	       queries ? "ok" : "bad");
}

// A 2D memset (cudaMemset2D into pitched memory, every row but not the
// padding), and host functions in a stream (cudaLaunchHostFunc,
// cudaStreamAddCallback: each runs once the work before it is done, the
// callback told the stream's status). Prints "memset2d <first error>
// same|different" and "hostfn <first error> order=ok|bad status=<status>".
static void host_fn(void *arg)
{
	int *ran = (int *)arg;

	*ran = ran[1] == 7 ? 1 : -1; // ran[1]: copied back before it
}

static void host_callback(cudaStream_t, cudaError_t status, void *arg)
{
	((int *)arg)[2] = 100 + (int)status;
}

static void memset2d_check()
{
	const size_t w = 96, h = 20;
	unsigned char back[96 * 20];
	void *d = nullptr;
	size_t pitch = 0;
	cudaError_t e[8];
	int k = 0;

	(void)cudaGetLastError();
	e[k++] = cudaMallocPitch(&d, &pitch, w, h);
	e[k++] = cudaMemset(d, 0x11, pitch * h);
	e[k++] = cudaMemset2D(d, pitch, 0x5a, w - 32, h);
	e[k++] = cudaMemcpy2D(back, w, d, pitch, w, h, cudaMemcpyDeviceToHost);
	bool same = true;
	for (size_t y = 0; y < h; y++)
		for (size_t x = 0; x < w; x++)
			same = same && back[y * w + x] == (x < w - 32 ? 0x5a : 0x11);
	int first = 0;
	for (int i = 0; i < k && !first; i++)
		first = (int)e[i];
	printf("memset2d %d %s\n", first, same ? "same" : "different");

	// In page-locked memory, so that the copy back is asynchronous and
	// only the host function's wait for the stream orders them.
	int *state = nullptr, *dv = nullptr, seven = 7;
	cudaStream_t s = nullptr;
	k = 0;
	e[k++] = cudaStreamCreate(&s);
	e[k++] = cudaMallocHost(&state, 3 * sizeof(int));
	if (e[0] != cudaSuccess || e[1] != cudaSuccess) {
		printf("hostfn %d\n", (int)(e[0] ? e[0] : e[1]));
		cudaFree(d);
		return;
	}
	memset(state, 0, 3 * sizeof(int));
	e[k++] = cudaMalloc(&dv, sizeof(int));
	e[k++] = cudaMemcpyAsync(dv, &seven, sizeof(int), cudaMemcpyHostToDevice, s);
	e[k++] = cudaMemcpyAsync(&state[1], dv, sizeof(int), cudaMemcpyDeviceToHost, s);
	e[k++] = cudaLaunchHostFunc(s, host_fn, state);
	e[k++] = cudaStreamAddCallback(s, host_callback, state, 0);
	e[k++] = cudaStreamSynchronize(s);
	first = 0;
	for (int i = 0; i < k && !first; i++)
		first = (int)e[i];
	printf("hostfn %d order=%s status=%d\n", first, state[0] == 1 ? "ok" : "bad", state[2] - 100);
	cudaStreamDestroy(s);
	cudaFreeHost(state);
	cudaFree(dv);
	cudaFree(d);
}

// A graph built node by node, as simpleCudaGraphs builds one: x copied in
// from page-locked memory and y set to 1 by a memset (the two roots), an
// empty node after both, scale_add after it, y copied back, a host node
// that checks y; launched three times. Then a kernel node's parameters
// changed in the executable graph; the graph changed and the executable
// graph updated from it (launched before, with its own parameters still);
// a clone; the graph as another's child; the
// queries; an entry point not served (cudaIpcGetMemHandle: no memory is
// shared between processes) and a cycle.
// Prints "built-graph <first error> host=<right calls>/<calls>
// nodes=<n> roots=<n> edges=<n> set=same update=same clone=same
// child=same ipc=<error> cycle=<error>".
struct host_check {
	const float *x, *y;
	int n;
	float a;
	int calls, right;
};

static void CUDART_CB check_y(void *arg)
{
	host_check *c = (host_check *)arg;
	bool same = true;

	for (int i = 0; i < c->n; i++)
		same = same && c->y[i] == c->a * c->x[i] + 1.0f + 2.0f;
	c->calls++;
	c->right += same;
}

static void built_graph_check()
{
	const int n = 1000;
	float *hx = nullptr, *hy = nullptr, *dx = nullptr, *dy = nullptr;
	cudaStream_t s = nullptr;
	cudaGraph_t g = nullptr, clone = nullptr, parent = nullptr;
	cudaGraphExec_t ge = nullptr, ce = nullptr, pe = nullptr, bad = nullptr;
	cudaGraphNode_t in = nullptr, set = nullptr, join = nullptr, kernel = nullptr, out = nullptr;
	cudaGraphNode_t check = nullptr, kc = nullptr, child = nullptr;
	cudaError_t e[40];
	int k = 0;
	host_check hc = {};

	(void)cudaGetLastError();
	e[k++] = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
	e[k++] = cudaMallocHost(&hx, n * sizeof(float));
	e[k++] = cudaMallocHost(&hy, n * sizeof(float));
	e[k++] = cudaMalloc(&dx, n * sizeof(float));
	e[k++] = cudaMalloc(&dy, n * sizeof(float));
	if (!hx || !hy) {
		printf("built-graph %d\n", (int)e[1] ? (int)e[1] : (int)e[2]);
		return;
	}
	for (int i = 0; i < n; i++)
		hx[i] = (float)i;
	hc = host_check{ hx, hy, n, 0.5f, 0, 0 };
	char tag = 2;
	Scale sc{ 0.5f, n };
	void *args[] = { &dy, &dx, &tag, &sc };
	cudaKernelNodeParams kp = {};
	kp.func = (void *)scale_add;
	kp.gridDim = dim3(4);
	kp.blockDim = dim3(256);
	kp.kernelParams = args;
	cudaMemsetParams mp = {};
	mp.dst = dy;
	mp.value = 0x3f800000u; // 1.0f
	mp.elementSize = 4;
	mp.width = n;
	mp.height = 1;
	cudaHostNodeParams hp = {};
	hp.fn = check_y;
	hp.userData = &hc;
	e[k++] = cudaGraphCreate(&g, 0);
	e[k++] = cudaGraphAddMemcpyNode1D(&in, g, nullptr, 0, dx, hx, n * sizeof(float),
					  cudaMemcpyHostToDevice);
	e[k++] = cudaGraphAddMemsetNode(&set, g, nullptr, 0, &mp);
	cudaGraphNode_t roots[2] = { in, set };
	e[k++] = cudaGraphAddEmptyNode(&join, g, roots, 2);
	e[k++] = cudaGraphAddKernelNode(&kernel, g, &join, 1, &kp);
	sc.a = 9.0f; // the node keeps the parameters it was given
	e[k++] = cudaGraphAddMemcpyNode1D(&out, g, &kernel, 1, hy, dy, n * sizeof(float),
					  cudaMemcpyDeviceToHost);
	e[k++] = cudaGraphAddHostNode(&check, g, &out, 1, &hp);
	e[k++] = cudaGraphInstantiate(&ge, g, 0);
	for (int i = 0; i < 3 && ge; i++)
		e[k++] = cudaGraphLaunch(ge, s);
	e[k++] = cudaStreamSynchronize(s);
	// The kernel's scale changed in the executable graph only.
	sc.a = 2.0f;
	e[k++] = cudaGraphExecKernelNodeSetParams(ge, kernel, &kp);
	hc.a = 2.0f;
	int before = hc.right;
	e[k++] = cudaGraphLaunch(ge, s);
	e[k++] = cudaStreamSynchronize(s);
	bool set_same = hc.right == before + 1;
	// The graph's kernel node changed: the executable graph keeps its own
	// until it is updated from the graph.
	sc.a = 3.0f;
	e[k++] = cudaGraphKernelNodeSetParams(kernel, &kp);
	before = hc.right;
	e[k++] = cudaGraphLaunch(ge, s);
	e[k++] = cudaStreamSynchronize(s);
	bool kept = hc.right == before + 1;
	cudaGraphExecUpdateResultInfo info = {};
	e[k++] = cudaGraphExecUpdate(ge, g, &info);
	hc.a = 3.0f;
	before = hc.right;
	e[k++] = cudaGraphLaunch(ge, s);
	e[k++] = cudaStreamSynchronize(s);
	bool update_same = kept && hc.right == before + 1 && info.result == cudaGraphExecUpdateSuccess;
	// A clone, its kernel node found and read back, launched.
	cudaKernelNodeParams back = {};
	e[k++] = cudaGraphClone(&clone, g);
	e[k++] = cudaGraphNodeFindInClone(&kc, kernel, clone);
	e[k++] = cudaGraphKernelNodeGetParams(kc, &back);
	e[k++] = cudaGraphInstantiate(&ce, clone, 0);
	before = hc.right;
	e[k++] = cudaGraphLaunch(ce, s);
	e[k++] = cudaStreamSynchronize(s);
	bool clone_same = hc.right == before + 1 && back.gridDim.x == 4 && back.blockDim.x == 256 &&
			  back.kernelParams && ((Scale *)back.kernelParams[3])->a == sc.a;
	// The graph as the only node of another.
	e[k++] = cudaGraphCreate(&parent, 0);
	e[k++] = cudaGraphAddChildGraphNode(&child, parent, nullptr, 0, g);
	e[k++] = cudaGraphInstantiate(&pe, parent, 0);
	before = hc.right;
	e[k++] = cudaGraphLaunch(pe, s);
	e[k++] = cudaStreamSynchronize(s);
	bool child_same = hc.right == before + 1;
	size_t nodes = 0, roots_n = 0, edges = 0;
	e[k++] = cudaGraphGetNodes(g, nullptr, &nodes);
	e[k++] = cudaGraphGetRootNodes(g, nullptr, &roots_n);
	e[k++] = cudaGraphGetEdges(g, nullptr, nullptr, nullptr, &edges);
	int first = 0;
	for (int i = 0; i < k && !first; i++)
		first = (int)e[i];
	// Not served: memory shared with another process.
	cudaIpcMemHandle_t ih;
	cudaError_t ipc_e = cudaIpcGetMemHandle(&ih, dx);
	// A cycle: the memset after the host node.
	(void)cudaGraphAddDependencies(g, &check, &set, nullptr, 1);
	cudaError_t cycle = cudaGraphInstantiate(&bad, g, 0);
	(void)cudaGetLastError();
	printf("built-graph %d host=%d/%d nodes=%zu roots=%zu edges=%zu set=%s update=%s "
	       "clone=%s child=%s ipc=%d cycle=%d\n",
	       first, hc.right, hc.calls, nodes, roots_n, edges, set_same ? "same" : "different",
	       update_same ? "same" : "different", clone_same ? "same" : "different",
	       child_same ? "same" : "different", (int)ipc_e, (int)cycle);
	if (pe)
		cudaGraphExecDestroy(pe);
	if (ce)
		cudaGraphExecDestroy(ce);
	if (ge)
		cudaGraphExecDestroy(ge);
	cudaGraphDestroy(parent);
	cudaGraphDestroy(clone);
	cudaGraphDestroy(g);
	cudaStreamDestroy(s);
	cudaFreeHost(hx);
	cudaFreeHost(hy);
	cudaFree(dx);
	cudaFree(dy);
}

// Memory nodes in graphs built node by node, as graphMemoryNodes uses
// them. Graph A allocates 1 MiB (its address given at once), sets it to
// 7s, copies it to page-locked memory and frees it: launched twice, the
// bytes right each time. Graph B allocates and sets 9s, no free node:
// launched, its memory read outside the graph after it; launched again
// before it is freed (cudaErrorInvalidValue); freed by cudaFree, launched,
// freed by cudaFreeAsync; instantiated anew to free on launch, launched
// twice, freed. The device's graph memory in use while B's is live; A
// cloned, instantiated a second time, a node and an edge of it removed
// (each refused), a free node for memory no graph allocated
// (cudaErrorInvalidValue). Graph F frees B's allocation, and so may a
// third graph (NVIDIA's driver allows it); B launched, then destroyed, F launched: the
// memory freed (cudaFree of it then refused). A child graph given memory
// nodes (refused). Once every graph is gone and the device's graph memory
// trimmed, none is left.
// Prints "graph-mem <first error> a=<right>/2 b=<same|different>
// relaunch=<error> auto=<error> used=<MiB> clone=<error> twice=<error>
// lose=<error>/<error> stray=<error> other=<error>/<error> child=<error>
// left=<MiB>".
static void graph_mem_check()
{
	const size_t bytes = 1 << 20;
	unsigned char *h = nullptr;
	void *plain = nullptr;
	cudaStream_t s = nullptr;
	cudaGraph_t a = nullptr, b = nullptr, c = nullptr, f = nullptr, f2 = nullptr;
	cudaGraph_t outer = nullptr, kid = nullptr, inner = nullptr;
	cudaGraphExec_t ae = nullptr, be = nullptr, ae2 = nullptr, fe = nullptr;
	cudaGraphNode_t alloc = nullptr, set = nullptr, out = nullptr, fr = nullptr;
	cudaGraphNode_t balloc = nullptr, bset = nullptr, stray = nullptr, ff = nullptr, ff2 = nullptr;
	cudaGraphNode_t cn = nullptr, empty = nullptr, in_kid = nullptr;
	cudaError_t e[48];
	int k = 0, right = 0;

	(void)cudaGetLastError();
	e[k++] = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
	e[k++] = cudaMallocHost(&h, bytes);
	e[k++] = cudaMalloc(&plain, 256);
	if (!h) {
		printf("graph-mem %d\n", (int)e[1]);
		return;
	}
	cudaMemAllocNodeParams ap = {};
	ap.poolProps.allocType = cudaMemAllocationTypePinned;
	ap.poolProps.location.type = cudaMemLocationTypeDevice;
	ap.poolProps.location.id = 0;
	ap.bytesize = bytes;
	cudaMemsetParams mp = {};
	mp.value = 7;
	mp.elementSize = 1;
	mp.width = bytes;
	mp.height = 1;
	e[k++] = cudaGraphCreate(&a, 0);
	e[k++] = cudaGraphAddMemAllocNode(&alloc, a, nullptr, 0, &ap);
	void *dp = ap.dptr;
	mp.dst = dp;
	e[k++] = cudaGraphAddMemsetNode(&set, a, &alloc, 1, &mp);
	e[k++] = cudaGraphAddMemcpyNode1D(&out, a, &set, 1, h, dp, bytes, cudaMemcpyDeviceToHost);
	e[k++] = cudaGraphAddMemFreeNode(&fr, a, &out, 1, dp);
	e[k++] = cudaGraphInstantiate(&ae, a, 0);
	for (int run = 0; run < 2 && ae; run++) {
		bool same = true;

		memset(h, 0, bytes);
		e[k++] = cudaGraphLaunch(ae, s);
		e[k++] = cudaStreamSynchronize(s);
		for (size_t i = 0; i < bytes; i++)
			same = same && h[i] == 7;
		right += same;
	}
	e[k++] = cudaGraphCreate(&b, 0);
	e[k++] = cudaGraphAddMemAllocNode(&balloc, b, nullptr, 0, &ap);
	void *bp = ap.dptr;
	mp.dst = bp;
	mp.value = 9;
	e[k++] = cudaGraphAddMemsetNode(&bset, b, &balloc, 1, &mp);
	e[k++] = cudaGraphInstantiate(&be, b, 0);
	e[k++] = cudaGraphLaunch(be, s);
	e[k++] = cudaMemcpyAsync(h, bp, bytes, cudaMemcpyDeviceToHost, s);
	e[k++] = cudaStreamSynchronize(s);
	bool b_same = true;
	for (size_t i = 0; i < bytes; i++)
		b_same = b_same && h[i] == 9;
	unsigned long long used = 0, left = 1;
	e[k++] = cudaDeviceGetGraphMemAttribute(0, cudaGraphMemAttrUsedMemCurrent, &used);
	cudaError_t relaunch = cudaGraphLaunch(be, s);
	(void)cudaGetLastError();
	e[k++] = cudaFree(bp);
	e[k++] = cudaGraphLaunch(be, s);
	e[k++] = cudaFreeAsync(bp, s);
	e[k++] = cudaStreamSynchronize(s);
	e[k++] = cudaGraphExecDestroy(be);
	be = nullptr;
	e[k++] = cudaGraphInstantiateWithFlags(&be, b, cudaGraphInstantiateFlagAutoFreeOnLaunch);
	cudaError_t auto_e = cudaGraphLaunch(be, s);
	if (auto_e == cudaSuccess)
		auto_e = cudaGraphLaunch(be, s);
	e[k++] = cudaStreamSynchronize(s);
	e[k++] = cudaFree(bp);
	cudaError_t clone_e = cudaGraphClone(&c, a);
	cudaError_t twice_e = cudaGraphInstantiate(&ae2, a, 0);
	cudaError_t lose_node = cudaGraphDestroyNode(set);
	cudaError_t lose_edge = cudaGraphRemoveDependencies(a, &alloc, &set, nullptr, 1);
	cudaError_t stray_e = cudaGraphAddMemFreeNode(&stray, b, nullptr, 0, plain);
	(void)cudaGetLastError();
	// F frees B's allocation, after B is gone.
	e[k++] = cudaGraphCreate(&f, 0);
	e[k++] = cudaGraphAddMemFreeNode(&ff, f, nullptr, 0, bp);
	e[k++] = cudaGraphCreate(&f2, 0);
	cudaError_t again_e = cudaGraphAddMemFreeNode(&ff2, f2, nullptr, 0, bp);
	(void)cudaGetLastError();
	e[k++] = cudaGraphInstantiate(&fe, f, 0);
	e[k++] = cudaGraphLaunch(be, s);
	e[k++] = cudaStreamSynchronize(s);
	e[k++] = cudaGraphExecDestroy(be);
	be = nullptr;
	e[k++] = cudaGraphDestroy(b);
	b = nullptr;
	e[k++] = cudaGraphLaunch(fe, s);
	e[k++] = cudaStreamSynchronize(s);
	cudaError_t gone_e = cudaFree(bp);
	(void)cudaGetLastError();
	// A child graph's own graph given a memory node.
	e[k++] = cudaGraphCreate(&outer, 0);
	e[k++] = cudaGraphCreate(&kid, 0);
	e[k++] = cudaGraphAddEmptyNode(&empty, kid, nullptr, 0);
	e[k++] = cudaGraphAddChildGraphNode(&cn, outer, nullptr, 0, kid);
	e[k++] = cudaGraphChildGraphNodeGetGraph(cn, &inner);
	cudaError_t child_e = inner ? cudaGraphAddMemAllocNode(&in_kid, inner, nullptr, 0, &ap)
				    : cudaErrorInvalidValue;
	(void)cudaGetLastError();
	int first = 0;
	for (int i = 0; i < k && !first; i++)
		first = (int)e[i];
	if (ae2)
		cudaGraphExecDestroy(ae2);
	if (ae)
		cudaGraphExecDestroy(ae);
	if (fe)
		cudaGraphExecDestroy(fe);
	if (c)
		cudaGraphDestroy(c);
	cudaGraphDestroy(a);
	cudaGraphDestroy(f);
	cudaGraphDestroy(f2);
	cudaGraphDestroy(outer);
	cudaGraphDestroy(kid);
	cudaStreamSynchronize(s);
	cudaDeviceGraphMemTrim(0);
	cudaDeviceGetGraphMemAttribute(0, cudaGraphMemAttrReservedMemCurrent, &left);
	printf("graph-mem %d a=%d/2 b=%s relaunch=%d auto=%d used=%llu clone=%d twice=%d "
	       "lose=%d/%d stray=%d other=%d/%d child=%d left=%llu\n",
	       first, right, b_same ? "same" : "different", (int)relaunch, (int)auto_e, used >> 20,
	       (int)clone_e, (int)twice_e, (int)lose_node, (int)lose_edge, (int)stray_e,
	       (int)again_e, (int)gone_e, (int)child_e, left >> 20);
	cudaStreamDestroy(s);
	cudaFreeHost(h);
	cudaFree(plain);
}

static void count_call(void *calls)
{
	++*(int *)calls;
}

// A capture the host's graph cannot hold, as simpleCudaGraphs and
// graphMemoryNodes make one: forked to a second stream by an event, an
// allocation in stream order, x copied in from pageable memory, a memset
// on the second stream joined back by another event, scale_add, the
// result copied out to pageable memory, a host function, the allocation
// freed; the graph destroyed once instantiated; launched three times with
// new x each time. Then a capture holding a launch with an attribute
// first and a pageable copy after it; a capture of a 2D device copy
// alone (the worker's graph); a graph built node by node launched into
// a capture (refused, as NVIDIA's driver refuses it). Prints
// "capture-guest <first error> right=<launches right>/3 calls=<host
// function's calls> during=<second stream's status in the capture>
// after=<its status after> mixed=<the copy's error>/<the end's error>
// 2d=same|different replay=<the launch's error>/<the end's error>".
static void capture_guest_check()
{
	const int n = 1000;
	float *x = (float *)malloc(n * sizeof(float)), *y = (float *)malloc(n * sizeof(float));
	float *dx = nullptr, *dy = nullptr;
	cudaStream_t s1 = nullptr, s2 = nullptr;
	cudaEvent_t fork = nullptr, join = nullptr;
	cudaGraph_t g = nullptr;
	cudaGraphExec_t ge = nullptr;
	cudaStreamCaptureStatus during = cudaStreamCaptureStatusNone, after = during;
	cudaError_t e[48];
	int k = 0, calls = 0, right = 0;

	(void)cudaGetLastError();
	e[k++] = cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking);
	e[k++] = cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking);
	e[k++] = cudaEventCreate(&fork);
	e[k++] = cudaEventCreate(&join);
	e[k++] = cudaMalloc(&dy, n * sizeof(float));
	e[k++] = cudaStreamBeginCapture(s1, cudaStreamCaptureModeGlobal);
	e[k++] = cudaEventRecord(fork, s1);
	e[k++] = cudaStreamWaitEvent(s2, fork, 0);
	e[k++] = cudaStreamIsCapturing(s2, &during);
	e[k++] = cudaMallocAsync(&dx, n * sizeof(float), s1);
	e[k++] = cudaMemcpyAsync(dx, x, n * sizeof(float), cudaMemcpyHostToDevice, s1);
	e[k++] = cudaMemsetAsync(dy, 0, n * sizeof(float), s2);
	e[k++] = cudaEventRecord(join, s2);
	e[k++] = cudaStreamWaitEvent(s1, join, 0);
	scale_add<<<4, 256, 0, s1>>>(dy, dx, 0, Scale{ 2.0f, n });
	e[k++] = cudaGetLastError();
	e[k++] = cudaMemcpyAsync(y, dy, n * sizeof(float), cudaMemcpyDeviceToHost, s1);
	e[k++] = cudaLaunchHostFunc(s1, count_call, &calls);
	e[k++] = cudaFreeAsync(dx, s1);
	e[k++] = cudaStreamEndCapture(s1, &g);
	e[k++] = cudaStreamIsCapturing(s2, &after);
	e[k++] = cudaGraphInstantiate(&ge, g, 0);
	e[k++] = cudaGraphDestroy(g);
	for (int r = 0; r < 3 && ge; r++) {
		for (int i = 0; i < n; i++) {
			x[i] = (float)(i + r);
			y[i] = -1.0f;
		}
		bool ok = cudaGraphLaunch(ge, s1) == cudaSuccess &&
			  cudaStreamSynchronize(s1) == cudaSuccess && calls == r + 1;
		for (int i = 0; i < n; i++)
			ok = ok && y[i] == 2.0f * (float)(i + r);
		right += ok;
	}
	// The host's graph only (a launch with an attribute), then work only
	// the guest's can do.
	cudaLaunchAttribute attr;
	attr.id = cudaLaunchAttributePriority;
	attr.val.priority = 0;
	cudaLaunchConfig_t config = {};
	config.gridDim = dim3(4);
	config.blockDim = dim3(256);
	config.stream = s1;
	config.attrs = &attr;
	config.numAttrs = 1;
	cudaGraph_t g2 = nullptr;
	cudaError_t begun = cudaStreamBeginCapture(s1, cudaStreamCaptureModeGlobal);
	cudaError_t ex = cudaLaunchKernelEx(&config, scale_add, dy, (const float *)dy, (char)0,
					    Scale{ 1.0f, n });
	cudaError_t mixed = cudaMemcpyAsync(dy, x, 16, cudaMemcpyHostToDevice, s1);
	cudaError_t ended = cudaStreamEndCapture(s1, &g2);
	(void)cudaGetLastError();
	if (begun != cudaSuccess || ex != cudaSuccess)
		mixed = begun != cudaSuccess ? begun : ex;

	// A 2D device-to-device copy captured alone: dy's first 500 floats
	// as 2 rows of 250 into dx2's rows 1000 bytes apart.
	float *dx2 = nullptr;
	cudaGraph_t g3 = nullptr;
	cudaGraphExec_t ge3 = nullptr;
	bool same2d = false;
	e[k++] = cudaMalloc(&dx2, 2 * 1000);
	for (int i = 0; i < n; i++)
		x[i] = (float)(3 * i);
	e[k++] = cudaMemcpy(dy, x, n * sizeof(float), cudaMemcpyHostToDevice);
	e[k++] = cudaStreamBeginCapture(s1, cudaStreamCaptureModeGlobal);
	e[k++] = cudaMemcpy2DAsync(dx2, 1000, dy, 1000, 250 * sizeof(float), 2,
				   cudaMemcpyDeviceToDevice, s1);
	e[k++] = cudaStreamEndCapture(s1, &g3);
	e[k++] = cudaGraphInstantiate(&ge3, g3, 0);
	if (ge3 && cudaGraphLaunch(ge3, s1) == cudaSuccess &&
	    cudaStreamSynchronize(s1) == cudaSuccess &&
	    cudaMemcpy(y, dx2, 2 * 1000, cudaMemcpyDeviceToHost) == cudaSuccess) {
		same2d = true;
		for (int i = 0; i < 500; i++)
			same2d = same2d && y[i] == (float)(3 * i);
	}

	// A graph built node by node (scale_add: y += x) launched into a
	// capture: refused, the capture invalidated.
	cudaGraph_t built = nullptr, g4 = nullptr;
	cudaGraphExec_t be = nullptr;
	cudaGraphNode_t kn = nullptr;
	char tag = 0;
	Scale sc{ 1.0f, n };
	float *dyp = dy;
	const float *dxp = dy;
	void *args[] = { &dyp, &dxp, &tag, &sc };
	cudaKernelNodeParams kp = {};
	kp.func = (void *)scale_add;
	kp.gridDim = dim3(4);
	kp.blockDim = dim3(256);
	kp.kernelParams = args;
	e[k++] = cudaGraphCreate(&built, 0);
	e[k++] = cudaGraphAddKernelNode(&kn, built, nullptr, 0, &kp);
	e[k++] = cudaGraphInstantiate(&be, built, 0);
	e[k++] = cudaStreamBeginCapture(s1, cudaStreamCaptureModeGlobal);
	cudaError_t relaunch = cudaGraphLaunch(be, s1);
	cudaError_t reended = cudaStreamEndCapture(s1, &g4);
	(void)cudaGetLastError();
	int first = 0;
	for (int i = 0; i < k && !first; i++)
		first = (int)e[i];
	printf("capture-guest %d right=%d/3 calls=%d during=%d after=%d mixed=%d/%d 2d=%s replay=%d/%d\n",
	       first, right, calls, (int)during, (int)after, (int)mixed, (int)ended,
	       same2d ? "same" : "different", (int)relaunch, (int)reended);
	if (g4)
		cudaGraphDestroy(g4);
	if (be)
		cudaGraphExecDestroy(be);
	if (built)
		cudaGraphDestroy(built);
	if (ge3)
		cudaGraphExecDestroy(ge3);
	if (g3)
		cudaGraphDestroy(g3);
	cudaFree(dx2);
	if (g2)
		cudaGraphDestroy(g2);
	if (ge)
		cudaGraphExecDestroy(ge);
	cudaEventDestroy(fork);
	cudaEventDestroy(join);
	cudaStreamDestroy(s1);
	cudaStreamDestroy(s2);
	cudaFree(dy);
	free(x);
	free(y);
}

// A CUDA graph made by stream capture: scale_add captured on a stream
// of its own (not run then), the graph instantiated and launched three
// times, y checked; the capture's status during and after it, and a
// capture of the legacy default stream (refused). Prints "graph <first
// error> same|different during=<status> after=<status> legacy=<error>".
static void graph_check()
{
	const int n = 1000;
	float x[1000], y[1000];
	float *dx = nullptr, *dy = nullptr;
	cudaStream_t s = nullptr;
	cudaGraph_t g = nullptr;
	cudaGraphExec_t ge = nullptr;
	cudaStreamCaptureStatus during = cudaStreamCaptureStatusNone, after = during;
	cudaError_t e[12];
	int k = 0;

	for (int i = 0; i < n; i++) {
		x[i] = (float)i;
		y[i] = 1.0f;
	}
	(void)cudaGetLastError();
	e[k++] = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
	e[k++] = cudaMalloc(&dx, sizeof(x));
	e[k++] = cudaMalloc(&dy, sizeof(y));
	e[k++] = cudaMemcpy(dx, x, sizeof(x), cudaMemcpyHostToDevice);
	e[k++] = cudaMemcpy(dy, y, sizeof(y), cudaMemcpyHostToDevice);
	e[k++] = cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal);
	scale_add<<<4, 256, 0, s>>>(dy, dx, 0, Scale{ 1.0f, n });
	e[k++] = cudaStreamIsCapturing(s, &during);
	e[k++] = cudaStreamEndCapture(s, &g);
	e[k++] = cudaStreamIsCapturing(s, &after);
	e[k++] = cudaGraphInstantiate(&ge, g, 0);
	for (int i = 0; i < 3 && ge; i++)
		(void)cudaGraphLaunch(ge, s);
	e[k++] = cudaStreamSynchronize(s);
	e[k++] = cudaMemcpy(y, dy, sizeof(y), cudaMemcpyDeviceToHost);
	bool same = true;
	for (int i = 0; i < n; i++)
		same = same && y[i] == 1.0f + 3.0f * (float)i;
	int first = 0;
	for (int i = 0; i < k && !first; i++)
		first = (int)e[i];
	cudaError_t legacy = cudaStreamBeginCapture(0, cudaStreamCaptureModeGlobal);
	(void)cudaGetLastError();
	printf("graph %d %s during=%d after=%d legacy=%d\n", first, same ? "same" : "different",
	       (int)during, (int)after, (int)legacy);
	if (ge)
		cudaGraphExecDestroy(ge);
	if (g)
		cudaGraphDestroy(g);
	if (s)
		cudaStreamDestroy(s);
	cudaFree(dx);
	cudaFree(dy);
}

// Managed memory (cudaMallocManaged): written by the CPU, read and
// written by a kernel, read by the CPU after a synchronize; then written
// by the CPU again and launched again; copied to the host by cudaMemcpy;
// prefetched; 1 MiB of it beside a staged copy; what a pointer to it
// is. Prints "managed <first error> first=same|different
// second=same|different copy=same|different big=same|different
// type=<cudaMemoryType> cma=<concurrentManagedAccess>".
static void managed_check()
{
	const int n = 1000;
	float *x = nullptr, *y = nullptr, back[1000];
	cudaError_t e[10];
	int k = 0, cma = -1;

	(void)cudaGetLastError();
	e[k++] = cudaMallocManaged(&x, n * sizeof(float));
	e[k++] = cudaMallocManaged(&y, n * sizeof(float));
	if (e[0] != cudaSuccess || e[1] != cudaSuccess) {
		printf("managed %d\n", (int)(e[0] ? e[0] : e[1]));
		return;
	}
	for (int i = 0; i < n; i++) {
		x[i] = (float)i;
		y[i] = 1.0f;
	}
	scale_add<<<4, 256>>>(y, x, 0, Scale{ 2.0f, n });
	e[k++] = cudaDeviceSynchronize();
	bool first = true;
	for (int i = 0; i < n; i++)
		first = first && y[i] == 2.0f * (float)i + 1.0f;
	for (int i = 0; i < n; i++)
		x[i] = 1.0f;
	scale_add<<<4, 256>>>(y, x, 0, Scale{ 2.0f, n });
	e[k++] = cudaDeviceSynchronize();
	bool second = true;
	for (int i = 0; i < n; i++)
		second = second && y[i] == 2.0f * (float)i + 3.0f;
	e[k++] = cudaMemcpy(back, y, sizeof(back), cudaMemcpyDeviceToHost);
	bool copy = memcmp(back, y, sizeof(back)) == 0;
	// 1 MiB of managed memory beside a 1 MiB copy from pageable memory
	// (the library stages it: the managed hooks run inside), a kernel
	// over the managed memory, read after a synchronize.
	const int big_n = 1 << 18;
	float *big = nullptr, *dbig = nullptr;
	float *page = new float[big_n];
	for (int i = 0; i < big_n; i++)
		page[i] = 1.0f;
	e[k++] = cudaMallocManaged(&big, big_n * sizeof(float));
	e[k++] = cudaMalloc(&dbig, big_n * sizeof(float));
	bool staged = big && dbig;
	if (staged) {
		for (int i = 0; i < big_n; i++)
			big[i] = (float)(i % 1000);
		(void)cudaMemcpy(dbig, page, big_n * sizeof(float), cudaMemcpyHostToDevice);
		scale_add<<<big_n / 256, 256>>>(big, dbig, 0, Scale{ 3.0f, big_n });
		(void)cudaDeviceSynchronize();
		for (int i = 0; i < big_n; i++)
			staged = staged && big[i] == (float)(i % 1000) + 3.0f;
	}
	cudaFree(big);
	cudaFree(dbig);
	delete[] page;
	cudaMemLocation at = {};
	at.type = cudaMemLocationTypeDevice;
	at.id = 0;
	e[k++] = cudaMemPrefetchAsync(y, n * sizeof(float), at, 0, 0);
	cudaPointerAttributes pa = {};
	e[k++] = cudaPointerGetAttributes(&pa, y);
	e[k++] = cudaDeviceGetAttribute(&cma, cudaDevAttrConcurrentManagedAccess, 0);
	int err = 0;
	for (int i = 0; i < k && !err; i++)
		err = (int)e[i];
	printf("managed %d first=%s second=%s copy=%s big=%s type=%d cma=%d\n", err,
	       first ? "same" : "different", second ? "same" : "different",
	       copy ? "same" : "different", staged ? "same" : "different", (int)pa.type, cma);
	cudaFree(x);
	cudaFree(y);
}

// Stream-ordered allocation: two arrays from the default pool in a
// stream's order, a kernel over them, freed in order; a pool of its own
// that keeps what is freed (release threshold: all), its use and
// reservation read, trimmed; an allocation over the quota; the pool made
// current for the device and destroyed with an allocation still live
// (freed after). Prints "pool <first error> same|different used=<bytes in
// use after the frees> kept=yes|no trimmed=<bytes reserved after a trim
// to 0> huge=<error> current=ok|bad".
static void pool_check()
{
	const int n = 1000;
	float x[1000], y[1000];
	float *dx = nullptr, *dy = nullptr, *p = nullptr, *q = nullptr, *huge = nullptr;
	cudaStream_t s = nullptr;
	cudaMemPool_t dflt = nullptr, mp = nullptr, cur = nullptr, after = nullptr;
	cuuint64_t all = ~(cuuint64_t)0, used = 1, reserved = 0, trimmed = 1, in_use = 0;
	cudaError_t e[32];
	int k = 0;

	for (int i = 0; i < n; i++) {
		x[i] = (float)i;
		y[i] = 2.0f;
	}
	(void)cudaGetLastError();
	e[k++] = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
	e[k++] = cudaMallocAsync(&dx, sizeof(x), s);
	e[k++] = cudaMallocAsync(&dy, sizeof(y), s);
	if (!dx || !dy) { // no kernel on what was not allocated
		printf("pool %d\n", (int)(e[1] ? e[1] : e[2]));
		cudaStreamDestroy(s);
		return;
	}
	e[k++] = cudaMemcpyAsync(dx, x, sizeof(x), cudaMemcpyHostToDevice, s);
	e[k++] = cudaMemcpyAsync(dy, y, sizeof(y), cudaMemcpyHostToDevice, s);
	scale_add<<<4, 256, 0, s>>>(dy, dx, 0, Scale{ 3.0f, n });
	e[k++] = cudaMemcpyAsync(y, dy, sizeof(y), cudaMemcpyDeviceToHost, s);
	e[k++] = cudaFreeAsync(dx, s);
	e[k++] = cudaFreeAsync(dy, s);
	e[k++] = cudaStreamSynchronize(s);
	bool same = true;
	for (int i = 0; i < n; i++)
		same = same && y[i] == 2.0f + 3.0f * (float)i;
	e[k++] = cudaDeviceGetDefaultMemPool(&dflt, 0);
	e[k++] = cudaMemPoolGetAttribute(dflt, cudaMemPoolAttrUsedMemCurrent, &used);

	cudaMemPoolProps props = {};
	props.allocType = cudaMemAllocationTypePinned;
	props.location.type = cudaMemLocationTypeDevice;
	props.location.id = 0;
	e[k++] = cudaMemPoolCreate(&mp, &props);
	e[k++] = cudaMemPoolSetAttribute(mp, cudaMemPoolAttrReleaseThreshold, &all);
	e[k++] = cudaMallocFromPoolAsync(&p, 1 << 20, mp, s);
	e[k++] = cudaMemPoolGetAttribute(mp, cudaMemPoolAttrUsedMemCurrent, &in_use);
	e[k++] = cudaFreeAsync(p, s);
	e[k++] = cudaStreamSynchronize(s);
	e[k++] = cudaMemPoolGetAttribute(mp, cudaMemPoolAttrReservedMemCurrent, &reserved);
	e[k++] = cudaMemPoolTrimTo(mp, 0);
	e[k++] = cudaMemPoolGetAttribute(mp, cudaMemPoolAttrReservedMemCurrent, &trimmed);
	cudaError_t over = cudaMallocAsync(&huge, (size_t)1 << 40, s);
	(void)cudaGetLastError();
	e[k++] = cudaDeviceSetMemPool(0, mp);
	e[k++] = cudaDeviceGetMemPool(&cur, 0);
	e[k++] = cudaMallocAsync(&q, 4096, s);
	e[k++] = cudaMemPoolDestroy(mp);
	e[k++] = cudaDeviceGetMemPool(&after, 0);
	e[k++] = cudaFreeAsync(q, s);
	e[k++] = cudaStreamSynchronize(s);
	int first = 0;
	for (int i = 0; i < k && !first; i++)
		first = (int)e[i];
	printf("pool %d %s used=%llu kept=%s trimmed=%llu huge=%d current=%s\n", first,
	       same ? "same" : "different", (unsigned long long)used,
	       in_use == 1 << 20 && reserved >= 1 << 20 ? "yes" : "no",
	       (unsigned long long)trimmed, (int)over,
	       cur == mp && after == dflt ? "ok" : "bad");
	if (s)
		cudaStreamDestroy(s);
}

// The driver's entry points @names (CUDA 13's), as a cudart program
// reaches the driver; prints "@what no-entry-point NAME" when one is not
// there.
static bool entry_points(const char *what, const char *const *names, void **f, int n)
{
	cudaDriverEntryPointQueryResult q;

	for (int i = 0; i < n; i++)
		if (cudaGetDriverEntryPointByVersion(names[i], &f[i], 13000, cudaEnableDefault, &q) !=
		    cudaSuccess) {
			printf("%s no-entry-point %s\n", what, names[i]);
			return false;
		}
	return true;
}

// A context of its own through the driver API, as driver-API programs
// make one (cudaGetDriverEntryPoint, as a cudart program reaches the
// driver): created current, popped and pushed, a copy in it, destroyed.
// Prints "ctx <first error> current=ok|bad popped=ok|bad same|different".
static void ctx_check()
{
	typedef CUresult (*create_t)(CUcontext *, CUctxCreateParams *, unsigned int, CUdevice);
	typedef CUresult (*ctx_t)(CUcontext);
	typedef CUresult (*pctx_t)(CUcontext *);
	void *f[5] = {};
	const char *names[5] = { "cuCtxCreate", "cuCtxDestroy", "cuCtxPushCurrent",
				 "cuCtxPopCurrent", "cuCtxGetCurrent" };
	CUcontext ctx = nullptr, before = nullptr, now = nullptr, popped = nullptr;
	int e[8] = {}, k = 0;

	if (!entry_points("ctx", names, f, 5))
		return;
	cudaFree(0);
	e[k++] = ((pctx_t)f[4])(&before);
	e[k++] = ((create_t)f[0])(&ctx, nullptr, 0, 0);
	e[k++] = ((pctx_t)f[4])(&now);
	bool cur = now == ctx && ctx != before;
	e[k++] = ((pctx_t)f[3])(&popped);
	e[k++] = ((pctx_t)f[4])(&now);
	bool pop = popped == ctx && now == before;
	e[k++] = ((ctx_t)f[2])(ctx);
	int v = 7, back = 0;
	int *d = nullptr;
	e[k++] = (int)cudaMalloc(&d, sizeof(v));
	cudaMemcpy(d, &v, sizeof(v), cudaMemcpyHostToDevice);
	cudaMemcpy(&back, d, sizeof(back), cudaMemcpyDeviceToHost);
	cudaFree(d);
	e[k++] = ((ctx_t)f[1])(ctx);
	((pctx_t)f[4])(&now);
	pop = pop && now == before;
	int first = 0;
	for (int i = 0; i < k && !first; i++)
		first = e[i];
	printf("ctx %d current=%s popped=%s %s\n", first, cur ? "ok" : "bad", pop ? "ok" : "bad",
	       back == v ? "same" : "different");
}

// Mapped page-locked memory used by a kernel through the host pointers
// themselves (unified addressing: UnifiedMemoryPerf and
// cudaGraphsPerfScaling do it), when the device pointer cudart gives for
// them is the same; "apart" (no kernel run) when it is not. Prints
// "zerocopy <error> same|different|apart".
static void zerocopy_check()
{
	const int n = 1000;
	float *x = nullptr, *y = nullptr;
	void *dx = nullptr;
	cudaError_t e = cudaHostAlloc(&x, n * sizeof(float), cudaHostAllocMapped);

	if (e == cudaSuccess)
		e = cudaHostAlloc(&y, n * sizeof(float), cudaHostAllocMapped);
	if (e == cudaSuccess)
		e = cudaHostGetDevicePointer(&dx, x, 0);
	if (e != cudaSuccess) {
		(void)cudaGetLastError();
		printf("zerocopy %d\n", (int)e);
	} else if (dx != (void *)x) {
		printf("zerocopy 0 apart\n");
	} else {
		for (int i = 0; i < n; i++) {
			x[i] = (float)i;
			y[i] = 1.0f;
		}
		scale_add<<<4, 256>>>(y, x, 0, Scale{ 2.0f, n });
		e = cudaDeviceSynchronize();
		bool same = true;
		for (int i = 0; i < n; i++)
			same = same && y[i] == 1.0f + 2.0f * (float)i;
		printf("zerocopy %d %s\n", (int)e, same ? "same" : "different");
	}
	cudaFreeHost(x);
	cudaFreeHost(y);
}

// Virtual memory management, as vectorAddMMAP and PyTorch's expandable
// segments use it: two physical allocations of the granularity mapped
// side by side in one reserved range, released (the mappings keep them),
// made readable and writable; a copy and a kernel across both; an
// allocation's handle from an address, its properties; unmapped, the
// range freed. Prints "vmm <first error> gran=ok|bad same|different
// retained=ok|bad".
static void vmm_check()
{
	typedef CUresult (*gran_t)(size_t *, const CUmemAllocationProp *,
				   CUmemAllocationGranularity_flags);
	typedef CUresult (*create_t)(CUmemGenericAllocationHandle *, size_t,
				     const CUmemAllocationProp *, unsigned long long);
	typedef CUresult (*release_t)(CUmemGenericAllocationHandle);
	typedef CUresult (*reserve_t)(CUdeviceptr *, size_t, size_t, CUdeviceptr,
				      unsigned long long);
	typedef CUresult (*range_t)(CUdeviceptr, size_t);
	typedef CUresult (*map_t)(CUdeviceptr, size_t, size_t, CUmemGenericAllocationHandle,
				  unsigned long long);
	typedef CUresult (*access_t)(CUdeviceptr, size_t, const CUmemAccessDesc *, size_t);
	typedef CUresult (*retain_t)(CUmemGenericAllocationHandle *, void *);
	typedef CUresult (*props_t)(CUmemAllocationProp *, CUmemGenericAllocationHandle);
	void *f[10] = {};
	const char *names[10] = { "cuMemGetAllocationGranularity", "cuMemCreate", "cuMemRelease",
				  "cuMemAddressReserve", "cuMemAddressFree", "cuMemMap",
				  "cuMemUnmap", "cuMemSetAccess", "cuMemRetainAllocationHandle",
				  "cuMemGetAllocationPropertiesFromHandle" };
	CUmemAllocationProp prop = {}, got = {};
	CUmemGenericAllocationHandle h[2] = {}, back = 0;
	CUdeviceptr base = 0;
	size_t gran = 0;
	int e[24] = {}, k = 0;

	if (!entry_points("vmm", names, f, 10))
		return;
	cudaFree(0);
	prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
	prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	prop.location.id = 0;
	e[k++] = ((gran_t)f[0])(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM);
	bool gran_ok = gran >= 4096 && (gran & (gran - 1)) == 0;
	if (!gran_ok)
		gran = 2 << 20;
	e[k++] = ((create_t)f[1])(&h[0], gran, &prop, 0);
	e[k++] = ((create_t)f[1])(&h[1], gran, &prop, 0);
	e[k++] = ((reserve_t)f[3])(&base, 2 * gran, 0, 0, 0);
	e[k++] = ((map_t)f[5])(base, gran, 0, h[0], 0);
	e[k++] = ((map_t)f[5])(base + gran, gran, 0, h[1], 0);
	e[k++] = ((release_t)f[2])(h[0]);
	e[k++] = ((release_t)f[2])(h[1]);
	CUmemAccessDesc rw = {};
	rw.location = prop.location;
	rw.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
	e[k++] = ((access_t)f[7])(base, 2 * gran, &rw, 1);
	for (int i = 1; i < k; i++)
		if (e[i]) { // no copy or kernel into what was not mapped
			printf("vmm %d\n", e[i]);
			return;
		}
	// 1000 floats on each side of the boundary between the two.
	const int n = 2000;
	float x[2000], y[2000];
	float *dx = (float *)(base + gran) - n / 2, *dy = (float *)(base + 2 * gran) - n;
	for (int i = 0; i < n; i++) {
		x[i] = (float)i;
		y[i] = 0.5f;
	}
	e[k++] = (int)cudaMemcpy(dx, x, sizeof(x), cudaMemcpyHostToDevice);
	e[k++] = (int)cudaMemcpy(dy, y, sizeof(y), cudaMemcpyHostToDevice);
	scale_add<<<8, 256>>>(dy, dx, 0, Scale{ 2.0f, n });
	e[k++] = (int)cudaMemcpy(y, dy, sizeof(y), cudaMemcpyDeviceToHost);
	bool same = true;
	for (int i = 0; i < n; i++)
		same = same && y[i] == 0.5f + 2.0f * (float)i;
	e[k++] = ((retain_t)f[8])(&back, (void *)(base + gran + 64));
	e[k++] = ((props_t)f[9])(&got, back);
	bool retained = got.location.type == CU_MEM_LOCATION_TYPE_DEVICE && got.location.id == 0;
	e[k++] = ((release_t)f[2])(back);
	e[k++] = ((range_t)f[6])(base, 2 * gran);
	e[k++] = ((range_t)f[4])(base, 2 * gran);
	int first = 0;
	for (int i = 0; i < k && !first; i++)
		first = e[i];
	printf("vmm %d gran=%s %s retained=%s\n", first, gran_ok ? "ok" : "bad",
	       same ? "same" : "different", retained ? "ok" : "bad");
}

// What the two slots below answer on a thread that never made a context
// current (PyTorch's autograd thread runs cuBLAS so): "export-thread
// <slot 2's context: null|set> <slot 4's status> <its id>".
struct bare_thread {
	const void *const *tls, *const *ids;
	CUcontext got;
	int rc;
	unsigned long long id;
};

static void *bare_thread_main(void *arg)
{
	bare_thread *t = (bare_thread *)arg;

	t->got = (CUcontext)1;
	((CUresult(*)(CUcontext *))t->tls[2])(&t->got);
	t->id = 77;
	t->rc = ((CUresult(*)(CUcontext, unsigned long long *))t->ids[4])(t->got, &t->id);
	return nullptr;
}

// Two private tables cuBLAS Lt reads (cuGetExportTable, reached as
// cudart reaches the driver): TOOLS_TLS's slot 2 gives the current
// context and 21318c60's slot 4 its id, as cuCtxGetCurrent and cuCtxGetId
// do. The same checks hold under NVIDIA's driver (run natively on the
// GPU machine). Prints "export <first error> tls=ok|bad id=ok|bad size=N".
static void export_check()
{
	typedef CUresult (*get_t)(const void **, const CUuuid *);
	typedef CUresult (*pctx_t)(CUcontext *);
	typedef CUresult (*id_t)(CUcontext, unsigned long long *);
	const CUuuid tls_uuid = { { 0x42, (char)0xd8, 0x5a, (char)0x81, 0x23, (char)0xf6, (char)0xcb,
				    0x47, (char)0x82, (char)0x98, (char)0xf6, (char)0xe7, (char)0x8a,
				    0x3a, (char)0xec, (char)0xdc } };
	const CUuuid id_uuid = { { 0x21, 0x31, (char)0x8c, 0x60, (char)0x97, 0x14, 0x32, 0x48,
				   (char)0x8c, (char)0xa6, 0x41, (char)0xff, 0x73, 0x24, (char)0xc8,
				   (char)0xf2 } };
	void *f[3] = {};
	const char *names[3] = { "cuGetExportTable", "cuCtxGetCurrent", "cuCtxGetId" };
	const void *const *tls = nullptr, *const *ids = nullptr;
	CUcontext cur = nullptr, got = (CUcontext)1;
	unsigned long long id = 0, want = 1;
	int e[6] = {}, k = 0;

	if (!entry_points("export", names, f, 3))
		return;
	cudaFree(0);
	e[k++] = ((get_t)f[0])((const void **)&tls, &tls_uuid);
	e[k++] = ((get_t)f[0])((const void **)&ids, &id_uuid);
	if (e[0] || e[1] || !tls || !ids) {
		printf("export %d tls=bad id=bad size=0\n", e[0] ? e[0] : e[1]);
		return;
	}
	size_t size = (size_t)(uintptr_t)ids[0] / sizeof(void *);
	e[k++] = ((pctx_t)f[1])(&cur);
	e[k++] = ((pctx_t)tls[2])(&got);
	e[k++] = ((id_t)f[2])(cur, &want);
	if (size > 4)
		e[k++] = ((id_t)ids[4])(cur, &id);
	int first = 0;
	for (int i = 0; i < k && !first; i++)
		first = e[i];
	printf("export %d tls=%s id=%s size=%zu\n", first, got == cur && cur ? "ok" : "bad",
	       size > 4 && id == want ? "ok" : "bad", size);
	bare_thread t = { tls, ids, nullptr, -1, 0 };
	pthread_t th;
	if (size > 4 && pthread_create(&th, nullptr, bare_thread_main, &t) == 0) {
		pthread_join(th, nullptr);
		printf("export-thread %s %d %llu\n", t.got ? "set" : "null", t.rc, t.id);
	}
}

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
	// Whether host memory can be mapped for kernels (not over a VM's device).
	int maphost = -1;

	e = cudaDeviceGetAttribute(&maphost, cudaDevAttrCanMapHostMemory, 0);
	printf("maphost %d %d\n", (int)e, maphost);
	// The usual way to make the context: frees nothing.
	e = cudaFree(0);
	printf("free0 %d\n", (int)e);

	// Device memory, through the host: a round trip of 3 MiB (more than
	// one piece when VGPU_CUDA_MAX_DATA is small), the VM's quota, one
	// allocation over it, and freeing twice.
	const size_t n = 3u << 20;
	unsigned char *host = new unsigned char[n], *back = new unsigned char[n];
	void *dev = nullptr, *huge = nullptr;
	size_t free_b = 0, total_b = 0;

	for (size_t i = 0; i < n; i++)
		host[i] = (unsigned char)(i * 7 + 3);
	e = cudaMalloc(&dev, n);
	printf("malloc %d %s\n", (int)e, cudaGetErrorName(e));
	if (e != cudaSuccess)
		return 0;
	// VGPU_PROBE_HOLD_S: hold the memory that long first (a test kills
	// the probe meanwhile).
	if (const char *hold = getenv("VGPU_PROBE_HOLD_S")) {
		fflush(stdout);
		sleep((unsigned)atoi(hold));
	}
	cudaError_t up = cudaMemcpy(dev, host, n, cudaMemcpyHostToDevice);
	cudaError_t down = cudaMemcpy(back, dev, n, cudaMemcpyDeviceToHost);
	bool same = true;
	for (size_t i = 0; i < n; i++)
		same = same && back[i] == host[i];
	printf("copy %d %d %s\n", (int)up, (int)down, same ? "same" : "different");
	e = cudaMemGetInfo(&free_b, &total_b);
	printf("info %d free=%zu total=%zu\n", (int)e, free_b, total_b);
	e = cudaMalloc(&huge, (size_t)1 << 40);
	printf("huge %d %s\n", (int)e, cudaGetErrorName(e));
	e = cudaDeviceSynchronize();
	printf("sync %d\n", (int)e);
	launch_check();
	e = cudaFree(dev);
	printf("free %d\n", (int)e);
	e = cudaFree(dev);
	printf("free-again %d %s\n", (int)e, cudaGetErrorName(e));
	int least = 1, greatest = 1;
	e = cudaDeviceGetStreamPriorityRange(&least, &greatest);
	printf("priorities %d %d %d\n", (int)e, least, greatest);
	stream_check();
	memops_check();
	posted_check();
	func_check();
	unified_check();
	register_check();
	texture_check();
	copy2d_check();
	memset2d_check();
	ctx_check();
	export_check();
	fork_check();
	graph_check();
	built_graph_check();
	graph_mem_check();
	capture_guest_check();
	managed_check();
	pool_check();
	vmm_check();
	zerocopy_check();
	delete[] host;
	delete[] back;
	return 0;
}
