/* SPDX-License-Identifier: MIT */
/*
 * native.cu - vgpu-bench's native CUDA side (see native.h): the mediator's
 * ops done directly in this process, with the CUDA runtime (linked
 * statically) and cuBLAS (dlopen()ed: libcublas.so.13 first).
 *
 * The vector_add kernel is this program's own: 16-byte loads and stores,
 * a grid-stride loop, one pass. It is at least as fast as any kernel the
 * mediator may use, so the native figures are a fair floor.
 *
 * Never: leave a CUDA return code unchecked, or report a slot done before
 * its stream synchronized.
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "native.h"

#ifndef BENCH_CUDA_LIBDIR
#define BENCH_CUDA_LIBDIR "/usr/local/cuda/lib64"
#endif

#define THREADS 256

static char err_buf[1024] = "no error";
static int sm_count = 1;

const char *bn_error(void)
{
	return err_buf;
}

__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err_buf, sizeof(err_buf), fmt, ap);
	va_end(ap);
	return -1;
}

static int cuda_fail(const char *what, cudaError_t e)
{
	return fail("%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

#define CK(call)                                         \
	do {                                             \
		cudaError_t e_ = (call);                 \
		if (e_ != cudaSuccess)                   \
			return cuda_fail(#call, e_);     \
	} while (0)

int bn_init(int device, struct bn_device_info *ret)
{
	cudaDeviceProp p;
	int count = 0;

	memset(ret, 0, sizeof(*ret));
	CK(cudaGetDeviceCount(&count));
	if (device < 0 || device >= count)
		return fail("device %d: %d CUDA device(s) present", device, count);
	CK(cudaSetDevice(device));
	CK(cudaFree(0)); /* creates the context now, not in the first timed call */
	CK(cudaGetDeviceProperties(&p, device));
	snprintf(ret->name, sizeof(ret->name), "%s", p.name);
	snprintf(ret->pci_bus_id, sizeof(ret->pci_bus_id), "%04x:%02x:%02x.0", p.pciDomainID,
		 p.pciBusID, p.pciDeviceID);
	ret->index = device;
	ret->cc_major = p.major;
	ret->cc_minor = p.minor;
	ret->sm_count = p.multiProcessorCount;
	ret->total_mem = p.totalGlobalMem;
	ret->l2_bytes = (size_t)p.l2CacheSize;
	CK(cudaDriverGetVersion(&ret->driver_version));
	CK(cudaRuntimeGetVersion(&ret->runtime_version));
	sm_count = p.multiProcessorCount > 0 ? p.multiProcessorCount : 1;
	return 0;
}

void *bn_host_alloc(size_t bytes)
{
	void *p = NULL;
	cudaError_t e = cudaHostAlloc(&p, bytes, cudaHostAllocDefault);

	if (e != cudaSuccess) {
		cuda_fail("cudaHostAlloc", e);
		return NULL;
	}
	return p;
}

void bn_host_free(void *p)
{
	if (p)
		cudaFreeHost(p);
}

/* ---- vector_add ---- */

__global__ void bench_vadd_kernel(const float *__restrict__ a, const float *__restrict__ b,
				  float *__restrict__ c, size_t n)
{
	size_t stride = (size_t)gridDim.x * blockDim.x;
	size_t first = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	size_t n4 = n / 4;
	const float4 *a4 = reinterpret_cast<const float4 *>(a);
	const float4 *b4 = reinterpret_cast<const float4 *>(b);
	float4 *c4 = reinterpret_cast<float4 *>(c);

	for (size_t i = first; i < n4; i += stride) {
		float4 x = a4[i], y = b4[i];

		c4[i] = make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w);
	}
	for (size_t i = n4 * 4 + first; i < n; i += stride)
		c[i] = a[i] + b[i];
}

struct bn_vadd_slot {
	cudaStream_t stream;
	float *a, *b, *c; /* device */
};

struct bn_vadd {
	size_t n;
	int depth;
	unsigned int blocks;
	struct bn_vadd_slot *slots;
};

void bn_vadd_destroy(struct bn_vadd *v)
{
	if (!v)
		return;
	for (int i = 0; i < v->depth && v->slots; i++) {
		struct bn_vadd_slot *s = &v->slots[i];

		if (s->stream)
			cudaStreamSynchronize(s->stream);
		cudaFree(s->a);
		cudaFree(s->b);
		cudaFree(s->c);
		if (s->stream)
			cudaStreamDestroy(s->stream);
	}
	free(v->slots);
	free(v);
}

