/* SPDX-License-Identifier: MIT */
/*
 * proc.c - cuGetProcAddress: how cudart, cuBLAS and PyTorch reach the
 * driver. cudart dlopen()s libcuda.so.1 and asks for some 440 entry points
 * by name and CUDA version (with CUDA 13's static cudart); a program calls
 * a few dozen of them.
 *
 * The names and versions are the toolkit's (gen-names.py over
 * cudaTypedefs.h): a name that is not an entry point of the driver API is
 * CUDA_ERROR_NOT_FOUND with CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND; a name
 * whose first version is newer than the caller's is
 * CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT. Otherwise the caller gets
 * the highest version not newer than it asked for, of the per-thread
 * default stream variant (_ptds/_ptsz) when its flags ask for one, and
 * that version's implementation here, or the entry's stub, which logs
 * the entry point once and returns CUDA_ERROR_NOT_SUPPORTED (cudart
 * refuses to start when an entry point it resolves at start-up is
 * missing, even one it never calls).
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"

/* What this library implements: entry point, version, variant. */
struct impl {
	const char *name;
	int version;
	int per_thread;
	void *fn;
};

#define I(name, version, fn) { #name, version, 0, (void *)fn }
/* The per-thread default stream variant (_ptds, _ptsz). */
#define PT(name, version, fn) { #name, version, 1, (void *)fn }

/* The first version (CUDA 11.3), exported as cuGetProcAddress, which
 * cuda.h maps to the second. */
CUresult cuGetProcAddress_v1(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags)
	__asm__("cuGetProcAddress");

