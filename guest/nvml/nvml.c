/* SPDX-License-Identifier: MIT */
/*
 * nvml.c - vgpu's libnvidia-ml.so.1 for guests: the NVML calls that
 * frameworks and monitoring tools ask of a GPU (count, handles, name,
 * UUID, PCI id, compute capability, memory), answered through the CUDA
 * driver API of the libcuda.so.1 found beside it. In a guest that is
 * vgpu's own (docs/specs/cuda-remoting.md): the device its VM was given,
 * and the memory of the VM's quota, not the card's (cuMemGetInfo there
 * answers the quota). Under NVIDIA's driver the same library gives the
 * card's figures, which is how the GPU machine checks it against NVIDIA's
 * own NVML.
 *
 * A memory query retains the device's primary context (NVIDIA's NVML
 * makes none): in vgpu's libcuda that opens the process's connection to
 * its VM's worker, so, as for any CUDA call, a child forked after it
 * cannot use CUDA.
 *
 * What NVML reads from the GPU itself (utilisation, clocks, power,
 * temperatures, processes, the driver's version string) is not known to
 * a guest: those calls are not exported, so a caller that looks them up
 * gets NVML's own NVML_ERROR_FUNCTION_NOT_FOUND (pynvml) or no symbol.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cuda.h>

#include "nvml_abi.h"

#define MAX_DEVICES 64

/* The driver API entry points used, from libcuda.so.1. */
static struct {
	CUresult (*init)(unsigned int);
	CUresult (*driver_version)(int *);
	CUresult (*count)(int *);
	CUresult (*get)(CUdevice *, int);
	CUresult (*name)(char *, int, CUdevice);
	CUresult (*uuid)(CUuuid *, CUdevice);
	CUresult (*attribute)(int *, CUdevice_attribute, CUdevice);
	CUresult (*pci_bus_id)(char *, int, CUdevice);
	CUresult (*retain)(CUcontext *, CUdevice);
	CUresult (*release)(CUdevice);
	CUresult (*push)(CUcontext);
	CUresult (*pop)(CUcontext *);
	CUresult (*mem_info)(size_t *, size_t *);
} cu;

struct nvmlDevice_st {
	CUdevice dev;
	CUcontext ctx;     /* its primary context, retained at the first memory query */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned int refs;            /* nvmlInit calls not yet shut down */
static unsigned int n_devices;
static struct nvmlDevice_st devices[MAX_DEVICES];

static nvmlReturn_t from_cu(CUresult rc)
{
	switch (rc) {
	case CUDA_SUCCESS:
		return NVML_SUCCESS;
	case CUDA_ERROR_INVALID_VALUE:
		return NVML_ERROR_INVALID_ARGUMENT;
	case CUDA_ERROR_NOT_SUPPORTED:
		return NVML_ERROR_NOT_SUPPORTED;
	case CUDA_ERROR_NO_DEVICE:
	case CUDA_ERROR_NOT_INITIALIZED:
		return NVML_ERROR_DRIVER_NOT_LOADED;
	default:
		return NVML_ERROR_UNKNOWN;
	}
}

/* libcuda.so.1's entry points (lock held). */
static nvmlReturn_t load(void)
{
	static void *lib;
	const struct {
		void **fn;
		const char *name;
	} syms[] = {
		{ (void **)&cu.init, "cuInit" },
		{ (void **)&cu.driver_version, "cuDriverGetVersion" },
		{ (void **)&cu.count, "cuDeviceGetCount" },
		{ (void **)&cu.get, "cuDeviceGet" },
		{ (void **)&cu.name, "cuDeviceGetName" },
		{ (void **)&cu.uuid, "cuDeviceGetUuid_v2" },
		{ (void **)&cu.attribute, "cuDeviceGetAttribute" },
		{ (void **)&cu.pci_bus_id, "cuDeviceGetPCIBusId" },
		{ (void **)&cu.retain, "cuDevicePrimaryCtxRetain" },
		{ (void **)&cu.release, "cuDevicePrimaryCtxRelease_v2" },
		{ (void **)&cu.push, "cuCtxPushCurrent_v2" },
		{ (void **)&cu.pop, "cuCtxPopCurrent_v2" },
		{ (void **)&cu.mem_info, "cuMemGetInfo_v2" },
	};

	if (lib)
		return NVML_SUCCESS;
	lib = dlopen("libcuda.so.1", RTLD_NOW);
	if (!lib) {
		fprintf(stderr, "vgpu libnvidia-ml: %s\n", dlerror());
		return NVML_ERROR_LIBRARY_NOT_FOUND;
	}
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++)
		if (!(*syms[i].fn = dlsym(lib, syms[i].name))) {
			fprintf(stderr, "vgpu libnvidia-ml: libcuda.so.1 has no %s\n", syms[i].name);
			dlclose(lib);
			lib = NULL;
			return NVML_ERROR_LIBRARY_NOT_FOUND;
		}
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
	const unsigned int no_gpus = 1, known = 3; /* NVML_INIT_FLAG_NO_GPUS, _NO_ATTACH */
	nvmlReturn_t r = NVML_SUCCESS;

