/* SPDX-License-Identifier: MIT */
/*
 * gpu-paths.cu - one small vector_add round trip (copy in, kernel, copy
 * out) done the ways the mediator and the native bench differ, each in its
 * own process, so that the mediator's slow mode (docs/performance.md, runs
 * 6 to 17: its own execution time of a 4 KiB op doubles in some runs while
 * native's does not) can be pinned on one difference:
 *
 *   --mem hostalloc|memfd     cudaHostAlloc() buffers, or a MAP_SHARED memfd
 *                             registered with cudaHostRegister() (the window)
 *   --stream plain|priority   a non-blocking stream, or one of the greatest
 *                             priority (the mediator's streams)
 *   --wait sync|poll|waiter|relay
 *        sync    cudaStreamSynchronize() on the issuing thread (native)
 *        poll    a blocking-sync event, polled with cudaEventQuery() every
 *                2 us on the issuing thread
 *        waiter  the issuing thread hands the event to a waiter thread that
 *                polls it every 2 us and flags completion; the issuer spins
 *                on the flag (the mediator's launcher + waiter)
 *        relay   a client thread hands the op to a launcher thread, which
 *                issues it and hands the event to a waiter thread, which
 *                flags the client (the mediator's whole path, less its loop)
 *   --arm        sleep once in cudaEventSynchronize() on the event first
 *
 * Every mode but sync uses a blocking-sync event, as the mediator did until
 * run 21: count the GPU's interrupts (/proc/interrupts) around a run to see
 * what that costs.
 *
 * Prints one line: the settings, then p50 and p90 of the round trip and
 * p50 of the issue time (the API calls of one op) in us.
 *
 *   build/bench/gpu-paths --mem memfd --stream priority --wait waiter --n 1024
 *   bash bench/gpu-paths.sh build/bench/gpu-paths 4    (every setting, 4 rounds)
 *
 * Never: time anything before the work is seen complete.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>

#include <cuda_runtime.h>

#include "vgpu_clock.h"
#include "vgpu_spin.h"

#define CK(call)                                                                       \
	do {                                                                           \
		cudaError_t e_ = (call);                                               \
		if (e_ != cudaSuccess) {                                               \
			fprintf(stderr, "gpu-paths: %s: %s\n", #call,                  \
				cudaGetErrorString(e_));                               \
			exit(1);                                                       \
		}                                                                      \
	} while (0)

#define POLL_NS 2000u

/* Keeps the GPU busy for about @cycles clock ticks. */
__global__ void spin(long long cycles)
{
	long long t0 = clock64();

	while (clock64() - t0 < cycles)
		;
}

__global__ void vadd(const float *a, const float *b, float *c, unsigned n)
{
	for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
		c[i] = a[i] + b[i];
}

struct path {
	unsigned n;
	float *h[3], *d[3];
	cudaStream_t s;
	cudaEvent_t ev;
	uint64_t issue_ns;
	/* hand-offs between threads: a sequence number each */
	std::atomic<uint64_t> to_launcher, to_waiter, to_client;
	std::atomic<int> quit;
};

static void issue(struct path *p)
{
	size_t bytes = (size_t)p->n * sizeof(float);
	uint64_t t0 = vgpu_now_ns();

	CK(cudaMemcpyAsync(p->d[0], p->h[0], bytes, cudaMemcpyHostToDevice, p->s));
	CK(cudaMemcpyAsync(p->d[1], p->h[1], bytes, cudaMemcpyHostToDevice, p->s));
	vadd<<<(p->n + 255) / 256 < 1024 ? (p->n + 255) / 256 : 1024, 256, 0, p->s>>>(
		p->d[0], p->d[1], p->d[2], p->n);
	CK(cudaGetLastError());
	CK(cudaMemcpyAsync(p->h[2], p->d[2], bytes, cudaMemcpyDeviceToHost, p->s));
	CK(cudaEventRecord(p->ev, p->s));
	p->issue_ns = vgpu_now_ns() - t0;
}

static void poll_event(cudaEvent_t ev)
{
	cudaError_t e;

	while ((e = cudaEventQuery(ev)) == cudaErrorNotReady) {
		uint64_t t0 = vgpu_now_ns();

		while (vgpu_now_ns() - t0 < POLL_NS)
			vgpu_cpu_relax();
	}
	CK(e);
}

/* Spin until *@seq passes @seen; false when told to quit. */
static bool await(struct path *p, std::atomic<uint64_t> *seq, uint64_t seen)
{
	while (seq->load() == seen) {
		if (p->quit.load())
			return false;
		vgpu_cpu_relax();
	}
	return true;
}

static void *waiter_main(void *arg)
{
	struct path *p = (struct path *)arg;

	CK(cudaSetDevice(0));
	for (uint64_t seen = 0; await(p, &p->to_waiter, seen); seen++) {
		poll_event(p->ev);
		p->to_client.fetch_add(1);
	}
	return NULL;
}

static void *launcher_main(void *arg)
{
	struct path *p = (struct path *)arg;

	CK(cudaSetDevice(0));
	for (uint64_t seen = 0; await(p, &p->to_launcher, seen); seen++) {
		issue(p);
		p->to_waiter.fetch_add(1);
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_us(uint64_t *v, int n, int pct)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_u64);
	return (double)v[(size_t)(n - 1) * (size_t)pct / 100] / 1000.0;
}

