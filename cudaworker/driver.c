/* SPDX-License-Identifier: MIT */
/*
 * driver.c - the host's CUDA driver, as the worker uses it: libcuda.so.1
 * dlopen()ed (the library path decides which: NVIDIA's on a GPU host),
 * the entry points by their exported names (the versions cuda.h maps
 * today's names to), cuInit, the VM's devices described once and their
 * primary contexts retained once for the worker's life.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "worker.h"

#define SYM(field, name)                                             \
	do {                                                         \
		*(void **)&d->field = dlsym(h, name);                \
		if (!d->field) {                                     \
			fprintf(stderr, "vgpu-cuda-worker: the driver has no %s\n", name); \
			return false;                                \
		}                                                    \
	} while (0)

static bool load(struct driver *d)
{
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		fprintf(stderr, "vgpu-cuda-worker: no CUDA driver: %s\n", dlerror());
		return false;
	}
	SYM(init, "cuInit");
	SYM(driver_version, "cuDriverGetVersion");
	SYM(device_get, "cuDeviceGet");
	SYM(device_count, "cuDeviceGetCount");
	SYM(device_name, "cuDeviceGetName");
	SYM(device_total_mem, "cuDeviceTotalMem_v2");
	SYM(device_uuid, "cuDeviceGetUuid_v2");
	SYM(device_bus_id, "cuDeviceGetPCIBusId");
	SYM(device_attribute, "cuDeviceGetAttribute");
	SYM(primary_retain, "cuDevicePrimaryCtxRetain");
	SYM(ctx_set_current, "cuCtxSetCurrent");
	SYM(mem_alloc, "cuMemAlloc_v2");
	SYM(mem_alloc_managed, "cuMemAllocManaged");
	SYM(mem_free, "cuMemFree_v2");
	SYM(exchange_capture_mode, "cuThreadExchangeStreamCaptureMode");
	SYM(mem_info, "cuMemGetInfo_v2");
	SYM(htod, "cuMemcpyHtoD_v2");
	SYM(dtoh, "cuMemcpyDtoH_v2");
	SYM(ctx_sync, "cuCtxSynchronize");
	SYM(library_load, "cuLibraryLoadData");
	SYM(library_unload, "cuLibraryUnload");
	SYM(library_get_kernel, "cuLibraryGetKernel");
	SYM(kernel_param_info, "cuKernelGetParamInfo");
	SYM(launch, "cuLaunchKernel");
	SYM(memset8, "cuMemsetD8Async");
	SYM(memset16, "cuMemsetD16Async");
	SYM(memset32, "cuMemsetD32Async");
	SYM(dtod, "cuMemcpyDtoDAsync_v2");
	SYM(htod_async, "cuMemcpyHtoDAsync_v2");
	SYM(dtoh_async, "cuMemcpyDtoHAsync_v2");
	SYM(priority_range, "cuCtxGetStreamPriorityRange");
	SYM(launch_ex, "cuLaunchKernelEx");
	SYM(kernel_get_function, "cuKernelGetFunction");
	SYM(func_get_attr, "cuFuncGetAttribute");
	SYM(func_set_attr, "cuFuncSetAttribute");
	SYM(occ_blocks, "cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags");
	SYM(occ_smem, "cuOccupancyAvailableDynamicSMemPerBlock");
	SYM(occ_clusters, "cuOccupancyMaxActiveClusters");
	SYM(library_get_global, "cuLibraryGetGlobal");
	SYM(ctx_api_version, "cuCtxGetApiVersion");
	SYM(ctx_get_limit, "cuCtxGetLimit");
	SYM(ctx_set_limit, "cuCtxSetLimit");
	SYM(host_register, "cuMemHostRegister_v2");
	SYM(host_unregister, "cuMemHostUnregister");
	SYM(host_device_pointer, "cuMemHostGetDevicePointer_v2");
	SYM(stream_create, "cuStreamCreateWithPriority");
	SYM(stream_destroy, "cuStreamDestroy_v2");
	SYM(stream_sync, "cuStreamSynchronize");
	SYM(stream_query, "cuStreamQuery");
	SYM(stream_wait, "cuStreamWaitEvent");
	SYM(event_create, "cuEventCreate");
	SYM(event_destroy, "cuEventDestroy_v2");
	SYM(event_record, "cuEventRecord");
	SYM(event_sync, "cuEventSynchronize");
	SYM(event_query, "cuEventQuery");
	SYM(event_elapsed, "cuEventElapsedTime");
	SYM(stream_is_capturing, "cuStreamIsCapturing");
	SYM(begin_capture, "cuStreamBeginCapture_v2");
	SYM(capture_info, "cuStreamGetCaptureInfo_v3");
	SYM(end_capture, "cuStreamEndCapture");
	SYM(graph_instantiate, "cuGraphInstantiateWithFlags");
	SYM(graph_launch, "cuGraphLaunch");
	SYM(graph_upload, "cuGraphUpload");
	SYM(graph_destroy, "cuGraphDestroy");
	SYM(graph_exec_destroy, "cuGraphExecDestroy");
	SYM(pool_create, "cuMemPoolCreate");
	SYM(pool_destroy, "cuMemPoolDestroy");
	SYM(pool_set_attr, "cuMemPoolSetAttribute");
	SYM(pool_get_attr, "cuMemPoolGetAttribute");
	SYM(pool_trim, "cuMemPoolTrimTo");
	SYM(alloc_from_pool, "cuMemAllocFromPoolAsync");
	SYM(free_async, "cuMemFreeAsync");
	SYM(vmm_create, "cuMemCreate");
	SYM(vmm_release, "cuMemRelease");
	SYM(vmm_reserve, "cuMemAddressReserve");
	SYM(vmm_free, "cuMemAddressFree");
	SYM(vmm_map, "cuMemMap");
	SYM(vmm_unmap, "cuMemUnmap");
	SYM(vmm_access, "cuMemSetAccess");
	SYM(vmm_granularity, "cuMemGetAllocationGranularity");
	SYM(vmm_props, "cuMemGetAllocationPropertiesFromHandle");
	SYM(array_create, "cuArray3DCreate_v2");
	SYM(array_destroy, "cuArrayDestroy");
	SYM(copy_3d_async, "cuMemcpy3DAsync_v2");
	SYM(tex_create, "cuTexObjectCreate");
	SYM(tex_destroy, "cuTexObjectDestroy");
	SYM(surf_create, "cuSurfObjectCreate");
	SYM(surf_destroy, "cuSurfObjectDestroy");
	return true;
}

/* desc->dev[i] from the host's device @dev. */
static CUresult describe(const struct driver *d, CUdevice dev, struct vgpu_cuda_device_desc *v)
{
	CUuuid uuid;
	size_t total;
	CUresult rc;

	memset(v, 0, sizeof(*v));
	rc = d->device_name(v->name, sizeof(v->name) - 1, dev);
	if (rc == CUDA_SUCCESS)
		rc = d->device_uuid(&uuid, dev);
	if (rc == CUDA_SUCCESS)
		rc = d->device_total_mem(&total, dev);
	if (rc == CUDA_SUCCESS)
		rc = d->device_bus_id(v->pci_bus_id, sizeof(v->pci_bus_id) - 1, dev);
	if (rc != CUDA_SUCCESS)
		return rc;
	memcpy(v->uuid, uuid.bytes, sizeof(v->uuid));
	v->total_mem = total;
	v->n_attrs = CU_DEVICE_ATTRIBUTE_MAX - 1 < VGPU_CUDA_ATTRS ? CU_DEVICE_ATTRIBUTE_MAX - 1
								 : VGPU_CUDA_ATTRS;
	for (uint32_t a = 1; a <= v->n_attrs; a++)
		if (d->device_attribute(&v->attr[a - 1], (CUdevice_attribute)a, dev) != CUDA_SUCCESS)
			v->attr[a - 1] = 0; /* an attribute this device does not know */
	return CUDA_SUCCESS;
}

