/* SPDX-License-Identifier: MIT */
/*
 * validate.c - the one definition of a valid UUID, pool, priority, vm_id,
 * name and GPU list, and the parsers the tools use for the same values. The library checks
 * every argument with these before it reaches SQL, so a caller that skips its
 * own checks still cannot store a bad row.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vgpu_config.h"

bool vgpu_uuid_valid(const char *s)
{
	static const char layout[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

	if (!s)
		return false;
	for (size_t i = 0; i < VGPU_UUID_STRLEN; i++) {
		if (layout[i] == '-' ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return false;
	}
	return s[VGPU_UUID_STRLEN] == '\0';
}

int vgpu_uuid_normalize(const char *s, char ret_uuid[VGPU_UUID_STRLEN + 1])
{
	if (!vgpu_uuid_valid(s) || !ret_uuid)
		return VGPU_INVALID_PARAM;
	for (size_t i = 0; i <= VGPU_UUID_STRLEN; i++)
		ret_uuid[i] = (char)tolower((unsigned char)s[i]);
	return VGPU_OK;
}

bool vgpu_pool_id_valid(char pool_id)
{
	return pool_id >= 'A' && pool_id <= 'Z';
}

bool vgpu_priority_valid(int priority)
{
	return priority >= VGPU_PRIORITY_LOW && priority <= VGPU_PRIORITY_HIGH;
}

bool vgpu_vm_id_valid(long long vm_id)
{
	return vm_id >= VGPU_VM_ID_MIN && vm_id <= VGPU_VM_ID_MAX;
}

/* Length of the UTF-8 sequence at @s that encodes a printable code point
 * (no C0/C1 controls, no DEL, no surrogates, no overlong forms), or 0. */
static size_t printable_utf8_len(const unsigned char *s)
{
	unsigned cp;
	size_t len;

	if (s[0] < 0x80)
		return s[0] >= 0x20 && s[0] != 0x7f ? 1 : 0;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	if ((cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
		return 0;
	return len;
}

bool vgpu_name_valid(const char *s)
{
	return vgpu_text_valid(s, VGPU_NAME_MAX);
}

bool vgpu_text_valid(const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;

	if (!s || strnlen(s, max + 1) > max)
		return false;
	while (*p) {
		size_t n = printable_utf8_len(p);

		if (n == 0)
			return false;
		p += n;
	}
	return true;
}

int vgpu_pool_id_parse(const char *s, char *ret_pool_id)
{
	char c;

	if (!s || !s[0] || s[1])
		return VGPU_INVALID_PARAM;
	c = (char)toupper((unsigned char)s[0]);
	if (!vgpu_pool_id_valid(c))
		return VGPU_INVALID_PARAM;
	*ret_pool_id = c;
	return VGPU_OK;
}

static const char *const priority_names[] = { "low", "medium", "high" };

int vgpu_priority_parse(const char *s, int *ret_priority)
{
	if (!s)
		return VGPU_INVALID_PARAM;
	for (int p = VGPU_PRIORITY_LOW; p <= VGPU_PRIORITY_HIGH; p++) {
		if (strcasecmp(s, priority_names[p]) == 0 || (s[0] == '0' + p && s[1] == '\0')) {
			*ret_priority = p;
			return VGPU_OK;
		}
	}
	return VGPU_INVALID_PARAM;
}

const char *vgpu_priority_name(int priority)
{
	return vgpu_priority_valid(priority) ? priority_names[priority] : "invalid";
}

int vgpu_int_parse(const char *s, long long min, long long max, long long *ret)
{
	char *end;
	long long v;

	/* Digits only: strtoll alone would take "+5", " 5" and "0x5". */
	if (!s || !ret || !isdigit((unsigned char)s[0]))
		return VGPU_INVALID_PARAM;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return VGPU_INVALID_PARAM;
	*ret = v;
	return VGPU_OK;
}

int vgpu_gpus_parse(const char *s, unsigned *ret_mask)
{
	unsigned mask = 0;
	const char *p = s;

	if (!s || !ret_mask)
		return VGPU_INVALID_PARAM;
	if (strcasecmp(s, "all") == 0) {
		*ret_mask = 0;
		return VGPU_OK;
	}
	/* "0", "0,2": indexes below VGPU_MAX_GPUS, no empty items, no repeats. */
	for (;;) {
		unsigned gpu = 0;
		int digits = 0;

		while (isdigit((unsigned char)*p) && digits < 3) {
			gpu = gpu * 10 + (unsigned)(*p++ - '0');
			digits++;
		}
		if (digits == 0 || gpu >= VGPU_MAX_GPUS || (mask >> gpu & 1u))
			return VGPU_INVALID_PARAM;
		mask |= 1u << gpu;
		if (*p == '\0')
			break;
		if (*p++ != ',')
			return VGPU_INVALID_PARAM;
	}
	*ret_mask = mask;
	return VGPU_OK;
}

void vgpu_gpus_format(unsigned mask, char out[96])
{
	size_t n = 0;

	if (mask == 0) {
		snprintf(out, 96, "all");
		return;
	}
	out[0] = '\0';
	for (unsigned gpu = 0; gpu < VGPU_MAX_GPUS; gpu++)
		if (mask >> gpu & 1u)
			n += (size_t)snprintf(out + n, 96 - n, n ? ",%u" : "%u", gpu);
}

int vgpu_vm_id_parse(const char *s, int *ret_vm_id)
{
	long long v;

	if (vgpu_int_parse(s, VGPU_VM_ID_MIN, VGPU_VM_ID_MAX, &v) != VGPU_OK)
		return VGPU_INVALID_PARAM;
	*ret_vm_id = (int)v;
	return VGPU_OK;
}
