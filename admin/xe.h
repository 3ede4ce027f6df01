/* SPDX-License-Identifier: MIT */
/*
 * xe.h - the XCP-ng toolstack as vgpu-admin uses it: power state, the VM
 * list, shutdown and start. Every call runs `xe` by argument vector with a
 * deadline (never through a shell); a missing `xe` is reported as such.
 */
#ifndef VGPU_ADMIN_XE_H
#define VGPU_ADMIN_XE_H

#include <stddef.h>

#include "vgpu_config.h"

#define XE_POWER_MAX 32
#define XE_LABEL_MAX 1024   /* name-labels longer than this are cut */
#define XE_MAX_VMS 4096
#define XE_OUTPUT_MAX (4u << 20)

struct xe_vm {
	char uuid[VGPU_UUID_STRLEN + 1];
	char name_label[XE_LABEL_MAX + 1];
	char power_state[XE_POWER_MAX + 1];  /* running, halted, paused, suspended */
};

/*
 * Outcome of one xe call. VGPU_OK; VGPU_NOT_FOUND when xe is not installed;
 * VGPU_TIMEOUT; VGPU_ERROR when xe ran and failed (message in @err).
 */
int xe_power_state(const char *uuid, int timeout_s, char ret_state[XE_POWER_MAX + 1],
		   char *err, size_t err_size);
/* VGPU_NOT_FOUND from xe_power_state() is ambiguous; this says which. */
#define XE_NO_SUCH_VM 1

/* All non-dom0 VMs of the host; *ret_vms is malloc()ed, caller frees. */
int xe_list_vms(int timeout_s, struct xe_vm **ret_vms, size_t *ret_count, char *err,
		size_t err_size);

int xe_shutdown(const char *uuid, int force, int timeout_s, char *err, size_t err_size);
int xe_start(const char *uuid, int timeout_s, char *err, size_t err_size);

/*
 * Parse xe's record output ("key ( RO)  : value" lines, records separated by
 * blank lines) for uuid, name-label and power-state. Records without a valid
 * UUID are skipped. Exposed for tests and fuzzing.
 */
int xe_parse_vm_list(const char *text, struct xe_vm **ret_vms, size_t *ret_count);

#endif
