/* SPDX-License-Identifier: MIT */
/*
 * xenstore.c - reading a domain's keys with `xenstore-read`, and the parsers
 * behind xenstore.h.
 *
 * Must never: run a shell, wait past the deadline, or hand on a value that
 * is truncated or has bytes its parser did not accept.
 */
#include <stdio.h>
#include <string.h>

#include "exec.h"
#include "xenstore.h"

bool vgpu_domid_parse(const char *s, unsigned *ret_domid)
{
	unsigned v = 0;

	if (!s || s[0] < '1' || s[0] > '9')
		return false;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (unsigned)(*p - '0');
		if (v > VGPU_DOMID_MAX)
			return false;
	}
	*ret_domid = v;
	return true;
}

void vgpu_xs_printable(const char *s, size_t max_chars, char *ret, size_t size)
{
	size_t i = 0;

	if (!size)
		return;
	for (; s && s[i] && i < max_chars && i + 1 < size; i++)
		ret[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	ret[i] = '\0';
}

/* The first line of a failed command's stderr, for the log. */
static void first_line(const char *text, char *ret, size_t size)
{
	char line[128];
	size_t n = strcspn(text ? text : "", "\n");

	if (n >= sizeof(line))
		n = sizeof(line) - 1;
	memcpy(line, text ? text : "", n);
	line[n] = '\0';
	vgpu_xs_printable(line, sizeof(line), ret, size);
}

int vgpu_xs_read(const char *path, int timeout_ms, char *ret_value, size_t size,
		 char *ret_err, size_t err_size)
{
	const char *const argv[] = { "xenstore-read", path, NULL };
	struct vgpu_exec_result r = { 0 };
	char why[128];
	int rc;

	if (!path || !ret_value || size < 2)
		return VGPU_INVALID_PARAM;
	/* The value, xenstore-read's newline, and one byte to notice more. */
	rc = vgpu_exec(argv, timeout_ms, size + 1, &r);
	switch (rc) {
	case VGPU_OK:
		break;
	case VGPU_NOT_FOUND:
		snprintf(ret_err, err_size, "xenstore-read is not installed (not on PATH)");
		return rc;
	case VGPU_TIMEOUT:
		snprintf(ret_err, err_size, "xenstore-read %s did not answer within %d ms", path,
			 timeout_ms);
		vgpu_exec_result_free(&r);
		return rc;
	default:
		snprintf(ret_err, err_size, "cannot run xenstore-read: %s", vgpu_strerror(rc));
		return rc;
	}

	size_t len = r.out_len;
	if (len > 0 && r.out[len - 1] == '\n')
		len--;
	if (r.status != 0) {
		first_line(r.err, why, sizeof(why));
		snprintf(ret_err, err_size, "xenstore-read %s failed with status %d%s%s", path,
			 r.status, *why ? ": " : "", why);
		rc = VGPU_ERROR;
	} else if (r.truncated || len >= size) {
		snprintf(ret_err, err_size, "xenstore-read %s gave more than %zu bytes", path,
			 size - 1);
		rc = VGPU_INVALID_PARAM;
	} else if (memchr(r.out, '\0', len) || memchr(r.out, '\n', len)) {
		snprintf(ret_err, err_size, "xenstore-read %s gave a value with NUL or newline bytes",
			 path);
		rc = VGPU_INVALID_PARAM;
	} else {
		memcpy(ret_value, r.out, len);
		ret_value[len] = '\0';
	}
	vgpu_exec_result_free(&r);
	return rc;
}

int vgpu_xs_vm_uuid(const char *value, char ret_uuid[VGPU_UUID_STRLEN + 1])
{
	static const char prefix[] = "/vm/";

	if (!value || strncmp(value, prefix, sizeof(prefix) - 1) != 0)
		return VGPU_INVALID_PARAM;
	return vgpu_uuid_normalize(value + sizeof(prefix) - 1, ret_uuid);
}
