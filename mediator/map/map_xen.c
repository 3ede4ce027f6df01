/* SPDX-License-Identifier: MIT */
/*
 * map_xen.c - guest RAM under Xen (XCP-ng; map.h): the window's frames are
 * mapped with xenforeignmemory_map() on a handle restricted to the domain,
 * the pattern of XCP-ng's own varstored. Built when Debian's libxen
 * headers are there (libxen-dev); tested here against a fake of the
 * libxenforeignmemory and libxenstore calls (tests/fakes/libxen.c), since
 * nothing here runs Xen.
 *
 * Unverified on Xen (read from Xen 4.17's headers and XCP-ng's varstored,
 * not run): that a restricted handle refuses frames of other domains
 * (privcmd's IOCTL_PRIVCMD_RESTRICT), that a frame the domain does not own
 * fails with a per-page error rather than mapping, and that dom0's mediator
 * has the privilege to open privcmd at all (it runs as root).
 *
 * The domain id comes from the device, i.e. from the VM's QEMU, which the
 * guest may have taken over: before anything is mapped, xenstore must say
 * that the domain is the VM whose socket the device connected on
 * (/local/domain/<domid>/vm is /vm/<uuid>), so that one VM's QEMU cannot
 * name another VM's domain.
 *
 * Foreign mappings are not ordinary pages: the GPU driver cannot pin them
 * (cudaHostRegister refuses VM_IO | VM_PFNMAP), so the map says
 * pinnable = false and data goes through pinned staging.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <xenforeignmemory.h>
#include <xenstore.h>

#include "map.h"
#include "vgpu_error.h"

#define PAGE 4096u

struct xen_map {
	struct vgpu_guest_map g; /* must stay first */
	xenforeignmemory_handle *fmem;
	uint32_t domid;
};

static int xen_map(struct vgpu_guest_map *g, const struct vgpu_dev_extent *ext, uint32_t n,
		   uint64_t bytes, void **ret)
{
	struct xen_map *xm = (struct xen_map *)(void *)g;
	size_t pages = bytes / PAGE, k = 0;
	/* At most 2 GiB of window: 524 288 frames, 4 MiB of list, bounded by
	 * the window's own budget, checked before this. */
	xen_pfn_t *pfns = malloc(pages * sizeof(*pfns));
	int *err = calloc(pages, sizeof(*err));
	void *mem = NULL;
	int rc = VGPU_OK;

	if (!pfns || !err) {
		rc = VGPU_NO_MEMORY;
		goto out;
	}
	for (uint32_t i = 0; i < n; i++)
		for (uint64_t off = 0; off < ext[i].len; off += PAGE)
			pfns[k++] = (xen_pfn_t)((ext[i].gpa + off) / PAGE);
	mem = xenforeignmemory_map(xm->fmem, xm->domid, PROT_READ | PROT_WRITE, pages, pfns, err);
	if (!mem) {
		rc = errno == ENOMEM ? VGPU_NO_MEMORY : VGPU_INVALID_PARAM;
		goto out;
	}
	for (size_t i = 0; i < pages; i++) {
		if (err[i]) { /* a frame the domain does not own, or none */
			xenforeignmemory_unmap(xm->fmem, mem, pages);
			mem = NULL;
			rc = VGPU_INVALID_PARAM;
			break;
		}
	}
out:
	free(pfns);
	free(err);
	if (rc == VGPU_OK)
		*ret = mem;
	return rc;
}

static void xen_unmap(struct vgpu_guest_map *g, void *mem, uint64_t bytes)
{
	struct xen_map *xm = (struct xen_map *)(void *)g;

	if (mem)
		xenforeignmemory_unmap(xm->fmem, mem, bytes / PAGE);
}

static void xen_free(struct vgpu_guest_map *g)
{
	struct xen_map *xm = (struct xen_map *)(void *)g;

	if (xm->fmem)
		xenforeignmemory_close(xm->fmem);
	free(xm);
}

static const struct vgpu_map_ops xen_ops = {
	.name = "xen",
	.map = xen_map,
	.unmap = xen_unmap,
	.free = xen_free,
};

/* Whether xenstore says domain @domid is VM @uuid. */
static int domain_is_vm(uint32_t domid, const char *uuid, char *why, size_t why_len)
{
	char path[64], want[64];
	unsigned int len = 0;
	struct xs_handle *xs = xs_open(XS_OPEN_READONLY);
	char *vm;

	if (!xs) {
		snprintf(why, why_len, "cannot open xenstore: %s", strerror(errno));
		return VGPU_IO_ERROR;
	}
	snprintf(path, sizeof(path), "/local/domain/%u/vm", domid);
	snprintf(want, sizeof(want), "/vm/%s", uuid);
	vm = xs_read(xs, XBT_NULL, path, &len);
	xs_close(xs);
	if (!vm || strlen(vm) != len || strcmp(vm, want) != 0) {
		snprintf(why, why_len, "domain %u is not this VM (%s: %s)", domid, path,
			 vm ? "another VM" : "absent");
		free(vm);
		return VGPU_DENIED;
	}
	free(vm);
	return VGPU_OK;
}

int vgpu_map_xen_open(uint32_t domid, const char *uuid, struct vgpu_guest_map **ret, char *why,
		      size_t why_len)
{
	struct xen_map *xm;
	int rc = domain_is_vm(domid, uuid, why, why_len);

	if (rc != VGPU_OK)
		return rc;
	xm = calloc(1, sizeof(*xm));
	if (!xm) {
		snprintf(why, why_len, "out of memory");
		return VGPU_NO_MEMORY;
	}
	xm->g = (struct vgpu_guest_map){ .ops = &xen_ops, .pinnable = false, .refs = 1 };
	xm->domid = domid;
	xm->fmem = xenforeignmemory_open(NULL, 0);
	if (!xm->fmem || xenforeignmemory_restrict(xm->fmem, (domid_t)domid) != 0) {
		snprintf(why, why_len, "cannot open a foreign-memory handle for domain %u: %s",
			 domid, strerror(errno));
		xen_free(&xm->g);
		return VGPU_IO_ERROR;
	}
	*ret = &xm->g;
	return VGPU_OK;
}