	if (flags & ~known)
		return NVML_ERROR_INVALID_ARGUMENT;
	pthread_mutex_lock(&lock);
	if (refs == 0) {
		int count = 0;
		CUresult rc;

		r = load();
		if (r == NVML_SUCCESS) {
			rc = cu.init(0);
			if (rc == CUDA_SUCCESS)
				rc = cu.count(&count);
			if (rc == CUDA_ERROR_NO_DEVICE && (flags & no_gpus))
				rc = CUDA_SUCCESS, count = 0;
			r = from_cu(rc);
		}
		if (count > MAX_DEVICES)
			count = MAX_DEVICES;
		n_devices = 0;
		for (int i = 0; r == NVML_SUCCESS && i < count; i++) {
			r = from_cu(cu.get(&devices[i].dev, i));
			devices[i].ctx = NULL;
			n_devices += r == NVML_SUCCESS;
		}
	}
	if (r == NVML_SUCCESS)
		refs++;
	pthread_mutex_unlock(&lock);
	return r;
}

nvmlReturn_t nvmlInit_v2(void)
{
	return nvmlInitWithFlags(0);
}

nvmlReturn_t nvmlInit(void)
{
	return nvmlInitWithFlags(0);
}

nvmlReturn_t nvmlShutdown(void)
{
	nvmlReturn_t r = NVML_SUCCESS;

	pthread_mutex_lock(&lock);
	if (refs == 0)
		r = NVML_ERROR_UNINITIALIZED;
	else if (--refs == 0)
		for (unsigned int i = 0; i < n_devices; i++)
			if (devices[i].ctx) {
				cu.release(devices[i].dev);
				devices[i].ctx = NULL;
			}
	pthread_mutex_unlock(&lock);
	return r;
}

const char *nvmlErrorString(nvmlReturn_t result)
{
	switch (result) {
	case NVML_SUCCESS: return "Success";
	case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
	case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
	case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
	case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
	case NVML_ERROR_ALREADY_INITIALIZED: return "Already Initialized";
	case NVML_ERROR_NOT_FOUND: return "Not Found";
	case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
	case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
	case NVML_ERROR_LIBRARY_NOT_FOUND: return "NVML Shared Library Not Found";
	case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
	case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
	case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument version mismatch";
	default: return "Unknown Error";
	}
}

/* @h's device, once NVML is up, @h is one of its handles and @out (where
 * the answer goes) is not NULL. */
static nvmlReturn_t device_of(nvmlDevice_t h, const void *out, struct nvmlDevice_st **d)
{
	nvmlReturn_t r = NVML_SUCCESS;

	pthread_mutex_lock(&lock);
	if (refs == 0)
		r = NVML_ERROR_UNINITIALIZED;
	else if (!out)
		r = NVML_ERROR_INVALID_ARGUMENT;
	else if (!h || (uintptr_t)h < (uintptr_t)devices ||
		 (uintptr_t)h >= (uintptr_t)(devices + n_devices) ||
		 ((uintptr_t)h - (uintptr_t)devices) % sizeof(devices[0]) != 0)
		r = NVML_ERROR_INVALID_ARGUMENT;
	pthread_mutex_unlock(&lock);
	*d = h;
	return r;
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
	nvmlReturn_t r = NVML_SUCCESS;

	if (!count)
		return NVML_ERROR_INVALID_ARGUMENT;
	pthread_mutex_lock(&lock);
	if (refs == 0)
		r = NVML_ERROR_UNINITIALIZED;
	else
		*count = n_devices;
	pthread_mutex_unlock(&lock);
	return r;
}

