/* SPDX-License-Identifier: MIT */
/*
 * native.h - the "native" side of vgpu-bench: the same work as the
 * mediator's ops, done directly with the CUDA runtime in this process
 * (native.cu). C-callable; no CUDA header is needed to use it.
 *
 * Every function returns 0 on success and -1 on failure, with the reason in
 * bn_error(). Nothing here times anything: the caller times calls with its
 * own clock, since what is compared is the wall time a program sees.
 *
 * Never: return before the work it reports done is finished on the device
 * (bn_*_wait() and bn_*_run() end with a stream synchronize).
 */
#ifndef VGPU_BENCH_NATIVE_H
#define VGPU_BENCH_NATIVE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct bn_device_info {
	char name[256];
	char pci_bus_id[32];
	int index;
	int cc_major, cc_minor;
	int sm_count;
	size_t total_mem;
	size_t l2_bytes;
	int driver_version;  /* cudaDriverGetVersion(): 13000 for 13.0 */
	int runtime_version; /* cudaRuntimeGetVersion() of the static runtime linked in */
};

/* The last failure's description (never NULL). */
const char *bn_error(void);

/* Select @device, create the context and describe it. */
int bn_init(int device, struct bn_device_info *ret);

/* Pinned (page-locked) host memory: cudaHostAlloc(), cudaFreeHost(). */
void *bn_host_alloc(size_t bytes);
void bn_host_free(void *p);

/*
 * vector_add, c = a + b over n floats: @depth independent slots (a stream
 * and device buffers each), so that several can be in flight.
 * bn_vadd_enqueue() queues on slot @slot: copy a and b in, the kernel, copy
 * c out (host pointers may be pinned or pageable); bn_vadd_wait() waits for
 * the slot's stream. bn_vadd_run() is enqueue and wait on slot 0.
 */
struct bn_vadd;
struct bn_vadd *bn_vadd_create(size_t n, int depth);
int bn_vadd_enqueue(struct bn_vadd *v, int slot, const float *a, const float *b, float *c);
int bn_vadd_wait(struct bn_vadd *v, int slot);
int bn_vadd_run(struct bn_vadd *v, const float *a, const float *b, float *c);
void bn_vadd_destroy(struct bn_vadd *v);

/*
 * sgemm, row-major like the protocol: C_out = alpha * A(m x k) B(k x n) +
 * beta * C_in(m x n), through cuBLAS (column-major) as C^T = B^T A^T. One
 * run copies A, B and C_in in, multiplies, and copies C out.
 */
struct bn_sgemm;
struct bn_sgemm *bn_sgemm_create(size_t m, size_t n, size_t k);
int bn_sgemm_run(struct bn_sgemm *s, float alpha, const float *A, const float *B, float beta,
		 const float *C_in, float *C_out);
void bn_sgemm_destroy(struct bn_sgemm *s);

/* The cuBLAS loaded by the first bn_sgemm_create(): its path as opened
 * and cublasGetVersion() (0 when not loaded yet). */
const char *bn_cublas_name(void);
int bn_cublas_version(void);

#ifdef __cplusplus
}
#endif

#endif
