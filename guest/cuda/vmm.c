/* SPDX-License-Identifier: MIT */
/*
 * vmm.c - virtual memory management: physical allocations (cuMemCreate),
 * address ranges (cuMemAddressReserve), mappings and access, as PyTorch's
 * expandable segments and NVIDIA's vectorAddMMAP use them. The host's
 * worker holds the real ones (cudaworker/vmm.c) and counts each physical
 * allocation against the VM's quota; the handles here are the worker's
 * (from 1), the addresses its device's. A reserved range is device
 * memory to this library's copies (pointer.c) from its reservation on.
 *
 * Served: pinned device memory of the VM's GPUs, mapped for them,
 * compressible where the host's driver grants it. Accepted but not
 * served: the POSIX file descriptor handle type (PyTorch asks for it;
 * exporting is refused, CUDA_ERROR_NOT_SUPPORTED). Refused with
 * CUDA_ERROR_NOT_SUPPORTED: other handle types (fabric, Windows), host or
 * managed locations, multicast.
 */
#include "shim.h"

static CUresult vmm_op(CUdevice dev, uint64_t what, uint64_t a1, uint64_t a2, uint64_t a3,
		       uint64_t a4, uint64_t res[3])
{
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_VMM, .v = { what, a1, a2, a3, a4 } }, r;
	CUresult rc = vgpu_cuda_ready();

	if (rc == CUDA_SUCCESS)
		rc = vgpu_cuda_call_on(dev, &m, NULL, &r, NULL, 0);
	if (rc == CUDA_SUCCESS && res) {
		res[0] = r.v[0];
		res[1] = r.v[1];
		res[2] = r.v[2];
	}
	return rc;
}

/* The device @prop places memory on, if this library serves it. */
static CUresult prop_device(const CUmemAllocationProp *prop, CUdevice *dev)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!prop || prop->type != CU_MEM_ALLOCATION_TYPE_PINNED)
		return prop && prop->type == CU_MEM_ALLOCATION_TYPE_MANAGED ? CUDA_ERROR_NOT_SUPPORTED
									    : CUDA_ERROR_INVALID_VALUE;
	if (prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
		return CUDA_ERROR_NOT_SUPPORTED;
	if (!vgpu_cuda_device(prop->location.id))
		return CUDA_ERROR_INVALID_DEVICE;
	if (prop->requestedHandleTypes & ~CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)
		return CUDA_ERROR_NOT_SUPPORTED;
	if (prop->allocFlags.compressionType > CU_MEM_ALLOCATION_COMP_GENERIC)
		return CUDA_ERROR_INVALID_VALUE;
	*dev = prop->location.id;
	return CUDA_SUCCESS;
}

CUresult cuMemGetAllocationGranularity(size_t *granularity, const CUmemAllocationProp *prop,
				       CUmemAllocationGranularity_flags option)
{
	uint64_t res[3];
	CUdevice dev;
	CUresult rc = prop_device(prop, &dev);

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!granularity)
		return CUDA_ERROR_INVALID_VALUE;
	rc = vmm_op(dev, VGPU_CUDA_VMM_GRANULARITY, (uint64_t)option,
		    prop->allocFlags.compressionType, 0, 0, res);
	if (rc == CUDA_SUCCESS)
		*granularity = (size_t)res[0];
	return rc;
}

CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
		     const CUmemAllocationProp *prop, unsigned long long flags)
{
	uint64_t res[3];
	CUdevice dev;
	CUresult rc = prop_device(prop, &dev);

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!handle || !size || flags)
		return CUDA_ERROR_INVALID_VALUE;
	rc = vmm_op(dev, VGPU_CUDA_VMM_CREATE, size, prop->allocFlags.compressionType, 0, 0, res);
	if (rc == CUDA_SUCCESS)
		*handle = res[0];
	return rc;
}

CUresult cuMemRelease(CUmemGenericAllocationHandle handle)
{
	return vmm_op(vgpu_cuda_current_device(), VGPU_CUDA_VMM_RELEASE, handle, 0, 0, 0, NULL);
}

CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment, CUdeviceptr addr,
			     unsigned long long flags)
{
	CUdevice dev = vgpu_cuda_current_device();
	uint64_t res[3];
	CUresult rc;

	if (!ptr || !size || flags)
		return CUDA_ERROR_INVALID_VALUE;
	rc = vmm_op(dev, VGPU_CUDA_VMM_RESERVE, size, alignment, addr, 0, res);
	if (rc == CUDA_SUCCESS) {
		*ptr = (CUdeviceptr)res[0];
		vgpu_cuda_block_add(*ptr, size, dev, NULL);
	}
	return rc;
}

CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size)
{
	CUresult rc = vmm_op(vgpu_cuda_current_device(), VGPU_CUDA_VMM_FREE, ptr, size, 0, 0, NULL);

	if (rc == CUDA_SUCCESS)
		vgpu_cuda_block_remove(ptr);
	return rc;
}

CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,
		  unsigned long long flags)
{
	if (flags)
		return CUDA_ERROR_INVALID_VALUE;
	return vmm_op(vgpu_cuda_current_device(), VGPU_CUDA_VMM_MAP, ptr, size, offset, handle,
		      NULL);
}

CUresult cuMemUnmap(CUdeviceptr ptr, size_t size)
{
	return vmm_op(vgpu_cuda_current_device(), VGPU_CUDA_VMM_UNMAP, ptr, size, 0, 0, NULL);
}

/* One call for each device the descriptors name. */
CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc, size_t count)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!desc || !count)
		return CUDA_ERROR_INVALID_VALUE;
	for (size_t i = 0; i < count; i++)
		if (desc[i].location.type != CU_MEM_LOCATION_TYPE_DEVICE)
			return CUDA_ERROR_NOT_SUPPORTED; /* host access to device memory */
		else if (!vgpu_cuda_device(desc[i].location.id))
			return CUDA_ERROR_INVALID_DEVICE;
	for (size_t i = 0; i < count && rc == CUDA_SUCCESS; i++)
		rc = vmm_op(desc[i].location.id, VGPU_CUDA_VMM_ACCESS, ptr, size,
			    (uint64_t)desc[i].flags, 0, NULL);
	return rc;
}

CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *handle, void *addr)
{
	uint64_t res[3];
	CUresult rc;

	if (!handle || !addr)
		return CUDA_ERROR_INVALID_VALUE;
	rc = vmm_op(vgpu_cuda_current_device(), VGPU_CUDA_VMM_RETAIN, (uint64_t)(uintptr_t)addr, 0,
		    0, 0, res);
	if (rc == CUDA_SUCCESS)
		*handle = res[0];
	return rc;
}

CUresult cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp *prop,
						CUmemGenericAllocationHandle handle)
{
	uint64_t res[3];
	CUresult rc;

	if (!prop)
		return CUDA_ERROR_INVALID_VALUE;
	rc = vmm_op(vgpu_cuda_current_device(), VGPU_CUDA_VMM_PROPS, handle, 0, 0, 0, res);
	if (rc == CUDA_SUCCESS)
		*prop = (CUmemAllocationProp){
			.type = CU_MEM_ALLOCATION_TYPE_PINNED,
			.location = { .type = CU_MEM_LOCATION_TYPE_DEVICE, .id = (int)res[0] },
			.allocFlags = { .compressionType = (unsigned char)res[2] },
		};
	return rc;
}