nvmlReturn_t nvmlDeviceGetCount(unsigned int *count)
{
	return nvmlDeviceGetCount_v2(count);
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
	unsigned int count;
	nvmlReturn_t r = nvmlDeviceGetCount_v2(&count);

	if (r != NVML_SUCCESS)
		return r;
	if (!device || index >= count)
		return NVML_ERROR_INVALID_ARGUMENT;
	*device = &devices[index];
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device)
{
	return nvmlDeviceGetHandleByIndex_v2(index, device);
}

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index)
{
	struct nvmlDevice_st *d;
	nvmlReturn_t r = device_of(device, index, &d);

	if (r == NVML_SUCCESS)
		*index = (unsigned int)(d - devices);
	return r;
}

/* @s, with its NUL, into @out of @len bytes. */
static nvmlReturn_t put(const char *s, char *out, unsigned int len)
{
	size_t n = strlen(s) + 1;

	if (n > len)
		return NVML_ERROR_INSUFFICIENT_SIZE;
	memcpy(out, s, n);
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length)
{
	char buf[256];
	struct nvmlDevice_st *d;
	nvmlReturn_t r = device_of(device, name, &d);

	if (r == NVML_SUCCESS)
		r = from_cu(cu.name(buf, sizeof(buf), d->dev));
	return r == NVML_SUCCESS ? put(buf, name, length) : r;
}

/* NVML's form of @d's UUID: "GPU-" and CUDA's UUID bytes, hyphenated. */
static nvmlReturn_t uuid_text(struct nvmlDevice_st *d, char out[48])
{
	CUuuid u;
	const unsigned char *b = (const unsigned char *)u.bytes;
	nvmlReturn_t r = from_cu(cu.uuid(&u, d->dev));

	if (r == NVML_SUCCESS)
		snprintf(out, 48,
			 "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
			 b[12], b[13], b[14], b[15]);
	return r;
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)
{
	char buf[48];
	struct nvmlDevice_st *d;
	nvmlReturn_t r = device_of(device, uuid, &d);

	if (r == NVML_SUCCESS)
		r = uuid_text(d, buf);
	return r == NVML_SUCCESS ? put(buf, uuid, length) : r;
}

nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device)
{
	unsigned int count;
	nvmlReturn_t r = nvmlDeviceGetCount_v2(&count);
	char buf[48];

	if (r != NVML_SUCCESS)
		return r;
	if (!uuid || !device)
		return NVML_ERROR_INVALID_ARGUMENT;
	for (unsigned int i = 0; i < count; i++)
		if (uuid_text(&devices[i], buf) == NVML_SUCCESS && strcasecmp(buf, uuid) == 0) {
			*device = &devices[i];
			return NVML_SUCCESS;
		}
	return NVML_ERROR_NOT_FOUND;
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
	int domain = 0, bus = 0, dev = 0;
	struct nvmlDevice_st *d;
	nvmlReturn_t r = device_of(device, pci, &d);

	if (r == NVML_SUCCESS)
		r = from_cu(cu.attribute(&domain, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, d->dev));
	if (r == NVML_SUCCESS)
		r = from_cu(cu.attribute(&bus, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, d->dev));
	if (r == NVML_SUCCESS)
		r = from_cu(cu.attribute(&dev, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, d->dev));
	if (r != NVML_SUCCESS)
		return r;
	memset(pci, 0, sizeof(*pci));
	pci->domain = (unsigned int)domain;
	pci->bus = (unsigned int)bus;
	pci->device = (unsigned int)dev;
	/* The device and subsystem ids are not in what CUDA tells: 0. */
	snprintf(pci->busIdLegacy, sizeof(pci->busIdLegacy), "%04X:%02X:%02X.0",
		 pci->domain & 0xffff, pci->bus & 0xff, pci->device & 0xff);
	snprintf(pci->busId, sizeof(pci->busId), "%08X:%02X:%02X.0", pci->domain, pci->bus & 0xff,
		 pci->device & 0xff);
	return NVML_SUCCESS;
}

