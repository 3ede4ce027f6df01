/* SPDX-License-Identifier: MIT */
/*
 * libxen.h - a fake of the few libxenforeignmemory and libxenstore calls
 * the mediator's xen mapping backend makes (mediator/map/map_xen.c), for
 * its unit test: nothing here runs Xen. One domain, fake_xen.domid, whose
 * RAM is the file fake_xen.mem_fd (frame N is bytes N * 4096 onwards) and
 * whose xenstore entry /local/domain/<domid>/vm is /vm/<fake_xen.uuid>.
 * What it models of the real calls: a handle restricted to one domain
 * maps nothing of another (EPERM); a frame past the domain's RAM fails
 * that page only (per-page error, the mapping still returned); unmapping
 * and closing are counted so that the test can see every mapping undone.
 */
#ifndef VGPU_FAKE_LIBXEN_H
#define VGPU_FAKE_LIBXEN_H

#include <stdint.h>

struct fake_xen {
	uint32_t domid;
	int mem_fd;
	uint64_t mem_pages;
	char uuid[40];
	int open_handles;   /* xenforeignmemory handles open */
	int mapped_pages;   /* pages mapped and not unmapped */
	int fail_open;      /* xenforeignmemory_open() fails */
};

extern struct fake_xen fake_xen;

#endif
