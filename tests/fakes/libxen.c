/* SPDX-License-Identifier: MIT */
/*
 * libxen.c - the fake described in libxen.h. Signatures are those of
 * Debian's libxen-dev headers (Xen 4.17), which the test compiles against.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <xenforeignmemory.h>
#include <xenstore.h>

#include "libxen.h"

#define PAGE 4096u

struct fake_xen fake_xen = { .mem_fd = -1 };

struct xenforeignmemory_handle {
	int restricted; /* -1: not restricted */
};

struct xs_handle {
	int unused;
};

xenforeignmemory_handle *xenforeignmemory_open(struct xentoollog_logger *logger,
					       unsigned int open_flags)
{
	(void)logger;
	(void)open_flags;
	if (fake_xen.fail_open) {
		errno = EACCES;
		return NULL;
	}
	xenforeignmemory_handle *h = calloc(1, sizeof(*h));
	if (h) {
		h->restricted = -1;
		fake_xen.open_handles++;
	}
	return h;
}

int xenforeignmemory_close(xenforeignmemory_handle *fmem)
{
	if (fmem)
		fake_xen.open_handles--;
	free(fmem);
	return 0;
}

int xenforeignmemory_restrict(xenforeignmemory_handle *fmem, domid_t domid)
{
	fmem->restricted = domid;
	return 0;
}

void *xenforeignmemory_map(xenforeignmemory_handle *fmem, uint32_t dom, int prot, size_t pages,
			   const xen_pfn_t arr[], int err[])
{
	if (fmem->restricted >= 0 && (uint32_t)fmem->restricted != dom) {
		errno = EPERM;
		return NULL;
	}
	if (dom != fake_xen.domid) {
		errno = ESRCH;
		return NULL;
	}
	uint8_t *base = mmap(NULL, pages * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		return NULL;
	for (size_t i = 0; i < pages; i++) {
		err[i] = 0;
		if (arr[i] >= fake_xen.mem_pages ||
		    mmap(base + i * PAGE, PAGE, prot, MAP_SHARED | MAP_FIXED, fake_xen.mem_fd,
			 (off_t)(arr[i] * PAGE)) == MAP_FAILED)
			err[i] = -EFAULT;
	}
	fake_xen.mapped_pages += (int)pages;
	return base;
}

int xenforeignmemory_unmap(xenforeignmemory_handle *fmem, void *addr, size_t pages)
{
	(void)fmem;
	fake_xen.mapped_pages -= (int)pages;
	return munmap(addr, pages * PAGE);
}

struct xs_handle *xs_open(unsigned long flags)
{
	(void)flags;
	return calloc(1, sizeof(struct xs_handle));
}

void xs_close(struct xs_handle *xsh)
{
	free(xsh);
}

void *xs_read(struct xs_handle *h, xs_transaction_t t, const char *path, unsigned int *len)
{
	char mine[64], value[64];

	(void)h;
	(void)t;
	snprintf(mine, sizeof(mine), "/local/domain/%u/vm", fake_xen.domid);
	if (strcmp(path, mine) != 0) {
		errno = ENOENT;
		return NULL;
	}
	snprintf(value, sizeof(value), "/vm/%s", fake_xen.uuid);
	*len = (unsigned int)strlen(value);
	return strdup(value);
}
