/* SPDX-License-Identifier: MIT */
/*
 * init.c - cuInit(): reach the host, take its description of the GPUs the
 * VM may use (cuda_desc.h), and keep it for every later query; the driver
 * version; error names and strings.
 *
 * The host is the VM's channel to the mediator, VGPU_CUDA_TRANSPORT or
 * else VGPU_TRANSPORT (libvgpu's variable): unix:PATH or shm:PATH (both
 * name the VM's socket) or dev:/dev/vgpuN (the vgpu-stub device: streams
 * through its window); with neither set, dev:/dev/vgpu0 where it exists
 * (in a VM), as libvgpu chooses. With no channel, or none answering
 * within VGPU_CUDA_TIMEOUT_MS (default 60000),
 * cuInit() fails with CUDA_ERROR_NO_DEVICE, as the NVIDIA driver does on a
 * machine without a GPU, and says why on stderr.
 */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"
#include "transport.h"
#include "vgpu_clock.h"
#include "vgpu_protocol.h"

struct vgpu_cuda_state vgpu_cuda;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Where the host is, into *@w; false (with *why set) when nowhere. */
static bool where_of(struct vgpu_cuda_where *w, const char **why)
{
	const char *uri = secure_getenv("VGPU_CUDA_TRANSPORT");
	struct vgpu_uri u;

	if (!uri || !*uri)
		uri = secure_getenv("VGPU_TRANSPORT");
	if ((!uri || !*uri) && access("/dev/vgpu0", F_OK) == 0)
		uri = "dev:/dev/vgpu0";
	if (!uri || !*uri) {
		*why = "no channel to the host: no /dev/vgpu0, and neither VGPU_CUDA_TRANSPORT nor "
		       "VGPU_TRANSPORT is set";
		return false;
	}
	if (vgpu_uri_parse(uri, &u) != VGPU_OK) {
		*why = "VGPU_CUDA_TRANSPORT or VGPU_TRANSPORT is not a transport URI";
		return false;
	}
	if (u.kind != VGPU_URI_UNIX && u.kind != VGPU_URI_SHM && u.kind != VGPU_URI_DEV) {
		*why = "the CUDA calls go over unix:, shm: or dev: only";
		return false;
	}
	w->dev = u.kind == VGPU_URI_DEV;
	snprintf(w->path, sizeof(w->path), "%s", u.path);
	return true;
}

/* Ask the host at @w for its description. */
static int describe(const struct vgpu_cuda_where *w, struct vgpu_cuda_desc *d)
{
	uint64_t deadline = vgpu_now_ns() +
			    (uint64_t)vgpu_env_ull("VGPU_CUDA_TIMEOUT_MS", 1, 600000, 60000) * 1000000u;
	uint8_t req[VGPU_PROTO_HEADER_SIZE], head[VGPU_PROTO_HEADER_SIZE];
	static uint8_t payload[VGPU_CUDA_DESCRIBED_MAX];
	uint32_t len;
	struct vgpu_cuda_chan c;
	int rc;

	rc = vgpu_cuda_chan_connect(w, &c);
	if (rc != VGPU_OK)
		return rc;
	vgpu_cuda_build_describe(1, req);
	rc = vgpu_cuda_chan_io(&c, req, sizeof(req), true, deadline);
	if (rc == VGPU_OK)
		rc = vgpu_cuda_chan_io(&c, head, sizeof(head), false, deadline);
	if (rc == VGPU_OK)
		rc = vgpu_cuda_described_len(head, 1, &len);
	if (rc == VGPU_OK)
		rc = vgpu_cuda_chan_io(&c, payload, len, false, deadline);
	if (rc == VGPU_OK)
		rc = vgpu_cuda_parse_described(head, payload, len, d);
	vgpu_cuda_chan_close(&c);
	return rc;
}

static void init_once(void)
{
	const char *why = NULL;
	int rc = where_of(&vgpu_cuda.where, &why) ? describe(&vgpu_cuda.where, &vgpu_cuda.desc)
						  : VGPU_NOT_FOUND;

	if (rc == VGPU_OK) {
		vgpu_cuda.init_status = vgpu_cuda.desc.count ? CUDA_SUCCESS : CUDA_ERROR_NO_DEVICE;
		if (!vgpu_cuda.desc.count)
			vgpu_cuda_log(true, "the host has no GPU for this VM");
	} else {
		vgpu_cuda.init_status = CUDA_ERROR_NO_DEVICE;
		vgpu_cuda_log(true, "no GPU: %s", why ? why : vgpu_strerror(rc));
	}
	vgpu_cuda.initialized = true;
}

CUresult cuInit(unsigned int flags)
{
	if (flags != 0)
		return CUDA_ERROR_INVALID_VALUE;
	pthread_once(&once, init_once);
	return vgpu_cuda.init_status;
}

CUresult vgpu_cuda_ready(void)
{
	return vgpu_cuda.initialized ? vgpu_cuda.init_status : CUDA_ERROR_NOT_INITIALIZED;
}

const struct vgpu_cuda_device_desc *vgpu_cuda_device(CUdevice dev)
{
	if (!vgpu_cuda.initialized || dev < 0 || (uint32_t)dev >= vgpu_cuda.desc.count)
		return NULL;
	return &vgpu_cuda.desc.dev[dev];
}

/* Before cuInit too, as NVIDIA's driver answers it. */
CUresult cuDriverGetVersion(int *version)
{
	if (!version)
		return CUDA_ERROR_INVALID_VALUE;
	*version = vgpu_cuda.initialized && vgpu_cuda.desc.driver_version
			   ? (int)vgpu_cuda.desc.driver_version
			   : CUDA_VERSION;
	return CUDA_SUCCESS;
}

static const struct vgpu_cuda_error *error_of(CUresult error)
{
	size_t lo = 0, hi = vgpu_cuda_n_errors;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (vgpu_cuda_errors[mid].value < (int)error)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < vgpu_cuda_n_errors && vgpu_cuda_errors[lo].value == (int)error
		       ? &vgpu_cuda_errors[lo]
		       : NULL;
}

CUresult cuGetErrorName(CUresult error, const char **pStr)
{
	const struct vgpu_cuda_error *e = error_of(error);

	if (!pStr)
		return CUDA_ERROR_INVALID_VALUE;
	*pStr = e ? e->name : NULL;
	return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuGetErrorString(CUresult error, const char **pStr)
{
	const struct vgpu_cuda_error *e = error_of(error);

	if (!pStr)
		return CUDA_ERROR_INVALID_VALUE;
	*pStr = e ? e->text : NULL;
	return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* Lazy loading is the host driver's business; the guest loads nothing. */
CUresult cuModuleGetLoadingMode(CUmoduleLoadingMode *mode)
{
	if (!mode)
		return CUDA_ERROR_INVALID_VALUE;
	*mode = CU_MODULE_EAGER_LOADING;
	return CUDA_SUCCESS;
}