static const struct impl impls[] = {
	I(cuCtxGetCurrent, 4000, cuCtxGetCurrent),
	I(cuCtxCreate, 3020, cuCtxCreate_v2),
	I(cuCtxCreate, 11040, cuCtxCreate_v3),
	I(cuCtxCreate, 12050, cuCtxCreate_v4),
	I(cuCtxDestroy, 4000, cuCtxDestroy_v2),
	I(cuCtxGetApiVersion, 3020, cuCtxGetApiVersion),
	I(cuCtxGetDevice, 2000, cuCtxGetDevice),
	I(cuCtxGetFlags, 7000, cuCtxGetFlags),
	I(cuCtxGetId, 12000, cuCtxGetId),
	I(cuCtxGetDevice, 13000, cuCtxGetDevice_v2),
	I(cuCtxGetLimit, 3010, cuCtxGetLimit),
	I(cuCtxSetLimit, 3010, cuCtxSetLimit),
	I(cuCtxGetStreamPriorityRange, 5050, cuCtxGetStreamPriorityRange),
	I(cuCtxPopCurrent, 4000, cuCtxPopCurrent_v2),
	I(cuCtxPushCurrent, 4000, cuCtxPushCurrent_v2),
	I(cuCtxSetCurrent, 4000, cuCtxSetCurrent),
	I(cuCtxSynchronize, 2000, cuCtxSynchronize),
	I(cuCtxSynchronize, 13000, cuCtxSynchronize_v2),
	I(cuDeviceComputeCapability, 2000, cuDeviceComputeCapability),
	I(cuDeviceGet, 2000, cuDeviceGet),
	I(cuDeviceGetAttribute, 2000, cuDeviceGetAttribute),
	I(cuDeviceGetByPCIBusId, 4010, cuDeviceGetByPCIBusId),
	I(cuDeviceGetCount, 2000, cuDeviceGetCount),
	I(cuDeviceGetName, 2000, cuDeviceGetName),
	I(cuDeviceGetPCIBusId, 4010, cuDeviceGetPCIBusId),
	I(cuDeviceGetUuid, 9020, cuDeviceGetUuid_v2),
	I(cuDeviceGetUuid, 11040, cuDeviceGetUuid_v2),
	I(cuDevicePrimaryCtxGetState, 7000, cuDevicePrimaryCtxGetState),
	/* The first versions of these differ only in what the second made
	 * defined (release and flags of an active context): served alike. */
	I(cuDevicePrimaryCtxRelease, 7000, cuDevicePrimaryCtxRelease_v2),
	I(cuDevicePrimaryCtxRelease, 11000, cuDevicePrimaryCtxRelease_v2),
	I(cuDevicePrimaryCtxReset, 7000, cuDevicePrimaryCtxReset_v2),
	I(cuDevicePrimaryCtxReset, 11000, cuDevicePrimaryCtxReset_v2),
	I(cuDevicePrimaryCtxRetain, 7000, cuDevicePrimaryCtxRetain),
	I(cuDevicePrimaryCtxSetFlags, 7000, cuDevicePrimaryCtxSetFlags_v2),
	I(cuDevicePrimaryCtxSetFlags, 11000, cuDevicePrimaryCtxSetFlags_v2),
	I(cuDeviceTotalMem, 3020, cuDeviceTotalMem_v2),
	I(cuDriverGetVersion, 2020, cuDriverGetVersion),
	I(cuEventCreate, 2000, cuEventCreate),
	I(cuEventDestroy, 2000, cuEventDestroy_v2),
	I(cuEventDestroy, 4000, cuEventDestroy_v2),
	I(cuEventElapsedTime, 2000, cuEventElapsedTime_v2),
	I(cuEventElapsedTime, 12080, cuEventElapsedTime_v2),
	I(cuEventQuery, 2000, cuEventQuery),
	I(cuEventRecord, 2000, cuEventRecord),
	PT(cuEventRecord, 7000, cuEventRecord),
	I(cuEventRecordWithFlags, 11010, cuEventRecordWithFlags),
	PT(cuEventRecordWithFlags, 11010, cuEventRecordWithFlags),
	I(cuEventSynchronize, 2000, cuEventSynchronize),
	I(cuFuncGetAttribute, 2020, cuFuncGetAttribute),
	I(cuFuncGetParamInfo, 12040, cuFuncGetParamInfo),
	I(cuFuncSetAttribute, 9000, cuFuncSetAttribute),
	I(cuFuncSetCacheConfig, 3000, cuFuncSetCacheConfig),
	I(cuKernelSetCacheConfig, 12000, cuKernelSetCacheConfig),
	I(cuGetErrorName, 6000, cuGetErrorName),
	I(cuGetErrorString, 6000, cuGetErrorString),
	I(cuGetExportTable, 3000, cuGetExportTable),
	I(cuGetProcAddress, 11030, cuGetProcAddress_v1),
	I(cuGetProcAddress, 12000, cuGetProcAddress_v2),
	I(cuInit, 2000, cuInit),
	I(cuKernelGetFunction, 12000, cuKernelGetFunction),
	I(cuKernelGetAttribute, 12000, cuKernelGetAttribute),
	I(cuKernelGetParamInfo, 12040, cuKernelGetParamInfo),
	I(cuKernelSetAttribute, 12000, cuKernelSetAttribute),
	I(cuLaunchKernel, 4000, cuLaunchKernel),
	PT(cuLaunchKernel, 7000, cuLaunchKernel),
	I(cuLaunchHostFunc, 10000, cuLaunchHostFunc),
	PT(cuLaunchHostFunc, 10000, cuLaunchHostFunc),
	I(cuLaunchCooperativeKernel, 9000, cuLaunchCooperativeKernel),
	PT(cuLaunchCooperativeKernel, 9000, cuLaunchCooperativeKernel),
	I(cuLaunchKernelEx, 11060, cuLaunchKernelEx),
	PT(cuLaunchKernelEx, 11060, cuLaunchKernelEx),
	I(cuLibraryGetGlobal, 12000, cuLibraryGetGlobal),
	I(cuLibraryGetKernel, 12000, cuLibraryGetKernel),
	I(cuLibraryLoadData, 12000, cuLibraryLoadData),
	I(cuLibraryUnload, 12000, cuLibraryUnload),
	I(cuMemAlloc, 3020, cuMemAlloc_v2),
	I(cuMemAllocManaged, 6000, cuMemAllocManaged),
	I(cuMemAdvise, 8000, cuMemAdvise_v1),
	I(cuMemAdvise, 12020, cuMemAdvise_v2),
	I(cuMemPrefetchAsync, 8000, cuMemPrefetchAsync_v1),
	PT(cuMemPrefetchAsync, 8000, cuMemPrefetchAsync_v1),
	I(cuMemPrefetchAsync, 12020, cuMemPrefetchAsync_v2),
	PT(cuMemPrefetchAsync, 12020, cuMemPrefetchAsync_v2),
	I(cuStreamAttachMemAsync, 6000, cuStreamAttachMemAsync),
	PT(cuStreamAttachMemAsync, 7000, cuStreamAttachMemAsync),
	I(cuMemAllocAsync, 11020, cuMemAllocAsync),
	PT(cuMemAllocAsync, 11020, cuMemAllocAsync),
	I(cuMemAllocFromPoolAsync, 11020, cuMemAllocFromPoolAsync),
	PT(cuMemAllocFromPoolAsync, 11020, cuMemAllocFromPoolAsync),
	I(cuMemFreeAsync, 11020, cuMemFreeAsync),
	PT(cuMemFreeAsync, 11020, cuMemFreeAsync),
	I(cuMemPoolCreate, 11020, cuMemPoolCreate),
	I(cuMemPoolDestroy, 11020, cuMemPoolDestroy),
	I(cuMemPoolSetAttribute, 11020, cuMemPoolSetAttribute),
	I(cuMemPoolGetAttribute, 11020, cuMemPoolGetAttribute),
	I(cuMemPoolTrimTo, 11020, cuMemPoolTrimTo),
	I(cuMemPoolSetAccess, 11020, cuMemPoolSetAccess),
	I(cuMemPoolGetAccess, 11020, cuMemPoolGetAccess),
	I(cuDeviceGetDefaultMemPool, 11020, cuDeviceGetDefaultMemPool),
	I(cuDeviceGetMemPool, 11020, cuDeviceGetMemPool),
	I(cuDeviceSetMemPool, 11020, cuDeviceSetMemPool),
	I(cuMemGetDefaultMemPool, 13000, cuMemGetDefaultMemPool),
	I(cuMemGetMemPool, 13000, cuMemGetMemPool),
	I(cuMemSetMemPool, 13000, cuMemSetMemPool),
	I(cuMemAddressReserve, 10020, cuMemAddressReserve),
	I(cuMemAddressFree, 10020, cuMemAddressFree),
	I(cuMemCreate, 10020, cuMemCreate),
	I(cuMemRelease, 10020, cuMemRelease),
	I(cuMemMap, 10020, cuMemMap),
	I(cuMemUnmap, 10020, cuMemUnmap),
	I(cuMemSetAccess, 10020, cuMemSetAccess),
	I(cuMemGetAllocationGranularity, 10020, cuMemGetAllocationGranularity),
	I(cuMemGetAllocationPropertiesFromHandle, 10020, cuMemGetAllocationPropertiesFromHandle),
	I(cuMemRetainAllocationHandle, 11000, cuMemRetainAllocationHandle),
	I(cuMemAllocHost, 3020, cuMemAllocHost_v2),
	I(cuMemAllocPitch, 3020, cuMemAllocPitch_v2),
	I(cuMemFree, 3020, cuMemFree_v2),
	I(cuMemFreeHost, 2000, cuMemFreeHost),
	I(cuMemGetAddressRange, 3020, cuMemGetAddressRange_v2),
	I(cuMemGetInfo, 3020, cuMemGetInfo_v2),
	I(cuMemHostAlloc, 2020, cuMemHostAlloc),
	I(cuMemHostGetDevicePointer, 3020, cuMemHostGetDevicePointer_v2),
	I(cuMemHostGetFlags, 2030, cuMemHostGetFlags),
	I(cuMemHostRegister, 4000, cuMemHostRegister_v2),
	I(cuMemHostRegister, 6050, cuMemHostRegister_v2),
	I(cuMemHostUnregister, 4000, cuMemHostUnregister),
	I(cuMemcpy, 4000, cuMemcpy),
	I(cuMemcpy2D, 3020, cuMemcpy2D_v2),
	PT(cuMemcpy2D, 7000, cuMemcpy2D_v2),
	I(cuMemcpy2DAsync, 3020, cuMemcpy2DAsync_v2),
	PT(cuMemcpy2DAsync, 7000, cuMemcpy2DAsync_v2),
	I(cuMemcpy2DUnaligned, 3020, cuMemcpy2DUnaligned_v2),
	PT(cuMemcpy2DUnaligned, 7000, cuMemcpy2DUnaligned_v2),
	/* CUDA arrays (array.c): the per-thread variants of the synchronous
	 * copies are the same, as for cuMemcpy2D. */
	I(cuArrayCreate, 3020, cuArrayCreate_v2),
	I(cuArray3DCreate, 3020, cuArray3DCreate_v2),
	I(cuArrayDestroy, 2000, cuArrayDestroy),
	I(cuArrayGetDescriptor, 3020, cuArrayGetDescriptor_v2),
	I(cuArray3DGetDescriptor, 3020, cuArray3DGetDescriptor_v2),
	I(cuMemcpy3D, 3020, cuMemcpy3D_v2),
	PT(cuMemcpy3D, 7000, cuMemcpy3D_v2),
	I(cuMemcpy3DAsync, 3020, cuMemcpy3DAsync_v2),
	PT(cuMemcpy3DAsync, 7000, cuMemcpy3DAsync_v2),
	I(cuMemcpyHtoA, 3020, cuMemcpyHtoA_v2),
	PT(cuMemcpyHtoA, 7000, cuMemcpyHtoA_v2),
	I(cuMemcpyHtoAAsync, 3020, cuMemcpyHtoAAsync_v2),
	PT(cuMemcpyHtoAAsync, 7000, cuMemcpyHtoAAsync_v2),
	I(cuMemcpyAtoH, 3020, cuMemcpyAtoH_v2),
	PT(cuMemcpyAtoH, 7000, cuMemcpyAtoH_v2),
	I(cuMemcpyAtoHAsync, 3020, cuMemcpyAtoHAsync_v2),
	PT(cuMemcpyAtoHAsync, 7000, cuMemcpyAtoHAsync_v2),
	I(cuMemcpyDtoA, 3020, cuMemcpyDtoA_v2),
	PT(cuMemcpyDtoA, 7000, cuMemcpyDtoA_v2),
	I(cuMemcpyAtoD, 3020, cuMemcpyAtoD_v2),
	PT(cuMemcpyAtoD, 7000, cuMemcpyAtoD_v2),
	I(cuMemcpyAtoA, 3020, cuMemcpyAtoA_v2),
	PT(cuMemcpyAtoA, 7000, cuMemcpyAtoA_v2),
	I(cuTexObjectCreate, 5000, cuTexObjectCreate),
	I(cuTexObjectDestroy, 5000, cuTexObjectDestroy),
	I(cuSurfObjectCreate, 5000, cuSurfObjectCreate),
	I(cuSurfObjectDestroy, 5000, cuSurfObjectDestroy),
	I(cuTexObjectGetResourceDesc, 5000, cuTexObjectGetResourceDesc),
	I(cuTexObjectGetTextureDesc, 5000, cuTexObjectGetTextureDesc),
	I(cuTexObjectGetResourceViewDesc, 5000, cuTexObjectGetResourceViewDesc),
	I(cuSurfObjectGetResourceDesc, 5000, cuSurfObjectGetResourceDesc),
	PT(cuMemcpy, 7000, cuMemcpy),
	I(cuMemcpyAsync, 4000, cuMemcpyAsync),
	PT(cuMemcpyAsync, 7000, cuMemcpyAsync),
	/* Synchronous copies: no stream work of the process's to order them
	 * against yet, so the per-thread variants are the same. */
	I(cuMemcpyDtoD, 3020, cuMemcpyDtoD_v2),
	PT(cuMemcpyDtoD, 7000, cuMemcpyDtoD_v2),
	I(cuMemcpyDtoDAsync, 3020, cuMemcpyDtoDAsync_v2),
	PT(cuMemcpyDtoDAsync, 7000, cuMemcpyDtoDAsync_v2),
	I(cuMemcpyDtoH, 3020, cuMemcpyDtoH_v2),
	PT(cuMemcpyDtoH, 7000, cuMemcpyDtoH_v2),
	I(cuMemcpyDtoHAsync, 3020, cuMemcpyDtoHAsync_v2),
	PT(cuMemcpyDtoHAsync, 7000, cuMemcpyDtoHAsync_v2),
	I(cuMemcpyHtoD, 3020, cuMemcpyHtoD_v2),
	PT(cuMemcpyHtoD, 7000, cuMemcpyHtoD_v2),
	I(cuMemcpyHtoDAsync, 3020, cuMemcpyHtoDAsync_v2),
	PT(cuMemcpyHtoDAsync, 7000, cuMemcpyHtoDAsync_v2),
	I(cuMemsetD16, 3020, cuMemsetD16_v2),
	PT(cuMemsetD16, 7000, cuMemsetD16_v2),
	I(cuMemsetD16Async, 3020, cuMemsetD16Async),
	PT(cuMemsetD16Async, 7000, cuMemsetD16Async),
	I(cuMemsetD32, 3020, cuMemsetD32_v2),
	PT(cuMemsetD32, 7000, cuMemsetD32_v2),
	I(cuMemsetD32Async, 3020, cuMemsetD32Async),
	PT(cuMemsetD32Async, 7000, cuMemsetD32Async),
	I(cuMemsetD2D16, 3020, cuMemsetD2D16_v2),
	PT(cuMemsetD2D16, 7000, cuMemsetD2D16_v2),
	I(cuMemsetD2D16Async, 3020, cuMemsetD2D16Async),
	PT(cuMemsetD2D16Async, 7000, cuMemsetD2D16Async),
	I(cuMemsetD2D32, 3020, cuMemsetD2D32_v2),
	PT(cuMemsetD2D32, 7000, cuMemsetD2D32_v2),
	I(cuMemsetD2D32Async, 3020, cuMemsetD2D32Async),
	PT(cuMemsetD2D32Async, 7000, cuMemsetD2D32Async),
	I(cuMemsetD2D8, 3020, cuMemsetD2D8_v2),
	PT(cuMemsetD2D8, 7000, cuMemsetD2D8_v2),
	I(cuMemsetD2D8Async, 3020, cuMemsetD2D8Async),
	PT(cuMemsetD2D8Async, 7000, cuMemsetD2D8Async),
	I(cuMemsetD8, 3020, cuMemsetD8_v2),
	PT(cuMemsetD8, 7000, cuMemsetD8_v2),
	I(cuMemsetD8Async, 3020, cuMemsetD8Async),
	PT(cuMemsetD8Async, 7000, cuMemsetD8Async),
	I(cuModuleGetFunction, 2000, cuModuleGetFunction),
	I(cuModuleGetGlobal, 3020, cuModuleGetGlobal_v2),
	I(cuModuleGetLoadingMode, 11070, cuModuleGetLoadingMode),
	I(cuModuleLoadData, 2000, cuModuleLoadData),
	I(cuModuleUnload, 2000, cuModuleUnload),
	I(cuOccupancyAvailableDynamicSMemPerBlock, 10020, cuOccupancyAvailableDynamicSMemPerBlock),
	I(cuOccupancyMaxActiveBlocksPerMultiprocessor, 6050,
	  cuOccupancyMaxActiveBlocksPerMultiprocessor),
	I(cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags, 7000,
	  cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags),
	I(cuOccupancyMaxActiveClusters, 11070, cuOccupancyMaxActiveClusters),
	I(cuOccupancyMaxPotentialBlockSize, 6050, cuOccupancyMaxPotentialBlockSize),
	I(cuOccupancyMaxPotentialBlockSizeWithFlags, 7000,
	  cuOccupancyMaxPotentialBlockSizeWithFlags),
	I(cuPointerGetAttribute, 4000, cuPointerGetAttribute),
	I(cuProfilerStart, 4000, cuProfilerStart),
	I(cuProfilerStop, 4000, cuProfilerStop),
	I(cuPointerGetAttributes, 7000, cuPointerGetAttributes),
	I(cuStreamCreate, 2000, cuStreamCreate),
	I(cuStreamCreateWithPriority, 5050, cuStreamCreateWithPriority),
	/* Both versions of each destroy take the same arguments. */
	I(cuStreamDestroy, 2000, cuStreamDestroy_v2),
	I(cuStreamDestroy, 4000, cuStreamDestroy_v2),
	I(cuStreamGetCtx, 9020, cuStreamGetCtx),
	PT(cuStreamGetCtx, 9020, cuStreamGetCtx),
	I(cuStreamGetCaptureInfo, 10010, cuStreamGetCaptureInfo_v1),
	PT(cuStreamGetCaptureInfo, 10010, cuStreamGetCaptureInfo_v1),
	I(cuStreamGetCaptureInfo, 11030, cuStreamGetCaptureInfo_v2),
	PT(cuStreamGetCaptureInfo, 11030, cuStreamGetCaptureInfo_v2),
	I(cuStreamGetCaptureInfo, 12030, cuStreamGetCaptureInfo_v3),
	PT(cuStreamGetCaptureInfo, 12030, cuStreamGetCaptureInfo_v3),
	I(cuStreamGetFlags, 5050, cuStreamGetFlags),
	PT(cuStreamGetFlags, 7000, cuStreamGetFlags),
	I(cuStreamGetPriority, 5050, cuStreamGetPriority),
	PT(cuStreamGetPriority, 7000, cuStreamGetPriority),
	I(cuStreamIsCapturing, 10000, cuStreamIsCapturing),
	PT(cuStreamIsCapturing, 10000, cuStreamIsCapturing),
	I(cuStreamQuery, 2000, cuStreamQuery),
	PT(cuStreamQuery, 7000, cuStreamQuery),
	I(cuStreamSynchronize, 2000, cuStreamSynchronize),
	PT(cuStreamSynchronize, 7000, cuStreamSynchronize),
	I(cuStreamBeginCapture, 10000, cuStreamBeginCapture_v1),
	PT(cuStreamBeginCapture, 10000, cuStreamBeginCapture_v1),
	I(cuStreamBeginCapture, 10010, cuStreamBeginCapture_v2),
	PT(cuStreamBeginCapture, 10010, cuStreamBeginCapture_v2),
	I(cuStreamEndCapture, 10000, cuStreamEndCapture),
	PT(cuStreamEndCapture, 10000, cuStreamEndCapture),
	I(cuGraphInstantiate, 10000, cuGraphInstantiate_v2),
	I(cuGraphInstantiate, 11000, cuGraphInstantiate_v2),
	I(cuGraphInstantiateWithFlags, 11040, cuGraphInstantiateWithFlags),
	I(cuGraphLaunch, 10000, cuGraphLaunch),
	PT(cuGraphLaunch, 10000, cuGraphLaunch),
	I(cuGraphUpload, 11010, cuGraphUpload),
	PT(cuGraphUpload, 11010, cuGraphUpload),
	I(cuGraphExecDestroy, 10000, cuGraphExecDestroy),
	I(cuGraphDestroy, 10000, cuGraphDestroy),
	I(cuGraphCreate, 10000, cuGraphCreate),
	I(cuGraphAddKernelNode, 10000, cuGraphAddKernelNode_v1),
	I(cuGraphAddKernelNode, 12000, cuGraphAddKernelNode),
	I(cuGraphAddMemcpyNode, 10000, cuGraphAddMemcpyNode),
	I(cuGraphAddMemsetNode, 10000, cuGraphAddMemsetNode),
	I(cuGraphAddHostNode, 10000, cuGraphAddHostNode),
	I(cuGraphAddChildGraphNode, 10000, cuGraphAddChildGraphNode),
	I(cuGraphAddEmptyNode, 10000, cuGraphAddEmptyNode),
	I(cuGraphAddMemAllocNode, 11040, cuGraphAddMemAllocNode),
	I(cuGraphAddMemFreeNode, 11040, cuGraphAddMemFreeNode),
	I(cuGraphMemAllocNodeGetParams, 11040, cuGraphMemAllocNodeGetParams),
	I(cuGraphMemFreeNodeGetParams, 11040, cuGraphMemFreeNodeGetParams),
	I(cuDeviceGraphMemTrim, 11040, cuDeviceGraphMemTrim),
	I(cuDeviceGetGraphMemAttribute, 11040, cuDeviceGetGraphMemAttribute),
	I(cuDeviceSetGraphMemAttribute, 11040, cuDeviceSetGraphMemAttribute),
	I(cuGraphAddEventRecordNode, 11010, cuGraphAddEventRecordNode),
	I(cuGraphAddEventWaitNode, 11010, cuGraphAddEventWaitNode),
	I(cuGraphAddNode, 12020, cuGraphAddNode_v1),
	I(cuGraphAddNode, 12030, cuGraphAddNode),
	I(cuGraphNodeSetParams, 12020, cuGraphNodeSetParams),
	I(cuGraphKernelNodeGetParams, 10000, cuGraphKernelNodeGetParams_v1),
	I(cuGraphKernelNodeGetParams, 12000, cuGraphKernelNodeGetParams),
	I(cuGraphKernelNodeSetParams, 10000, cuGraphKernelNodeSetParams_v1),
	I(cuGraphKernelNodeSetParams, 12000, cuGraphKernelNodeSetParams),
	I(cuGraphMemcpyNodeGetParams, 10000, cuGraphMemcpyNodeGetParams),
	I(cuGraphMemcpyNodeSetParams, 10000, cuGraphMemcpyNodeSetParams),
	I(cuGraphMemsetNodeGetParams, 10000, cuGraphMemsetNodeGetParams),
	I(cuGraphMemsetNodeSetParams, 10000, cuGraphMemsetNodeSetParams),
	I(cuGraphHostNodeGetParams, 10000, cuGraphHostNodeGetParams),
	I(cuGraphHostNodeSetParams, 10000, cuGraphHostNodeSetParams),
	I(cuGraphChildGraphNodeGetGraph, 10000, cuGraphChildGraphNodeGetGraph),
	I(cuGraphEventRecordNodeGetEvent, 11010, cuGraphEventRecordNodeGetEvent),
	I(cuGraphEventRecordNodeSetEvent, 11010, cuGraphEventRecordNodeSetEvent),
	I(cuGraphEventWaitNodeGetEvent, 11010, cuGraphEventWaitNodeGetEvent),
	I(cuGraphEventWaitNodeSetEvent, 11010, cuGraphEventWaitNodeSetEvent),
	I(cuGraphGetNodes, 10000, cuGraphGetNodes),
	I(cuGraphGetRootNodes, 10000, cuGraphGetRootNodes),
	I(cuGraphGetEdges, 10000, cuGraphGetEdges_v1),
	I(cuGraphGetEdges, 12030, cuGraphGetEdges),
	I(cuGraphNodeGetDependencies, 10000, cuGraphNodeGetDependencies_v1),
	I(cuGraphNodeGetDependencies, 12030, cuGraphNodeGetDependencies),
	I(cuGraphNodeGetDependentNodes, 10000, cuGraphNodeGetDependentNodes_v1),
	I(cuGraphNodeGetDependentNodes, 12030, cuGraphNodeGetDependentNodes),
	I(cuGraphAddDependencies, 10000, cuGraphAddDependencies_v1),
	I(cuGraphAddDependencies, 12030, cuGraphAddDependencies),
	I(cuGraphRemoveDependencies, 10000, cuGraphRemoveDependencies_v1),
	I(cuGraphRemoveDependencies, 12030, cuGraphRemoveDependencies),
	I(cuGraphDestroyNode, 10000, cuGraphDestroyNode),
	I(cuGraphNodeGetType, 10000, cuGraphNodeGetType),
	I(cuGraphClone, 10000, cuGraphClone),
	I(cuGraphNodeFindInClone, 10000, cuGraphNodeFindInClone),
	I(cuGraphInstantiateWithParams, 12000, cuGraphInstantiateWithParams),
	PT(cuGraphInstantiateWithParams, 12000, cuGraphInstantiateWithParams),
	I(cuGraphExecKernelNodeSetParams, 10010, cuGraphExecKernelNodeSetParams_v1),
	I(cuGraphExecKernelNodeSetParams, 12000, cuGraphExecKernelNodeSetParams),
	I(cuGraphExecMemcpyNodeSetParams, 10020, cuGraphExecMemcpyNodeSetParams),
	I(cuGraphExecMemsetNodeSetParams, 10020, cuGraphExecMemsetNodeSetParams),
	I(cuGraphExecHostNodeSetParams, 10020, cuGraphExecHostNodeSetParams),
	I(cuGraphExecEventRecordNodeSetEvent, 11010, cuGraphExecEventRecordNodeSetEvent),
	I(cuGraphExecEventWaitNodeSetEvent, 11010, cuGraphExecEventWaitNodeSetEvent),
	I(cuGraphExecNodeSetParams, 12020, cuGraphExecNodeSetParams),
	I(cuGraphNodeSetEnabled, 11060, cuGraphNodeSetEnabled),
	I(cuGraphNodeGetEnabled, 11060, cuGraphNodeGetEnabled),
	I(cuGraphExecUpdate, 10020, cuGraphExecUpdate_v1),
	I(cuGraphExecUpdate, 12000, cuGraphExecUpdate),
	I(cuGraphExecGetFlags, 12000, cuGraphExecGetFlags),
	I(cuStreamAddCallback, 5000, cuStreamAddCallback),
	PT(cuStreamAddCallback, 7000, cuStreamAddCallback),
	I(cuStreamWaitEvent, 3020, cuStreamWaitEvent),
	PT(cuStreamWaitEvent, 7000, cuStreamWaitEvent),
	I(cuThreadExchangeStreamCaptureMode, 10010, cuThreadExchangeStreamCaptureMode),
};