static int vadd_alloc(struct bn_vadd *v)
{
	size_t bytes = v->n * sizeof(float);

	for (int i = 0; i < v->depth; i++) {
		struct bn_vadd_slot *s = &v->slots[i];

		CK(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));
		CK(cudaMalloc((void **)&s->a, bytes));
		CK(cudaMalloc((void **)&s->b, bytes));
		CK(cudaMalloc((void **)&s->c, bytes));
	}
	return 0;
}

struct bn_vadd *bn_vadd_create(size_t n, int depth)
{
	struct bn_vadd *v;
	size_t want;

	if (n == 0 || depth < 1) {
		fail("bn_vadd_create: n %zu, depth %d", n, depth);
		return NULL;
	}
	v = (struct bn_vadd *)calloc(1, sizeof(*v));
	if (!v || !(v->slots = (struct bn_vadd_slot *)calloc((size_t)depth, sizeof(*v->slots)))) {
		free(v);
		fail("out of memory");
		return NULL;
	}
	v->n = n;
	v->depth = depth;
	want = ((n + 3) / 4 + THREADS - 1) / THREADS;
	if (want > (size_t)sm_count * 16)
		want = (size_t)sm_count * 16;
	v->blocks = want ? (unsigned int)want : 1;
	if (vadd_alloc(v) != 0) {
		bn_vadd_destroy(v);
		return NULL;
	}
	return v;
}

int bn_vadd_enqueue(struct bn_vadd *v, int slot, const float *a, const float *b, float *c)
{
	size_t bytes = v->n * sizeof(float);
	struct bn_vadd_slot *s;

	if (slot < 0 || slot >= v->depth)
		return fail("bn_vadd_enqueue: slot %d of %d", slot, v->depth);
	s = &v->slots[slot];
	CK(cudaMemcpyAsync(s->a, a, bytes, cudaMemcpyHostToDevice, s->stream));
	CK(cudaMemcpyAsync(s->b, b, bytes, cudaMemcpyHostToDevice, s->stream));
	bench_vadd_kernel<<<v->blocks, THREADS, 0, s->stream>>>(s->a, s->b, s->c, v->n);
	CK(cudaGetLastError());
	CK(cudaMemcpyAsync(c, s->c, bytes, cudaMemcpyDeviceToHost, s->stream));
	return 0;
}

int bn_vadd_wait(struct bn_vadd *v, int slot)
{
	if (slot < 0 || slot >= v->depth)
		return fail("bn_vadd_wait: slot %d of %d", slot, v->depth);
	CK(cudaStreamSynchronize(v->slots[slot].stream));
	return 0;
}

int bn_vadd_run(struct bn_vadd *v, const float *a, const float *b, float *c)
{
	if (bn_vadd_enqueue(v, 0, a, b, c) != 0)
		return -1;
	return bn_vadd_wait(v, 0);
}

/* ---- cuBLAS, loaded at run time ---- */

static struct {
	void *dl;
	char name[512];
	int version;
	cublasStatus_t (*create)(cublasHandle_t *);
	cublasStatus_t (*destroy)(cublasHandle_t);
	cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t);
	cublasStatus_t (*get_version)(cublasHandle_t, int *);
	cublasStatus_t (*sgemm)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int,
				int, const float *, const float *, int, const float *, int,
				const float *, float *, int);
} blas;

const char *bn_cublas_name(void)
{
	return blas.dl ? blas.name : "";
}

int bn_cublas_version(void)
{
	return blas.version;
}

static int cublas_load(void)
{
	const char *env = getenv("VGPU_CUBLAS");
	const char *names[] = {
		env && env[0] ? env : NULL,
		"libcublas.so.13",
		"libcublas.so",
		BENCH_CUDA_LIBDIR "/libcublas.so.13",
		"/usr/local/cuda/lib64/libcublas.so.13",
	};
	char tried[2048];
	size_t used = 0;

	if (blas.dl)
		return 0;
	tried[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!names[i])
			continue;
		blas.dl = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
		if (blas.dl) {
			snprintf(blas.name, sizeof(blas.name), "%s", names[i]);
			break;
		}
		const char *why = dlerror();
		int w = snprintf(tried + used, sizeof(tried) - used, "%s%s", used ? "; " : "",
				 why ? why : names[i]);

		if (w > 0 && (size_t)w < sizeof(tried) - used)
			used += (size_t)w;
	}
	if (!blas.dl)
		return fail("cuBLAS not found (set VGPU_CUBLAS to the path of libcublas.so.13, or "
			    "put its folder in LD_LIBRARY_PATH); tried: %s",
			    tried);
	blas.create = (cublasStatus_t(*)(cublasHandle_t *))dlsym(blas.dl, "cublasCreate_v2");
	blas.destroy = (cublasStatus_t(*)(cublasHandle_t))dlsym(blas.dl, "cublasDestroy_v2");
	blas.set_stream =
		(cublasStatus_t(*)(cublasHandle_t, cudaStream_t))dlsym(blas.dl, "cublasSetStream_v2");
	blas.get_version =
		(cublasStatus_t(*)(cublasHandle_t, int *))dlsym(blas.dl, "cublasGetVersion_v2");
	blas.sgemm = (cublasStatus_t(*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int,
					int, int, const float *, const float *, int,
					const float *, int, const float *, float *,
					int))dlsym(blas.dl, "cublasSgemm_v2");
	if (!blas.create || !blas.destroy || !blas.set_stream || !blas.sgemm) {
		dlclose(blas.dl);
		memset(&blas, 0, sizeof(blas));
		return fail("cuBLAS lacks cublasCreate_v2, cublasSetStream_v2 or cublasSgemm_v2");
	}
	return 0;
}

