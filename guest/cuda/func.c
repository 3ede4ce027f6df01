/* SPDX-License-Identifier: MIT */
/*
 * func.c - what programs ask of a kernel: its attributes, its occupancy,
 * and a library's global variables. The host's driver answers each
 * question once (FUNC_ATTR, OCCUPANCY, GLOBAL); the answers are kept
 * here, since cuBLAS and PyTorch ask the same ones before every launch
 * (the occupancy calls some 50 times per cuBLAS sgemm: research notes,
 * cuda-remoting.md section 2). Setting an attribute forgets the kernel's
 * answers on that device.
 */
#include <pthread.h>
#include <string.h>

#include "kernel.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* the caches here */

/* Attribute @attr of @k on @dev, from the cache or the host. */
static CUresult get_attr(struct CUfunc_st *k, CUfunction_attribute attr, CUdevice dev, int *pi)
{
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_FUNC_ATTR, .v = { k->host, (uint64_t)attr } },
			     r;
	CUresult rc;

	if (!pi || (unsigned)attr >= CU_FUNC_ATTRIBUTE_MAX)
		return CUDA_ERROR_INVALID_VALUE;
	if (!vgpu_cuda_device(dev))
		return CUDA_ERROR_INVALID_DEVICE;
	pthread_mutex_lock(&lock);
	if (k->attr_known[dev] >> attr & 1) {
		*pi = k->attr[dev][attr];
		pthread_mutex_unlock(&lock);
		return CUDA_SUCCESS;
	}
	pthread_mutex_unlock(&lock);
	rc = vgpu_cuda_call_on(dev, &m, NULL, &r, NULL, 0);
	if (rc != CUDA_SUCCESS)
		return rc;
	*pi = (int)(int32_t)r.v[0];
	pthread_mutex_lock(&lock);
	k->attr[dev][attr] = *pi;
	k->attr_known[dev] |= 1u << attr;
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

static CUresult set_attr(struct CUfunc_st *k, CUfunction_attribute attr, int value, CUdevice dev)
{
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_FUNC_ATTR,
				   .v = { k->host, (uint64_t)attr, 1, (uint32_t)value } }, r;
	CUresult rc;

	if ((unsigned)attr >= CU_FUNC_ATTRIBUTE_MAX)
		return CUDA_ERROR_INVALID_VALUE;
	if (!vgpu_cuda_device(dev))
		return CUDA_ERROR_INVALID_DEVICE;
	rc = vgpu_cuda_call_on(dev, &m, NULL, &r, NULL, 0);
	/* What it changes (other attributes, occupancy) is asked again. */
	pthread_mutex_lock(&lock);
	k->attr_known[dev] = 0;
	pthread_mutex_unlock(&lock);
	vgpu_cuda_occupancy_forget(k);
	return rc;
}

static CUresult ready_kernel(const void *handle, struct CUfunc_st **ret)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	*ret = vgpu_cuda_kernel(handle);
	return *ret ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CUresult cuFuncGetAttribute(int *pi, CUfunction_attribute attrib, CUfunction hfunc)
{
	struct CUfunc_st *k;
	CUresult rc = ready_kernel(hfunc, &k);

	return rc == CUDA_SUCCESS ? get_attr(k, attrib, vgpu_cuda_current_device(), pi) : rc;
}

CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value)
{
	struct CUfunc_st *k;
	CUresult rc = ready_kernel(hfunc, &k);

	return rc == CUDA_SUCCESS ? set_attr(k, attrib, value, vgpu_cuda_current_device()) : rc;
}

CUresult cuKernelGetAttribute(int *pi, CUfunction_attribute attrib, CUkernel kernel, CUdevice dev)
{
	struct CUfunc_st *k;
	CUresult rc = ready_kernel(kernel, &k);

	return rc == CUDA_SUCCESS ? get_attr(k, attrib, dev, pi) : rc;
}

CUresult cuKernelSetAttribute(CUfunction_attribute attrib, int val, CUkernel kernel, CUdevice dev)
{
	struct CUfunc_st *k;
	CUresult rc = ready_kernel(kernel, &k);

	return rc == CUDA_SUCCESS ? set_attr(k, attrib, val, dev) : rc;
}

/* The cache preference is a hint the driver may ignore: taken, and not
 * sent (the shared memory carveout attribute is the one that binds). */
CUresult cuFuncSetCacheConfig(CUfunction hfunc, CUfunc_cache config)
{
	struct CUfunc_st *k;
	CUresult rc = ready_kernel(hfunc, &k);

	if (rc == CUDA_SUCCESS && (unsigned)config > CU_FUNC_CACHE_PREFER_EQUAL)
		rc = CUDA_ERROR_INVALID_VALUE;
	return rc;
}

CUresult cuKernelSetCacheConfig(CUkernel kernel, CUfunc_cache config, CUdevice dev)
{
	if (dev < 0 || dev >= VGPU_CUDA_MAX_DEVICES)
		return CUDA_ERROR_INVALID_DEVICE;
	return cuFuncSetCacheConfig((CUfunction)kernel, config);
}