void *vgpu_cuda_impl(const char *name, int version, int per_thread)
{
	for (size_t i = 0; i < sizeof(impls) / sizeof(impls[0]); i++)
		if (impls[i].version == version && impls[i].per_thread == per_thread &&
		    strcmp(impls[i].name, name) == 0)
			return impls[i].fn;
	return NULL;
}

int vgpu_cuda_log_level(void)
{
	static _Atomic int level = -1;
	int l = atomic_load_explicit(&level, memory_order_relaxed);

	if (l < 0) {
		const char *v = getenv("VGPU_CUDA_LOG");

		l = !v ? 0 : strcmp(v, "2") == 0 ? 2 : 1;
		atomic_store_explicit(&level, l, memory_order_relaxed);
	}
	return l;
}

void vgpu_cuda_log(bool always, const char *fmt, ...)
{
	va_list ap;

	if (!always && !vgpu_cuda_log_level())
		return;
	fputs("vgpu libcuda: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

CUresult vgpu_cuda_unimplemented(size_t index)
{
	static _Atomic uint8_t told[2048];
	const struct vgpu_cuda_entry *e = &vgpu_cuda_entries[index];

	if (index >= sizeof(told) || !atomic_exchange(&told[index], 1))
		vgpu_cuda_log(true, "%s (CUDA %d.%d%s) is not implemented yet: CUDA_ERROR_NOT_SUPPORTED",
			      e->name, e->version / 1000, e->version % 1000 / 10,
			      e->per_thread ? ", per-thread stream" : "");
	return CUDA_ERROR_NOT_SUPPORTED;
}

CUresult vgpu_cuda_unexported(_Atomic unsigned char *told, const char *name)
{
	if (!atomic_exchange(told, 1))
		vgpu_cuda_log(true, "%s is not implemented yet: CUDA_ERROR_NOT_SUPPORTED", name);
	return CUDA_ERROR_NOT_SUPPORTED;
}

/* The first entry named @name (entries are sorted by name), or -1. */
static long first_named(const char *name)
{
	size_t lo = 0, hi = vgpu_cuda_n_entries;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(vgpu_cuda_entries[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < vgpu_cuda_n_entries && strcmp(vgpu_cuda_entries[lo].name, name) == 0
		       ? (long)lo
		       : -1;
}

CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
			     CUdriverProcAddressQueryResult *symbolStatus)
{
	CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
	const struct vgpu_cuda_entry *match = NULL, *legacy = NULL, *best;
	int per_thread = (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0;
	long i;

	if (!symbol || !pfn ||
	    (flags & ~(cuuint64_t)(CU_GET_PROC_ADDRESS_LEGACY_STREAM |
				   CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM)))
		return CUDA_ERROR_INVALID_VALUE;
	*pfn = NULL;
	/* The highest version not newer than asked for: of the variant asked
	 * for, else of the legacy one (most entry points have no per-thread
	 * variant: the same function serves both). */
	for (i = first_named(symbol); i >= 0 && (size_t)i < vgpu_cuda_n_entries &&
				      strcmp(vgpu_cuda_entries[i].name, symbol) == 0;
	     i++) {
		const struct vgpu_cuda_entry *e = &vgpu_cuda_entries[i];

		status = CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT;
		if (e->version > cudaVersion)
			continue;
		if (e->per_thread == per_thread && (!match || e->version > match->version))
			match = e;
		if (!e->per_thread && (!legacy || e->version > legacy->version))
			legacy = e;
	}
	best = match ? match : legacy;
	if (!best) {
		vgpu_cuda_log(false, "cuGetProcAddress(%s, %d): %s", symbol, cudaVersion,
			      status == CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND ? "no such entry point"
									     : "newer than asked for");
		if (symbolStatus)
			*symbolStatus = status;
		return CUDA_ERROR_NOT_FOUND;
	}
	*pfn = vgpu_cuda_impl(best->name, best->version, best->per_thread);
	if (!*pfn)
		*pfn = best->stub;
	if (symbolStatus)
		*symbolStatus = CU_GET_PROC_ADDRESS_SUCCESS;
	return CUDA_SUCCESS;
}

CUresult cuGetProcAddress_v1(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags)
{
	return cuGetProcAddress_v2(symbol, pfn, cudaVersion, flags, NULL);
}
