/* SPDX-License-Identifier: MIT */
/*
 * error.c - vgpu_strerror(): the single table of error messages.
 */
#include "vgpu_error.h"

#include <stddef.h>

static const struct {
	int code;
	const char *text;
} error_table[] = {
	{ VGPU_OK, "success" },
	{ VGPU_ERROR, "error" },
	{ VGPU_NOT_FOUND, "not found" },
	{ VGPU_INVALID_PARAM, "invalid parameter" },
	{ VGPU_DB_ERROR, "database error" },
	{ VGPU_EXISTS, "already exists" },
	{ VGPU_NO_MEMORY, "out of memory" },
	{ VGPU_IO_ERROR, "input/output error" },
	{ VGPU_TIMEOUT, "timed out" },
	{ VGPU_BUSY, "busy" },
	{ VGPU_DENIED, "permission denied" },
	{ VGPU_AMBIGUOUS, "ambiguous" },
	{ VGPU_UNSUPPORTED, "not supported" },
	{ VGPU_LIMIT, "limit reached" },
	{ VGPU_PROTOCOL, "protocol error" },
	{ VGPU_BACKEND, "backend failure" },
	{ VGPU_SHUTDOWN, "shutting down" },
};

const char *vgpu_strerror(int code)
{
	for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]); i++)
		if (error_table[i].code == code)
			return error_table[i].text;
	return "unknown error";
}