/* "DDDD:BB:DD.F" or "DDDDDDDD:BB:DD.F" (hex, any case) to its parts. */
static bool parse_bus_id(const char *s, unsigned int *domain, unsigned int *bus,
			 unsigned int *dev)
{
	unsigned int fn;
	int end = 0;

	return sscanf(s, "%x:%x:%x.%x%n", domain, bus, dev, &fn, &end) == 4 && s[end] == '\0';
}

nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *pciBusId, nvmlDevice_t *device)
{
	unsigned int count, domain, bus, dev;
	nvmlReturn_t r = nvmlDeviceGetCount_v2(&count);
	nvmlPciInfo_t pci;

	if (r != NVML_SUCCESS)
		return r;
	if (!pciBusId || !device || !parse_bus_id(pciBusId, &domain, &bus, &dev))
		return NVML_ERROR_INVALID_ARGUMENT;
	for (unsigned int i = 0; i < count; i++)
		if (nvmlDeviceGetPciInfo_v3(&devices[i], &pci) == NVML_SUCCESS &&
		    pci.domain == domain && pci.bus == bus && pci.device == dev) {
			*device = &devices[i];
			return NVML_SUCCESS;
		}
	return NVML_ERROR_NOT_FOUND;
}

nvmlReturn_t nvmlDeviceGetHandleByPciBusId(const char *pciBusId, nvmlDevice_t *device)
{
	return nvmlDeviceGetHandleByPciBusId_v2(pciBusId, device);
}

nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major, int *minor)
{
	struct nvmlDevice_st *d;
	nvmlReturn_t r = device_of(device, major && minor ? major : NULL, &d);

	if (r == NVML_SUCCESS)
		r = from_cu(cu.attribute(major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, d->dev));
	if (r == NVML_SUCCESS)
		r = from_cu(cu.attribute(minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, d->dev));
	return r;
}

/* @d's memory as the driver API tells it in @d's primary context: in a
 * vgpu guest, the VM's quota and what it holds. */
static nvmlReturn_t memory(struct nvmlDevice_st *d, unsigned long long *total,
			   unsigned long long *free)
{
	size_t f = 0, t = 0;
	CUcontext ctx, popped;
	CUresult rc = CUDA_SUCCESS;

	pthread_mutex_lock(&lock);
	if (!d->ctx)
		rc = cu.retain(&d->ctx, d->dev);
	ctx = d->ctx;
	pthread_mutex_unlock(&lock);
	if (rc == CUDA_SUCCESS)
		rc = cu.push(ctx);
	if (rc != CUDA_SUCCESS)
		return from_cu(rc);
	rc = cu.mem_info(&f, &t);
	cu.pop(&popped);
	*total = t;
	*free = f;
	return from_cu(rc);
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *mem)
{
	struct nvmlDevice_st *d;
	nvmlReturn_t r = device_of(device, mem, &d);

	if (r == NVML_SUCCESS)
		r = memory(d, &mem->total, &mem->free);
	if (r == NVML_SUCCESS)
		mem->used = mem->total - mem->free;
	return r;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *mem)
{
	struct nvmlDevice_st *d;
	nvmlReturn_t r = device_of(device, mem, &d);

	if (r == NVML_SUCCESS && mem->version != nvmlMemory_v2)
		r = NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
	if (r == NVML_SUCCESS)
		r = memory(d, &mem->total, &mem->free);
	if (r == NVML_SUCCESS) {
		mem->reserved = 0;
		mem->used = mem->total - mem->free;
	}
	return r;
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *version)
{
	nvmlReturn_t r = NVML_SUCCESS;

	if (!version)
		return NVML_ERROR_INVALID_ARGUMENT;
	pthread_mutex_lock(&lock);
	if (refs == 0)
		r = NVML_ERROR_UNINITIALIZED;
	pthread_mutex_unlock(&lock);
	return r == NVML_SUCCESS ? from_cu(cu.driver_version(version)) : r;
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *version)
{
	return nvmlSystemGetCudaDriverVersion_v2(version);
}
