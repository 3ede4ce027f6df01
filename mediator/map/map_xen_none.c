/* SPDX-License-Identifier: MIT */
/*
 * map_xen_none.c - vgpu_map_xen_open() in a mediator built without
 * Debian's libxen headers (libxen-dev): Xen devices are refused.
 */
#include <stdio.h>

#include "map.h"
#include "vgpu_error.h"

int vgpu_map_xen_open(uint32_t domid, const char *uuid, struct vgpu_guest_map **ret, char *why,
		      size_t why_len)
{
	(void)domid;
	(void)uuid;
	(void)ret;
	snprintf(why, why_len, "this mediator was built without Xen support (libxen-dev)");
	return VGPU_UNSUPPORTED;
}
