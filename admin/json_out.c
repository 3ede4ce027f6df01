/* SPDX-License-Identifier: MIT */
/*
 * json_out.c - the registry's VMs and pools as JSON, and text made safe
 * for a terminal (admin_shared.h). Shared by vgpu-admin and vgpu-agent.
 *
 * Must never: pass a byte from a VM name or an xe answer on unfiltered
 * (escape sequences), or emit invalid JSON.
 */
#include <stdlib.h>
#include <string.h>

#include "admin_shared.h"

/* Length of a printable UTF-8 sequence at @s, or 0. */
static size_t printable_len(const unsigned char *s)
{
	char one[5] = { 0 };
	size_t len = s[0] < 0x80 ? 1 : s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;

	for (size_t i = 0; i < len; i++) {
		if (!s[i])
			return 0;
		one[i] = (char)s[i];
	}
	return vgpu_name_valid(one) ? len : 0;
}

void sanitize(const char *in, char *out, size_t out_size)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0;

	if (!out_size)
		return;
	while (p && *p && o + 1 < out_size) {
		size_t n = printable_len(p);

		if (n == 0) {
			out[o++] = '?';
			p++;
		} else if (o + n < out_size) {
			memcpy(out + o, p, n);
			o += n;
			p += n;
		} else {
			break;
		}
	}
	out[o] = '\0';
}

json_t *json_text(const char *s)
{
	json_t *j = json_string(s ? s : "");

	if (!j) {
		/* Not UTF-8 (an xe name-label can hold anything): replace bytes. */
		size_t size = strlen(s) + 1;
		char *clean = malloc(size);

		if (!clean)
			return NULL;
		sanitize(s, clean, size);
		j = json_string(clean);
		free(clean);
	}
	return j;
}

json_t *json_vm(const struct vgpu_vm_config *vm)
{
	char pool[2] = { vm->pool_id, '\0' };

	return json_pack("{s:i, s:s, s:o, s:s, s:i, s:s, s:i, s:i, s:I, s:s, s:s}",
			 "vm_id", vm->vm_id,
			 "vm_uuid", vm->vm_uuid,
			 "vm_name", json_text(vm->vm_name),
			 "pool_id", pool,
			 "priority", vm->priority,
			 "priority_name", vgpu_priority_name(vm->priority),
			 "weight", vm->weight,
			 "rate_limit_ms", vm->rate_limit_ms,
			 "mem_quota_mib", (json_int_t)vm->mem_quota_mib,
			 "created_at", vm->created_at,
			 "updated_at", vm->updated_at);
}

json_t *json_pool(const struct vgpu_pool_info *pool)
{
	char id[2] = { pool->pool_id, '\0' }, gpus[96];

	vgpu_gpus_format(pool->gpus, gpus);
	return json_pack("{s:s, s:o, s:o, s:b, s:i, s:i, s:s, s:i, s:s, s:s}",
			 "pool_id", id,
			 "pool_name", json_text(pool->pool_name),
			 "description", json_text(pool->description),
			 "enabled", pool->enabled,
			 "weight", pool->weight,
			 "cap_percent", pool->cap_percent,
			 "gpus", gpus,
			 "vm_count", pool->vm_count,
			 "created_at", pool->created_at,
			 "updated_at", pool->updated_at);
}
