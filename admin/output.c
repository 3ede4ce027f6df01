/* SPDX-License-Identifier: MIT */
/*
 * output.c - messages, terminal-safe text and JSON for vgpu-admin, and the
 * mapping from library errors to exit codes.
 *
 * Must never: write a byte from a VM name or an xe answer to the terminal
 * unfiltered (escape sequences), or emit invalid JSON.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void print_error(const char *fmt, ...)
{
	va_list ap;

	fputs("vgpu-admin: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_exit_code(int rc)
{
	switch (rc) {
	case VGPU_OK:
		return EXIT_OK;
	case VGPU_INVALID_PARAM:
		return EXIT_USAGE;
	case VGPU_NOT_FOUND:
		return EXIT_NOT_FOUND;
	case VGPU_EXISTS:
	case VGPU_AMBIGUOUS:
	case VGPU_BUSY: /* a pool that still has VMs */
		return EXIT_CONFLICT;
	default:
		return EXIT_ERROR;
	}
}

int cli_fail(vgpu_db *db, int rc, const char *what)
{
	const char *msg = vgpu_db_errmsg(db);

	print_error("%s: %s", what, *msg ? msg : vgpu_strerror(rc));
	return cli_exit_code(rc);
}

vgpu_db *cli_open_db(const struct cli *cli, int *ret_exit)
{
	char err[512];
	vgpu_db *db;
	int rc = vgpu_db_init(cli->db_path, 0, &db, err, sizeof(err));

	if (rc != VGPU_OK) {
		print_error("%s", err);
		*ret_exit = rc == VGPU_INVALID_PARAM ? EXIT_USAGE : EXIT_ERROR;
		return NULL;
	}
	return db;
}

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

int print_json(json_t *root)
{
	int rc;

	if (!root) {
		print_error("out of memory building JSON");
		return EXIT_ERROR;
	}
	rc = json_dumpf(root, stdout, JSON_INDENT(2));
	json_decref(root);
	if (rc != 0 || fputc('\n', stdout) == EOF) {
		print_error("cannot write output");
		return EXIT_ERROR;
	}
	return EXIT_OK;
}