/* Occupancy answers: a small cache keyed by the whole question. */
#define OCC_SLOTS 256
struct occ {
	const struct CUfunc_st *k;   /* NULL: empty */
	uint64_t key[5];             /* device, what, a2, a3, a4 (CLUSTERS: a hash) */
	uint64_t res[2];
};
static struct occ occ_cache[OCC_SLOTS];

static uint64_t hash(const void *p, size_t n, uint64_t h)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull; /* FNV-1a */
	return h;
}

void vgpu_cuda_occupancy_forget(const struct CUfunc_st *k)
{
	pthread_mutex_lock(&lock);
	for (int i = 0; i < OCC_SLOTS; i++)
		if (occ_cache[i].k == k)
			occ_cache[i].k = NULL;
	pthread_mutex_unlock(&lock);
}

/* OCCUPANCY @what of @k with @a2..@a4 (and CLUSTERS' @data), on the
 * current device: res[0..1]. */
static CUresult occupancy(struct CUfunc_st *k, uint64_t what, uint64_t a2, uint64_t a3, uint64_t a4,
			  const void *data, uint32_t len, uint64_t res[2])
{
	CUdevice dev = vgpu_cuda_current_device();
	const uint64_t key[5] = { (uint64_t)dev, what, a2, a3, len ? hash(data, len, a4) : a4 };
	struct occ *slot = &occ_cache[hash(key, sizeof(key), (uintptr_t)k) % OCC_SLOTS];
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_OCCUPANCY,
				   .v = { k->host, what, a2, a3, a4 }, .data_len = len }, r;
	CUresult rc;

	pthread_mutex_lock(&lock);
	if (slot->k == k && memcmp(slot->key, key, sizeof(key)) == 0) {
		memcpy(res, slot->res, sizeof(slot->res));
		pthread_mutex_unlock(&lock);
		return CUDA_SUCCESS;
	}
	pthread_mutex_unlock(&lock);
	rc = vgpu_cuda_call(&m, data, &r, NULL, 0);
	if (rc != CUDA_SUCCESS)
		return rc;
	res[0] = r.v[0];
	res[1] = r.v[1];
	pthread_mutex_lock(&lock);
	slot->k = k;
	memcpy(slot->key, key, sizeof(key));
	memcpy(slot->res, res, sizeof(slot->res));
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

CUresult cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int *numBlocks, CUfunction func,
							      int blockSize, size_t dynamicSMemSize,
							      unsigned int flags)
{
	struct CUfunc_st *k;
	uint64_t res[2];
	CUresult rc = ready_kernel(func, &k);

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!numBlocks || blockSize <= 0)
		return CUDA_ERROR_INVALID_VALUE;
	rc = occupancy(k, VGPU_CUDA_OCC_BLOCKS, (uint64_t)blockSize, dynamicSMemSize, flags, NULL, 0,
		       res);
	if (rc == CUDA_SUCCESS)
		*numBlocks = (int)(int32_t)res[0];
	return rc;
}

CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int *numBlocks, CUfunction func,
						     int blockSize, size_t dynamicSMemSize)
{
	return cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(numBlocks, func, blockSize,
								    dynamicSMemSize, 0);
}

CUresult cuOccupancyAvailableDynamicSMemPerBlock(size_t *dynamicSmemSize, CUfunction func,
						 int numBlocks, int blockSize)
{
	struct CUfunc_st *k;
	uint64_t res[2];
	CUresult rc = ready_kernel(func, &k);

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!dynamicSmemSize || numBlocks <= 0 || blockSize <= 0)
		return CUDA_ERROR_INVALID_VALUE;
	rc = occupancy(k, VGPU_CUDA_OCC_SMEM, (uint64_t)numBlocks, (uint64_t)blockSize, 0, NULL, 0,
		       res);
	if (rc == CUDA_SUCCESS)
		*dynamicSmemSize = (size_t)res[0];
	return rc;
}

/*
 * The block size that keeps the most threads of @func resident, as the
 * driver picks it (and cudart's own cudaOccupancyMaxPotentialBlockSize):
 * every multiple of the warp up to the kernel's and the caller's limit,
 * its blocks per multiprocessor asked of the host (and kept), the largest
 * product wins, the larger block on a tie. The callback (the dynamic
 * shared memory a block size needs) runs here, in the caller.
 */