void worker_driver_up(struct worker *w, const int *ordinals, int n)
{
	struct driver *d = &w->drv;
	int version = 0, count = 0;
	CUresult rc;

	if (!load(d)) {
		w->drv_status = CUDA_ERROR_NO_DEVICE;
		return;
	}
	rc = d->init(0);
	if (rc == CUDA_SUCCESS)
		rc = d->driver_version(&version);
	if (rc == CUDA_SUCCESS)
		rc = d->device_count(&count);
	if (rc != CUDA_SUCCESS) {
		fprintf(stderr, "vgpu-cuda-worker: the driver does not start: CUresult %d\n", rc);
		w->drv_status = rc;
		return;
	}
	w->desc.driver_version = (uint32_t)version;
	for (int i = 0; i < n && w->desc.count < VGPU_CUDA_MAX_DEVICES; i++) {
		uint32_t k = w->desc.count;
		CUdevice dev;

		if (ordinals[i] >= count) {
			fprintf(stderr, "vgpu-cuda-worker: GPU %d: the driver has %d\n", ordinals[i],
				count);
			continue;
		}
		rc = d->device_get(&dev, ordinals[i]);
		if (rc == CUDA_SUCCESS)
			rc = describe(d, dev, &w->desc.dev[k]);
		if (rc == CUDA_SUCCESS)
			rc = d->primary_retain(&w->ctx[k], dev);
		if (rc != CUDA_SUCCESS) {
			fprintf(stderr, "vgpu-cuda-worker: GPU %d: CUresult %d\n", ordinals[i], rc);
			continue;
		}
		w->host_ordinal[k] = ordinals[i];
		w->desc.count = k + 1;
	}
	w->drv_status = CUDA_SUCCESS;
}
