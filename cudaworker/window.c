/* SPDX-License-Identifier: MIT */
/*
 * window.c - a process's window (WINDOW, HTOD_WIN, DTOH_WIN of
 * cuda_call.h): host memory the guest library shares with the worker, a
 * memfd it made and sealed, mapped here and registered with the driver
 * (page-locked), so that a copy from or to it is the GPU's DMA straight
 * from the process's own pages: no bytes in the calls, no copy here.
 *
 * The memfd is the guest's: it must be sealed against shrinking and
 * growing (a window cut short under the mapping would fault this worker
 * on its next copy) and be exactly the size the call says, within the
 * process's and the VM's budgets; anything else is refused before it is
 * mapped. Its bytes are never read here beyond its call ring's (serve.c
 * copies each entry out before checking it), only handed to the DMA at
 * offsets checked against its size; what the guest writes into it
 * meanwhile is its own business, as with pinned memory under NVIDIA's
 * driver.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "worker.h"

/* The addresses a process's window may ask for: above the lowest a
 * process may map (mmap_min_addr's usual 64 KiB), within 47 bits. */
#define WINDOW_LOWEST ((uint64_t)1 << 16)
#define WINDOW_HIGHEST ((uint64_t)1 << 47)

CUresult window_open(struct worker *w, struct window *win, int fd, uint64_t bytes,
		     uint64_t ring_bytes, uint64_t at, uint64_t *devptr)
{
	const int seals = F_SEAL_SHRINK | F_SEAL_GROW;
	int have = fd >= 0 ? fcntl(fd, F_GET_SEALS) : -1;
	struct stat st;
	void *map;
	CUresult rc;

	*devptr = 0;
	if (win->base || fd < 0 || bytes == 0 || bytes % (uint64_t)sysconf(_SC_PAGESIZE))
		return CUDA_ERROR_INVALID_VALUE;
	/* Where the process has it: a user address of the page size's. */
	if (at && (at % (uint64_t)sysconf(_SC_PAGESIZE) || at < WINDOW_LOWEST ||
		   at > WINDOW_HIGHEST || bytes > WINDOW_HIGHEST - at))
		return CUDA_ERROR_INVALID_VALUE;
	/* A ring: a power of two within its bounds, with its control page at
	 * most half the window. */
	if (ring_bytes && (ring_bytes < VGPU_CUDA_RING_MIN || ring_bytes > VGPU_CUDA_RING_MAX ||
			   (ring_bytes & (ring_bytes - 1)) || VGPU_CUDA_RING_CTL + ring_bytes > bytes / 2))
		return CUDA_ERROR_INVALID_VALUE;
	/* A memfd (only one answers F_GET_SEALS), sealed, of the size said. */
	if (have < 0 || (have & seals) != seals || fstat(fd, &st) != 0 ||
	    !S_ISREG(st.st_mode) || (uint64_t)st.st_size != bytes)
		return CUDA_ERROR_INVALID_VALUE;
	if (bytes > WORKER_MAX_WINDOW || !worker_take(w, &w->window_bytes, WORKER_VM_MAX_WINDOWS, bytes))
		return CUDA_ERROR_OUT_OF_MEMORY;
	/* At the process's own address where nothing of ours is, so that
	 * its kernels reach page-locked memory through the pointers the
	 * process has (unified addressing, with the driver's device address
	 * for it the same); elsewhere if that is taken. A hint, never
	 * MAP_FIXED: the kernel takes it only where nothing is mapped. */
	map = mmap((void *)(uintptr_t)at, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		worker_give(w, &w->window_bytes, bytes);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	/* Mapped for kernels too where the driver can (NVIDIA's: the window
	 * is then also device memory at *devptr); page-locked at least. */
	win->mapped = true;
	rc = w->drv.host_register(map, bytes, CU_MEMHOSTREGISTER_PORTABLE |
						       CU_MEMHOSTREGISTER_DEVICEMAP);
	if (rc == CUDA_SUCCESS)
		rc = w->drv.host_device_pointer((CUdeviceptr *)devptr, map, 0);
	if (rc != CUDA_SUCCESS) {
		w->drv.host_unregister(map);
		win->mapped = false;
		*devptr = 0;
		rc = w->drv.host_register(map, bytes, CU_MEMHOSTREGISTER_PORTABLE);
	}
	if (rc != CUDA_SUCCESS) {
		munmap(map, bytes);
		worker_give(w, &w->window_bytes, bytes);
		return rc;
	}
	win->base = map;
	win->bytes = bytes;
	if (ring_bytes) {
		win->ctl = (struct vgpu_cuda_ring_ctl *)map;
		win->ring = (uint8_t *)map + VGPU_CUDA_RING_CTL;
		win->ring_bytes = ring_bytes;
		win->head = 0; /* and the guest's tail starts at 0: a fresh memfd */
		atomic_store(&win->ctl->head, 0);
	}
	return CUDA_SUCCESS;
}

uint8_t *window_at(const struct window *win, uint64_t offset, uint64_t len)
{
	if (!win->base || len == 0 || offset > win->bytes || len > win->bytes - offset)
		return NULL;
	return win->base + offset;
}

void window_close(struct worker *w, struct window *win)
{
	if (!win->base)
		return;
	w->drv.host_unregister(win->base);
	munmap(win->base, win->bytes);
	worker_give(w, &w->window_bytes, win->bytes);
	*win = (struct window){ 0 };
}