CUresult cuOccupancyMaxPotentialBlockSizeWithFlags(int *minGridSize, int *blockSize,
						   CUfunction func,
						   CUoccupancyB2DSize blockSizeToDynamicSMemSize,
						   size_t dynamicSMemSize, int blockSizeLimit,
						   unsigned int flags)
{
	const struct vgpu_cuda_device_desc *d;
	struct CUfunc_st *k;
	int max_threads = 0, best_blocks = 0, best_size = 0;
	CUresult rc = ready_kernel(func, &k);

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!minGridSize || !blockSize || blockSizeLimit < 0)
		return CUDA_ERROR_INVALID_VALUE;
	d = vgpu_cuda_device(vgpu_cuda_current_device());
	rc = get_attr(k, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, vgpu_cuda_current_device(),
		      &max_threads);
	if (rc != CUDA_SUCCESS)
		return rc;
	int warp = d->attr[CU_DEVICE_ATTRIBUTE_WARP_SIZE - 1] > 0
			   ? d->attr[CU_DEVICE_ATTRIBUTE_WARP_SIZE - 1] : 32;
	int sms = d->attr[CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT - 1];
	int limit = blockSizeLimit && blockSizeLimit < max_threads ? blockSizeLimit : max_threads;

	for (int size = limit / warp * warp; size > 0; size -= warp) {
		size_t smem = blockSizeToDynamicSMemSize ? blockSizeToDynamicSMemSize(size)
							 : dynamicSMemSize;
		int blocks = 0;

		rc = cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(&blocks, func, size, smem,
									  flags);
		if (rc != CUDA_SUCCESS)
			return rc;
		if ((long)blocks * size > (long)best_blocks * best_size) {
			best_blocks = blocks;
			best_size = size;
		}
	}
	*minGridSize = best_blocks * (sms > 0 ? sms : 1);
	*blockSize = best_size;
	return CUDA_SUCCESS;
}

CUresult cuOccupancyMaxPotentialBlockSize(int *minGridSize, int *blockSize, CUfunction func,
					  CUoccupancyB2DSize blockSizeToDynamicSMemSize,
					  size_t dynamicSMemSize, int blockSizeLimit)
{
	return cuOccupancyMaxPotentialBlockSizeWithFlags(minGridSize, blockSize, func,
							 blockSizeToDynamicSMemSize,
							 dynamicSMemSize, blockSizeLimit, 0);
}

CUresult cuOccupancyMaxActiveClusters(int *numClusters, CUfunction func,
				      const CUlaunchConfig *config)
{
	uint8_t buf[VGPU_CUDA_LAUNCH_CONFIG_BYTES +
		    VGPU_CUDA_MAX_LAUNCH_ATTRS * VGPU_CUDA_LAUNCH_ATTR_BYTES];
	struct CUfunc_st *k;
	unsigned int n = 0;
	uint64_t res[2];
	CUresult rc = ready_kernel(func, &k);

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!numClusters || !config)
		return CUDA_ERROR_INVALID_VALUE;
	const uint32_t head[8] = { config->gridDimX,  config->gridDimY,  config->gridDimZ,
				   config->blockDimX, config->blockDimY, config->blockDimZ,
				   config->sharedMemBytes, 0 };

	memcpy(buf, head, sizeof(head));
	rc = vgpu_cuda_launch_attrs(config->attrs, config->numAttrs,
				    buf + VGPU_CUDA_LAUNCH_CONFIG_BYTES, &n);
	if (rc == CUDA_SUCCESS)
		rc = occupancy(k, VGPU_CUDA_OCC_CLUSTERS, 0, 0, 0, buf,
			       VGPU_CUDA_LAUNCH_CONFIG_BYTES + n * VGPU_CUDA_LAUNCH_ATTR_BYTES, res);
	if (rc == CUDA_SUCCESS)
		*numClusters = (int)(int32_t)res[0];
	return rc;
}

/* A global variable of @library on the host: its address there and its
 * bytes, which the host lets this process copy to and from like its own
 * allocations until the library is unloaded. Asked each time (programs
 * ask once per variable: cudart keeps the answer). */
CUresult cuLibraryGetGlobal(CUdeviceptr *dptr, size_t *bytes, CUlibrary library, const char *name)
{
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_GLOBAL }, r;
	size_t len;
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!name || (!dptr && !bytes))
		return CUDA_ERROR_INVALID_VALUE;
	len = strnlen(name, VGPU_CUDA_MAX_NAME);
	if (len == 0 || len >= VGPU_CUDA_MAX_NAME)
		return CUDA_ERROR_NOT_FOUND;
	rc = vgpu_cuda_library_host(library, &m.v[0]);
	if (rc != CUDA_SUCCESS)
		return rc;
	m.data_len = (uint32_t)len + 1;
	rc = vgpu_cuda_call(&m, name, &r, NULL, 0);
	if (rc != CUDA_SUCCESS)
		return rc;
	/* Device memory, as far as pointer.c tells, until the library goes. */
	if (!vgpu_cuda_is_device((CUdeviceptr)r.v[0]))
		vgpu_cuda_block_add((CUdeviceptr)r.v[0], (size_t)r.v[1], vgpu_cuda_current_device(),
				    library);
	if (dptr)
		*dptr = (CUdeviceptr)r.v[0];
	if (bytes)
		*bytes = (size_t)r.v[1];
	return CUDA_SUCCESS;
}

CUresult cuModuleGetGlobal_v2(CUdeviceptr *dptr, size_t *bytes, CUmodule hmod, const char *name)
{
	return cuLibraryGetGlobal(dptr, bytes, (CUlibrary)hmod, name);
}
