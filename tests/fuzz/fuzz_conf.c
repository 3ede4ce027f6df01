/* SPDX-License-Identifier: MIT */
/*
 * fuzz_conf.c - the `key = value` configuration parser (common/conf.c).
 * Invariant: accepted values are within their option's bounds.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "vgpu_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct settings {
	char name[16];
	char path[64];
	bool flag;
	long long count;
};

static const struct vgpu_conf_option table[] = {
	{ "name", VGPU_CONF_STRING, offsetof(struct settings, name), 16, 0, 0, "x", "a string" },
	{ "path", VGPU_CONF_PATH, offsetof(struct settings, path), 64, 0, 0, "/a", "a path" },
	{ "flag", VGPU_CONF_BOOL, offsetof(struct settings, flag), 0, 0, 0, "no", "a bool" },
	{ "count", VGPU_CONF_INT, offsetof(struct settings, count), 0, -5, 1000, "1", "an int" },
	{ NULL, 0, 0, 0, 0, 0, NULL, NULL },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct settings s;
	char err[256];

	if (vgpu_conf_defaults(table, &s) != VGPU_OK)
		abort();
	vgpu_conf_parse((const char *)data, size, "fuzz", table, &s, err, sizeof(err));
	if (s.count < -5 || s.count > 1000 || s.path[0] != '/' ||
	    strnlen(s.name, sizeof(s.name)) == sizeof(s.name) ||
	    strnlen(err, sizeof(err)) == sizeof(err))
		abort();
	return 0;
}