/* ---- sgemm ---- */

struct bn_sgemm {
	size_t m, n, k;
	cudaStream_t stream;
	cublasHandle_t handle;
	float *A, *B, *C; /* device */
};

void bn_sgemm_destroy(struct bn_sgemm *s)
{
	if (!s)
		return;
	if (s->stream)
		cudaStreamSynchronize(s->stream);
	if (s->handle)
		blas.destroy(s->handle);
	cudaFree(s->A);
	cudaFree(s->B);
	cudaFree(s->C);
	if (s->stream)
		cudaStreamDestroy(s->stream);
	free(s);
}

static int sgemm_setup(struct bn_sgemm *s)
{
	cublasStatus_t st;

	CK(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));
	CK(cudaMalloc((void **)&s->A, s->m * s->k * sizeof(float)));
	CK(cudaMalloc((void **)&s->B, s->k * s->n * sizeof(float)));
	CK(cudaMalloc((void **)&s->C, s->m * s->n * sizeof(float)));
	st = blas.create(&s->handle);
	if (st != CUBLAS_STATUS_SUCCESS) {
		s->handle = NULL;
		return fail("cublasCreate: status %d", (int)st);
	}
	st = blas.set_stream(s->handle, s->stream);
	if (st != CUBLAS_STATUS_SUCCESS)
		return fail("cublasSetStream: status %d", (int)st);
	if (blas.get_version && !blas.version && blas.get_version(s->handle, &blas.version) !=
							 CUBLAS_STATUS_SUCCESS)
		blas.version = 0;
	return 0;
}

struct bn_sgemm *bn_sgemm_create(size_t m, size_t n, size_t k)
{
	struct bn_sgemm *s;

	if (m == 0 || n == 0 || k == 0 || m > 65536 || n > 65536 || k > 65536) {
		fail("bn_sgemm_create: bad shape %zu x %zu x %zu", m, n, k);
		return NULL;
	}
	if (cublas_load() != 0)
		return NULL;
	s = (struct bn_sgemm *)calloc(1, sizeof(*s));
	if (!s) {
		fail("out of memory");
		return NULL;
	}
	s->m = m;
	s->n = n;
	s->k = k;
	if (sgemm_setup(s) != 0) {
		bn_sgemm_destroy(s);
		return NULL;
	}
	return s;
}

int bn_sgemm_run(struct bn_sgemm *s, float alpha, const float *A, const float *B, float beta,
		 const float *C_in, float *C_out)
{
	int m = (int)s->m, n = (int)s->n, k = (int)s->k;
	cublasStatus_t st;

	CK(cudaMemcpyAsync(s->A, A, s->m * s->k * sizeof(float), cudaMemcpyHostToDevice,
			   s->stream));
	CK(cudaMemcpyAsync(s->B, B, s->k * s->n * sizeof(float), cudaMemcpyHostToDevice,
			   s->stream));
	CK(cudaMemcpyAsync(s->C, C_in, s->m * s->n * sizeof(float), cudaMemcpyHostToDevice,
			   s->stream));
	/* Row-major C = A B is column-major C^T = B^T A^T: cuBLAS sees B^T
	 * (n x k, ld n) times A^T (k x m, ld k) into C^T (n x m, ld n). */
	st = blas.sgemm(s->handle, CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &alpha, s->B, n, s->A, k,
			&beta, s->C, n);
	if (st != CUBLAS_STATUS_SUCCESS)
		return fail("cublasSgemm: status %d", (int)st);
	CK(cudaMemcpyAsync(C_out, s->C, s->m * s->n * sizeof(float), cudaMemcpyDeviceToHost,
			   s->stream));
	CK(cudaStreamSynchronize(s->stream));
	return 0;
}
