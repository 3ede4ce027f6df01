/* SPDX-License-Identifier: MIT */
/*
 * fuzz_xe_vm_list.c - the parser of `xe vm-list` records (admin/xe.c).
 * Invariant: every VM returned carries a valid lower-case UUID and
 * NUL-terminated fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct xe_vm *vms;
	size_t count;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (xe_parse_vm_list(text, &vms, &count) == VGPU_OK) {
		for (size_t i = 0; i < count; i++) {
			char lower[VGPU_UUID_STRLEN + 1];

			if (vgpu_uuid_normalize(vms[i].uuid, lower) != VGPU_OK ||
			    strcmp(lower, vms[i].uuid) != 0 ||
			    strnlen(vms[i].name_label, sizeof(vms[i].name_label)) == sizeof(vms[i].name_label) ||
			    strnlen(vms[i].power_state, sizeof(vms[i].power_state)) == sizeof(vms[i].power_state))
				abort();
		}
		free(vms);
	}
	free(text);
	return 0;
}
