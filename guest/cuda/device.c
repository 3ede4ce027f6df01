/* SPDX-License-Identifier: MIT */
/*
 * device.c - device queries, all answered from the description the host
 * sent at cuInit() (cuda_desc.h): cudart asks for every attribute of every
 * device at start-up (111 calls on the H200) and PyTorch for hundreds more
 * while it runs; none of them costs a round trip.
 */
#include <stdio.h>
#include <string.h>

#include "shim.h"

CUresult cuDeviceGetCount(int *count)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!count)
		return CUDA_ERROR_INVALID_VALUE;
	*count = (int)vgpu_cuda.desc.count;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *device, int ordinal)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!device)
		return CUDA_ERROR_INVALID_VALUE;
	if (!vgpu_cuda_device(ordinal))
		return CUDA_ERROR_INVALID_DEVICE;
	*device = ordinal;
	return CUDA_SUCCESS;
}

/* The description of @dev after the usual checks, into *ret. */
static CUresult described(CUdevice dev, const struct vgpu_cuda_device_desc **ret)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	*ret = vgpu_cuda_device(dev);
	return *ret ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
{
	const struct vgpu_cuda_device_desc *d;
	CUresult rc = described(dev, &d);

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!name || len <= 0)
		return CUDA_ERROR_INVALID_VALUE;
	snprintf(name, (size_t)len, "%s", d->name);
	return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem(size_t *bytes, CUdevice dev)
{
	const struct vgpu_cuda_device_desc *d;
	CUresult rc = described(dev, &d);

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!bytes)
		return CUDA_ERROR_INVALID_VALUE;
	*bytes = (size_t)d->total_mem;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
	const struct vgpu_cuda_device_desc *d;
	CUresult rc = described(dev, &d);

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!pi || (int)attrib < 1 || (uint32_t)attrib > d->n_attrs)
		return CUDA_ERROR_INVALID_VALUE;
	*pi = d->attr[attrib - 1];
	/* Over a VM's device (dev:) the process has no window the host can
	 * map for kernels: mapped host memory is refused, so say so, and
	 * programs that ask (simpleStreams) copy instead. */
	if (attrib == CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY && vgpu_cuda.where.dev)
		*pi = 0;
	/* Managed memory is kept in step at launches and synchronizes
	 * (managed.c), as without concurrent access; kernels never reach
	 * this process's own pages. */
	if (attrib == CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS ||
	    attrib == CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS ||
	    attrib == CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS_USES_HOST_PAGE_TABLES ||
	    attrib == CU_DEVICE_ATTRIBUTE_DIRECT_MANAGED_MEM_ACCESS_FROM_HOST)
		*pi = 0;
	return CUDA_SUCCESS;
}

CUresult cuDeviceComputeCapability(int *major, int *minor, CUdevice dev)
{
	CUresult rc;

	if (!major || !minor)
		return CUDA_ERROR_INVALID_VALUE;
	rc = cuDeviceGetAttribute(major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
	return rc == CUDA_SUCCESS
		       ? cuDeviceGetAttribute(minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev)
		       : rc;
}

CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev)
{
	const struct vgpu_cuda_device_desc *d;
	CUresult rc = described(dev, &d);

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!uuid)
		return CUDA_ERROR_INVALID_VALUE;
	memcpy(uuid->bytes, d->uuid, sizeof(uuid->bytes));
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetPCIBusId(char *pciBusId, int len, CUdevice dev)
{
	const struct vgpu_cuda_device_desc *d;
	CUresult rc = described(dev, &d);

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!pciBusId || len <= 0)
		return CUDA_ERROR_INVALID_VALUE;
	snprintf(pciBusId, (size_t)len, "%s", d->pci_bus_id);
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetByPCIBusId(CUdevice *dev, const char *pciBusId)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!dev || !pciBusId)
		return CUDA_ERROR_INVALID_VALUE;
	for (uint32_t i = 0; i < vgpu_cuda.desc.count; i++)
		if (strcasecmp(vgpu_cuda.desc.dev[i].pci_bus_id, pciBusId) == 0) {
			*dev = (CUdevice)i;
			return CUDA_SUCCESS;
		}
	return CUDA_ERROR_INVALID_DEVICE;
}
