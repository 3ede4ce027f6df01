/* SPDX-License-Identifier: MIT */
/*
 * fuzz_cli_values.c - the validators and parsers behind every vgpu-admin flag
 * value (libvgpu-config/validate.c). Invariant: what a parser accepts is
 * valid by the matching predicate, and a valid name holds no control byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vgpu_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	char uuid[VGPU_UUID_STRLEN + 1];
	char pool;
	int prio, id;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (vgpu_uuid_normalize(s, uuid) == VGPU_OK && (!vgpu_uuid_valid(uuid) || strlen(uuid) != 36))
		abort();
	if (vgpu_pool_id_parse(s, &pool) == VGPU_OK && !vgpu_pool_id_valid(pool))
		abort();
	if (vgpu_priority_parse(s, &prio) == VGPU_OK && !vgpu_priority_valid(prio))
		abort();
	if (vgpu_vm_id_parse(s, &id) == VGPU_OK && !vgpu_vm_id_valid(id))
		abort();
	if (vgpu_name_valid(s)) {
		if (strlen(s) > VGPU_NAME_MAX)
			abort();
		for (const unsigned char *p = (const unsigned char *)s; *p; p++)
			if (*p < 0x20 || *p == 0x7f)
				abort();
	}
	free(s);
	return 0;
}
