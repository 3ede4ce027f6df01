/* SPDX-License-Identifier: MIT */
/*
 * nvml.c - the GPUs as NVIDIA's driver reports them, through NVML
 * (libnvidia-ml.so.1, opened at the first question, not linked: the agent
 * runs without it, on a host with no NVIDIA driver, and says why). Asked:
 * each device's name, PCI bus id, memory (total and used, the driver's
 * figures for the whole card, every process's; nvmlDeviceGetMemoryInfo_v2's,
 * as nvidia-smi shows them: used without the driver's own reservation,
 * which the first version counts, about 480 MiB more on an H100 with
 * driver 580) and utilisation (the
 * driver's last sample period); a call a library does not have leaves its
 * figure unknown. NVML is initialised once and kept.
 *
 * The mediator numbers GPUs as CUDA does; its unit sets
 * CUDA_DEVICE_ORDER=PCI_BUS_ID, NVML's order, so that GPU n is NVML's
 * device n (checked by the agent's callers only by index).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "nvml.h"
#include "nvml_abi.h"

typedef struct {
	unsigned int gpu;    /* percent of the sample period a kernel ran */
	unsigned int memory; /* percent of it device memory was read or written */
} nvml_utilization_t;

static struct {
	void *lib;
	bool tried, up;
	char why[200];
	nvmlReturn_t (*count)(unsigned int *);
	nvmlReturn_t (*handle)(unsigned int, nvmlDevice_t *);
	nvmlReturn_t (*name)(nvmlDevice_t, char *, unsigned int);
	nvmlReturn_t (*memory)(nvmlDevice_t, nvmlMemory_t *);
	nvmlReturn_t (*memory2)(nvmlDevice_t, nvmlMemory_v2_t *);
	nvmlReturn_t (*pci)(nvmlDevice_t, nvmlPciInfo_t *);
	nvmlReturn_t (*util)(nvmlDevice_t, nvml_utilization_t *);
	const char *(*error)(nvmlReturn_t);
} nv;

static void *sym(const char *name)
{
	return nv.lib ? dlsym(nv.lib, name) : NULL;
}

/* Open and initialise NVML once (the caller serializes). */
static bool start(void)
{
	nvmlReturn_t (*init)(void);
	nvmlReturn_t rc;

	if (nv.tried)
		return nv.up;
	nv.tried = true;
	nv.lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!nv.lib) {
		snprintf(nv.why, sizeof(nv.why), "no NVML: %s", dlerror());
		return false;
	}
	init = (nvmlReturn_t(*)(void))sym("nvmlInit_v2");
	nv.count = (nvmlReturn_t(*)(unsigned int *))sym("nvmlDeviceGetCount_v2");
	nv.handle = (nvmlReturn_t(*)(unsigned int, nvmlDevice_t *))sym("nvmlDeviceGetHandleByIndex_v2");
	nv.name = (nvmlReturn_t(*)(nvmlDevice_t, char *, unsigned int))sym("nvmlDeviceGetName");
	nv.memory = (nvmlReturn_t(*)(nvmlDevice_t, nvmlMemory_t *))sym("nvmlDeviceGetMemoryInfo");
	nv.memory2 = (nvmlReturn_t(*)(nvmlDevice_t, nvmlMemory_v2_t *))sym(
		"nvmlDeviceGetMemoryInfo_v2");
	nv.pci = (nvmlReturn_t(*)(nvmlDevice_t, nvmlPciInfo_t *))sym("nvmlDeviceGetPciInfo_v3");
	nv.util = (nvmlReturn_t(*)(nvmlDevice_t, nvml_utilization_t *))sym(
		"nvmlDeviceGetUtilizationRates");
	nv.error = (const char *(*)(nvmlReturn_t))sym("nvmlErrorString");
	if (!init || !nv.count || !nv.handle) {
		snprintf(nv.why, sizeof(nv.why), "libnvidia-ml.so.1 lacks nvmlInit_v2 or the device "
						 "calls");
		return false;
	}
	rc = init();
	if (rc != NVML_SUCCESS) {
		snprintf(nv.why, sizeof(nv.why), "nvmlInit_v2: %s (%d)",
			 nv.error ? nv.error(rc) : "error", (int)rc);
		return false;
	}
	nv.up = true;
	return true;
}

int agent_nvml_gpus(struct agent_gpu *out, int max, const char **why)
{
	unsigned int n = 0;

	*why = NULL;
	if (!start()) {
		*why = nv.why;
		return -1;
	}
	if (nv.count(&n) != NVML_SUCCESS) {
		*why = "nvmlDeviceGetCount_v2 failed";
		return -1;
	}
	if (n > (unsigned int)max)
		n = (unsigned int)max;
	for (unsigned int i = 0; i < n; i++) {
		struct agent_gpu *g = &out[i];
		nvmlDevice_t d;
		nvmlMemory_t mem;
		nvmlMemory_v2_t mem2 = { .version = nvmlMemory_v2 };
		nvmlPciInfo_t pci;
		nvml_utilization_t u;

		memset(g, 0, sizeof(*g));
		g->util_gpu = -1;
		if (nv.handle(i, &d) != NVML_SUCCESS)
			continue;
		g->known = true;
		if (!nv.name || nv.name(d, g->name, sizeof(g->name)) != NVML_SUCCESS)
			g->name[0] = '\0';
		g->name[sizeof(g->name) - 1] = '\0';
		if (nv.pci && nv.pci(d, &pci) == NVML_SUCCESS) {
			memcpy(g->bus_id, pci.busId, sizeof(g->bus_id) - 1);
			g->bus_id[sizeof(g->bus_id) - 1] = '\0';
		}
		if (nv.memory2 && nv.memory2(d, &mem2) == NVML_SUCCESS) {
			g->memory_total = mem2.total;
			g->memory_used = mem2.used;
			g->memory_known = true;
		} else if (nv.memory && nv.memory(d, &mem) == NVML_SUCCESS) {
			g->memory_total = mem.total;
			g->memory_used = mem.used;
			g->memory_known = true;
		}
		if (nv.util && nv.util(d, &u) == NVML_SUCCESS && u.gpu <= 100)
			g->util_gpu = (int)u.gpu;
	}
	return (int)n;
}