/* @v as a whole decimal number in [@lo, @hi], else the usage. */
static unsigned long number(const char *name, const char *v, unsigned long lo, unsigned long hi)
{
	char *end;
	unsigned long x;

	errno = 0;
	x = strtoul(v, &end, 10);
	if (errno || end == v || *end || v[0] == '-' || x < lo || x > hi) {
		fprintf(stderr, "gpu-paths: %s: '%s' is not a number from %lu to %lu\n", name, v, lo,
			hi);
		exit(2);
	}
	return x;
}

static void usage(void)
{
	fprintf(stderr, "usage: gpu-paths [--mem hostalloc|memfd] [--stream plain|priority]\n"
			"                 [--wait sync|poll|waiter|relay] [--n FLOATS] [--iters N] [--arm]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *mem = "hostalloc", *stream = "plain", *wait = "sync";
	unsigned n = 1024;
	int iters = 2000;
	bool arm = false;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--arm")) {
			arm = true;
			continue;
		}
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage();
		if (!strcmp(argv[i], "--mem"))
			mem = v;
		else if (!strcmp(argv[i], "--stream"))
			stream = v;
		else if (!strcmp(argv[i], "--wait"))
			wait = v;
		else if (!strcmp(argv[i], "--n"))
			n = (unsigned)number("--n", v, 1, 1u << 24);
		else if (!strcmp(argv[i], "--iters"))
			iters = (int)number("--iters", v, 10, 1000000);
		else
			usage();
		i++;
	}
	bool memfd = !strcmp(mem, "memfd"), prio = !strcmp(stream, "priority");
	int mode = !strcmp(wait, "sync") ? 0 : !strcmp(wait, "poll") ? 1
					 : !strcmp(wait, "waiter") ? 2 : !strcmp(wait, "relay") ? 3 : -1;

	if ((!memfd && strcmp(mem, "hostalloc")) || (!prio && strcmp(stream, "plain")) ||
	    mode < 0)
		usage();

	static struct path p;
	size_t bytes = (size_t)n * sizeof(float), span = (bytes + 4095) & ~(size_t)4095;

	p.n = n;
	CK(cudaSetDevice(0));
	if (memfd) {
		int fd = memfd_create("gpu-paths", MFD_CLOEXEC);
		char *win;

		if (fd < 0 || ftruncate(fd, (off_t)(3 * span)) != 0)
			return perror("memfd"), 1;
		win = (char *)mmap(NULL, 3 * span, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (win == MAP_FAILED)
			return perror("mmap"), 1;
		CK(cudaHostRegister(win, 3 * span, cudaHostRegisterDefault));
		for (int i = 0; i < 3; i++)
			p.h[i] = (float *)(win + i * span);
	} else {
		for (int i = 0; i < 3; i++)
			CK(cudaHostAlloc((void **)&p.h[i], bytes, cudaHostAllocDefault));
	}
	for (int i = 0; i < 3; i++)
		CK(cudaMalloc((void **)&p.d[i], bytes));
	for (unsigned i = 0; i < n; i++) {
		p.h[0][i] = (float)i;
		p.h[1][i] = 1.0f;
	}
	if (prio) {
		int least, greatest;

		CK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
		CK(cudaStreamCreateWithPriority(&p.s, cudaStreamNonBlocking, greatest));
	} else {
		CK(cudaStreamCreateWithFlags(&p.s, cudaStreamNonBlocking));
	}
	CK(cudaEventCreateWithFlags(&p.ev, cudaEventDisableTiming |
					   (mode == 0 ? 0 : cudaEventBlockingSync)));

	if (arm) {
		/* Once, the way the mediator's waiter ends a long wait: sleep in
		 * cudaEventSynchronize() on the event that is then polled. */
		spin<<<1, 1, 0, p.s>>>(4000000);
		CK(cudaEventRecord(p.ev, p.s));
		CK(cudaEventSynchronize(p.ev));
	}
	pthread_t th[2];
	int threads = mode == 2 ? 1 : mode == 3 ? 2 : 0;

	if (threads >= 1)
		pthread_create(&th[0], NULL, waiter_main, &p);
	if (threads == 2)
		pthread_create(&th[1], NULL, launcher_main, &p);

	uint64_t *rt = (uint64_t *)calloc((size_t)iters, sizeof(uint64_t));
	uint64_t *is = (uint64_t *)calloc((size_t)iters, sizeof(uint64_t));
	int warm = 50;

	for (int i = -warm; i < iters; i++) {
		uint64_t t0 = vgpu_now_ns(), seen;
		unsigned k = (unsigned)(i + warm) % n;

		p.h[2][k] = -1.0f;
		switch (mode) {
		case 0:
			issue(&p);
			CK(cudaStreamSynchronize(p.s));
			break;
		case 1:
			issue(&p);
			poll_event(p.ev);
			break;
		case 2:
			seen = p.to_client.load();
			issue(&p);
			p.to_waiter.fetch_add(1);
			await(&p, &p.to_client, seen);
			break;
		default:
			seen = p.to_client.load();
			p.to_launcher.fetch_add(1);
			await(&p, &p.to_client, seen);
			break;
		}
		uint64_t t = vgpu_now_ns() - t0;

		if (p.h[2][k] != (float)k + 1.0f) {
			fprintf(stderr, "gpu-paths: wrong result at %u\n", k);
			return 1;
		}
		if (i >= 0) {
			rt[i] = t;
			is[i] = p.issue_ns;
		}
	}
	p.quit.store(1);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	printf("%s mem=%-9s stream=%-8s wait=%-6s n=%-7u p50 %7.1f  p90 %7.1f  issue %6.1f us\n",
	       arm ? "armed" : "     ", mem, stream, wait, n, pct_us(rt, iters, 50), pct_us(rt, iters, 90),
	       pct_us(is, iters, 50));
	return 0;
}
