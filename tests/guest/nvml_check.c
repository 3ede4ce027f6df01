/* SPDX-License-Identifier: MIT */
/*
 * nvml_check.c - what a program asking NVML gets from a libnvidia-ml.so.1
 * (dlopen'ed, as pynvml and PyTorch reach it): vgpu's, on the scripted
 * host (test-cuda-shim.sh) or on the GPU machine, or NVIDIA's there, for
 * comparison (bench/device-nvml.sh). One line per question: the NVML
 * status, then the answers.
 *
 *   nvml_check LIBRARY
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "nvml_abi.h"

/* The library's entry points, by the names nvml_abi.h declares. */
#define FN(name) __typeof__(&name) p_##name
static struct {
	FN(nvmlInit_v2);
	FN(nvmlInitWithFlags);
	FN(nvmlShutdown);
	FN(nvmlErrorString);
	FN(nvmlSystemGetCudaDriverVersion_v2);
	FN(nvmlDeviceGetCount_v2);
	FN(nvmlDeviceGetHandleByIndex_v2);
	FN(nvmlDeviceGetHandleByUUID);
	FN(nvmlDeviceGetHandleByPciBusId_v2);
	FN(nvmlDeviceGetIndex);
	FN(nvmlDeviceGetName);
	FN(nvmlDeviceGetUUID);
	FN(nvmlDeviceGetPciInfo_v3);
	FN(nvmlDeviceGetCudaComputeCapability);
	FN(nvmlDeviceGetMemoryInfo);
	FN(nvmlDeviceGetMemoryInfo_v2);
} n;
#undef FN

#define LOAD(name)                                                         \
	do {                                                               \
		*(void **)&n.p_##name = dlsym(lib, #name);                 \
		if (!n.p_##name) {                                         \
			fprintf(stderr, "nvml_check: no %s\n", #name);     \
			return 2;                                          \
		}                                                          \
	} while (0)

int main(int argc, char **argv)
{
	void *lib = argc == 2 ? dlopen(argv[1], RTLD_NOW) : NULL;
	unsigned int count = 0, idx = 0;
	char buf[96], uuid[96];
	nvmlDevice_t h = NULL, back = NULL;

	setvbuf(stdout, NULL, _IOLBF, 0); /* every line out, should NVIDIA's crash on a bad handle */
	if (!lib) {
		fprintf(stderr, "usage: nvml_check LIBRARY (%s)\n", argc == 2 ? dlerror() : "");
		return 2;
	}
	LOAD(nvmlInit_v2);
	LOAD(nvmlInitWithFlags);
	LOAD(nvmlShutdown);
	LOAD(nvmlErrorString);
	LOAD(nvmlSystemGetCudaDriverVersion_v2);
	LOAD(nvmlDeviceGetCount_v2);
	LOAD(nvmlDeviceGetHandleByIndex_v2);
	LOAD(nvmlDeviceGetHandleByUUID);
	LOAD(nvmlDeviceGetHandleByPciBusId_v2);
	LOAD(nvmlDeviceGetIndex);
	LOAD(nvmlDeviceGetName);
	LOAD(nvmlDeviceGetUUID);
	LOAD(nvmlDeviceGetPciInfo_v3);
	LOAD(nvmlDeviceGetCudaComputeCapability);
	LOAD(nvmlDeviceGetMemoryInfo);
	LOAD(nvmlDeviceGetMemoryInfo_v2);

	printf("init %d\n", n.p_nvmlInit_v2());
	int counted = n.p_nvmlDeviceGetCount_v2(&count); /* before count is read */

	printf("count %d %u\n", counted, count);
	for (unsigned int i = 0; i < count; i++) {
		nvmlPciInfo_t pci;
		nvmlMemory_t m;
		nvmlMemory_v2_t m2 = { .version = nvmlMemory_v2 };
		int major = 0, minor = 0, st, st2, st3;

		printf("handle %u %d\n", i, n.p_nvmlDeviceGetHandleByIndex_v2(i, &h));
		memset(buf, 0, sizeof(buf));
		st = n.p_nvmlDeviceGetName(h, buf, sizeof(buf));
		printf("name %u %d %s\n", i, st, buf);
		memset(uuid, 0, sizeof(uuid));
		st = n.p_nvmlDeviceGetUUID(h, uuid, sizeof(uuid));
		printf("uuid %u %d %s\n", i, st, uuid);
		memset(&pci, 0, sizeof(pci));
		st = n.p_nvmlDeviceGetPciInfo_v3(h, &pci);
		printf("pci %u %d %s %s %u %u %u\n", i, st, pci.busId, pci.busIdLegacy, pci.domain,
		       pci.bus, pci.device);
		st = n.p_nvmlDeviceGetCudaComputeCapability(h, &major, &minor);
		printf("cc %u %d %d %d\n", i, st, major, minor);
		memset(&m, 0, sizeof(m));
		st = n.p_nvmlDeviceGetMemoryInfo(h, &m);
		printf("memory %u %d %llu %llu %llu\n", i, st, m.total, m.free, m.used);
		st = n.p_nvmlDeviceGetMemoryInfo_v2(h, &m2);
		printf("memory-v2 %u %d %s %s\n", i, st, m2.total == m.total ? "True" : "False",
		       m2.free + m2.used == m2.total ? "True" : "False");
		st = n.p_nvmlDeviceGetHandleByUUID(uuid, &back);
		st2 = n.p_nvmlDeviceGetHandleByPciBusId_v2(pci.busIdLegacy, &back);
		st3 = n.p_nvmlDeviceGetIndex(back, &idx);
		printf("by-uuid-pci %u %d %d %d %s\n", i, st, st2, st3,
		       back == h && idx == i ? "same" : "different");
	}
	int version = 0, st = n.p_nvmlSystemGetCudaDriverVersion_v2(&version);
	printf("cuda-version %d %d\n", st, version);
	if (count) {
		nvmlMemory_v2_t old = { .version = 1 };
		int bad[8];

		n.p_nvmlDeviceGetHandleByIndex_v2(0, &h);
		bad[0] = n.p_nvmlDeviceGetHandleByIndex_v2(count, &back);       /* past the count */
		bad[1] = n.p_nvmlDeviceGetCount_v2(NULL);                       /* no pointer */
		bad[2] = n.p_nvmlDeviceGetName((nvmlDevice_t)(void *)8, buf, sizeof(buf)); /* not a handle */
		bad[3] = n.p_nvmlDeviceGetName(h, buf, 4);                      /* too small */
		bad[4] = n.p_nvmlDeviceGetHandleByUUID("GPU-nope", &back);      /* no such */
		bad[5] = n.p_nvmlDeviceGetHandleByPciBusId_v2("zz:1", &back);
		bad[6] = n.p_nvmlDeviceGetMemoryInfo_v2(h, &old);               /* wrong version */
		bad[7] = n.p_nvmlInitWithFlags(8);                              /* unknown flag */
		printf("bad %d %d %d %d %d %d %d %d\n", bad[0], bad[1], bad[2], bad[3], bad[4], bad[5],
		       bad[6], bad[7]);
	}
	int s1 = n.p_nvmlShutdown(), s2 = n.p_nvmlShutdown();
	printf("shutdown %d %d %d\n", s1, s2, n.p_nvmlDeviceGetCount_v2(&count));
	printf("error-string %s\n", n.p_nvmlErrorString(NVML_ERROR_DRIVER_NOT_LOADED));
	return 0;
}
