// SPDX-License-Identifier: MIT
// cublas-sgemm - one cuBLAS program, run natively or through vgpu's
// libcuda.so.1 (bench/device-samples.sh): C = A * B on 1024x1024 floats
// filled from an integer formula (quarters in [-1.5, 1.5], so every sum is
// exact in float), 48 entries of C checked against a CPU double-precision
// product (relative error, against max(|ref|, 1), at most 1e-4), then 20
// sgemms timed with CUDA events. Prints one JSON line (null for what was
// not measured); exit status 1 when a call failed or the check did not
// hold. The failed call, if any, is on stderr.
//
//   cublas-sgemm
#include <cmath>
#include <cstdio>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#define N 1024
#define CHECKED 48
#define TIMED 20
#define MARGIN 1e-4

static bool bad;

// Records a failed call on stderr; true when it succeeded.
static bool cuda_ok(cudaError_t e, const char *what)
{
	if (e != cudaSuccess) {
		fprintf(stderr, "cublas-sgemm: %s: %s\n", what, cudaGetErrorString(e));
		bad = true;
	}
	return e == cudaSuccess;
}

static bool blas_ok(cublasStatus_t s, const char *what)
{
	if (s != CUBLAS_STATUS_SUCCESS) {
		fprintf(stderr, "cublas-sgemm: %s: %s\n", what, cublasGetStatusString(s));
		bad = true;
	}
	return s == CUBLAS_STATUS_SUCCESS;
}

// Column-major: A(i, k) is a[i + k * N].
static float a_at(int i, int k) { return (float)((i * 3 + k * 7) % 11 - 5) / 4; }
static float b_at(int k, int j) { return (float)((k * 5 + j * 2) % 13 - 6) / 4; }

int main()
{
	std::vector<float> a((size_t)N * N), b((size_t)N * N), c((size_t)N * N);
	for (int j = 0; j < N; j++)
		for (int i = 0; i < N; i++) {
			a[i + (size_t)j * N] = a_at(i, j);
			b[i + (size_t)j * N] = b_at(i, j);
		}

	const size_t bytes = sizeof(float) * N * N;
	const float one = 1, zero = 0;
	float *da = nullptr, *db = nullptr, *dc = nullptr;
	cublasHandle_t h = nullptr;
	cudaEvent_t start = nullptr, stop = nullptr;
	double max_rel = 0, ms = 0;
	bool checked = false;

	if (cuda_ok(cudaMalloc(&da, bytes), "cudaMalloc") && cuda_ok(cudaMalloc(&db, bytes), "cudaMalloc") &&
	    cuda_ok(cudaMalloc(&dc, bytes), "cudaMalloc") &&
	    cuda_ok(cudaMemcpy(da, a.data(), bytes, cudaMemcpyHostToDevice), "cudaMemcpy A") &&
	    cuda_ok(cudaMemcpy(db, b.data(), bytes, cudaMemcpyHostToDevice), "cudaMemcpy B") &&
	    blas_ok(cublasCreate(&h), "cublasCreate") &&
	    blas_ok(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, N, N, N, &one, da, N, db, N, &zero, dc, N),
		    "cublasSgemm") &&
	    cuda_ok(cudaMemcpy(c.data(), dc, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy C")) {
		for (int n = 0; n < CHECKED; n++) {
			int i = (n * 97 + 13) % N, j = (n * 61 + 7) % N;
			if (n == CHECKED - 1)
				i = j = N - 1;
			double ref = 0;
			for (int k = 0; k < N; k++)
				ref += (double)a_at(i, k) * b_at(k, j);
			double rel = fabs(c[i + (size_t)j * N] - ref) / fmax(fabs(ref), 1.0);
			if (!std::isnan(max_rel) && !(rel <= max_rel))
				max_rel = rel; // NaN sticks
		}
		checked = true;
		bad |= !(max_rel <= MARGIN);
	}

	if (!bad && cuda_ok(cudaEventCreate(&start), "cudaEventCreate") &&
	    cuda_ok(cudaEventCreate(&stop), "cudaEventCreate") &&
	    cuda_ok(cudaEventRecord(start), "cudaEventRecord")) {
		for (int r = 0; r < TIMED && !bad; r++)
			blas_ok(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, N, N, N, &one, da, N, db, N, &zero,
					    dc, N),
				"cublasSgemm");
		float total = 0;
		if (!bad && cuda_ok(cudaEventRecord(stop), "cudaEventRecord") &&
		    cuda_ok(cudaEventSynchronize(stop), "cudaEventSynchronize") &&
		    cuda_ok(cudaEventElapsedTime(&total, start, stop), "cudaEventElapsedTime"))
			ms = total / TIMED;
	}

	if (start)
		cudaEventDestroy(start);
	if (stop)
		cudaEventDestroy(stop);
	if (h)
		blas_ok(cublasDestroy(h), "cublasDestroy");
	cudaFree(da);
	cudaFree(db);
	cudaFree(dc);
	// null for what was not measured (or came out NaN)
	char rel_s[32] = "null", ms_s[32] = "null", gflops_s[32] = "null";
	if (checked && !std::isnan(max_rel))
		snprintf(rel_s, sizeof(rel_s), "%.3g", max_rel);
	if (ms > 0) {
		snprintf(ms_s, sizeof(ms_s), "%.4f", ms);
		snprintf(gflops_s, sizeof(gflops_s), "%.1f", 2.0 * N * N * N / (ms * 1e6));
	}
	printf("{\"ok\":%s,\"max_rel_err\":%s,\"ms_per_sgemm\":%s,\"gflops\":%s}\n",
	       bad ? "false" : "true", rel_s, ms_s, gflops_s);
	return bad ? 1 : 0;
}
