/* SPDX-License-Identifier: MIT */
/*
 * fuzz_cli_values.c - the validators and parsers behind every vgpu-admin flag
 * value (libvgpu-config/validate.c). Invariant: what a parser accepts is
 * valid by the matching predicate, a valid name or description holds no
 * control byte, a GPU list read back from its own text is the same mask,
 * and a number accepted in a range is in it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vgpu_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort unless @s is at most @max bytes without a control byte. */
static void assert_printable(const char *s, size_t max)
{
	if (strlen(s) > max)
		abort();
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	char uuid[VGPU_UUID_STRLEN + 1];
	char pool, gpus_text[96];
	int prio, id;
	unsigned mask, again;
	long long v;

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
	if (vgpu_gpus_parse(s, &mask) == VGPU_OK) {
		vgpu_gpus_format(mask, gpus_text);
		if (strlen(gpus_text) >= sizeof(gpus_text) ||
		    vgpu_gpus_parse(gpus_text, &again) != VGPU_OK || again != mask)
			abort();
	}
	if (vgpu_int_parse(s, 1, 10000, &v) == VGPU_OK && (v < 1 || v > 10000))
		abort();
	if (vgpu_int_parse(s, 0, VGPU_MEM_QUOTA_MIB_MAX, &v) == VGPU_OK &&
	    (v < 0 || v > VGPU_MEM_QUOTA_MIB_MAX))
		abort();
	if (vgpu_text_valid(s, VGPU_DESCRIPTION_MAX))
		assert_printable(s, VGPU_DESCRIPTION_MAX);
	if (vgpu_name_valid(s))
		assert_printable(s, VGPU_NAME_MAX);
	free(s);
	return 0;
}
