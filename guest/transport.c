/* SPDX-License-Identifier: MIT */
/*
 * transport.c - picks a transport from a URI.
 *
 * Must never: guess. A URI is a known scheme, a colon and a non-empty path
 * without control characters; anything else is refused before any file or
 * socket is touched.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "transport.h"

static const struct {
	const char *prefix;
	enum vgpu_uri_kind kind;
} schemes[] = {
	{ "unix:", VGPU_URI_UNIX },
	{ "spool:", VGPU_URI_SPOOL },
	{ "shm:", VGPU_URI_SHM },
	{ "dev:", VGPU_URI_DEV },
};

int vgpu_uri_parse(const char *uri, struct vgpu_uri *ret)
{
	const char *path = NULL;
	enum vgpu_uri_kind kind = VGPU_URI_UNIX;
	size_t len;

	if (!uri || !ret)
		return VGPU_INVALID_PARAM;
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t n = strlen(schemes[i].prefix);

		if (strncmp(uri, schemes[i].prefix, n) == 0) {
			path = uri + n;
			kind = schemes[i].kind;
			break;
		}
	}
	if (!path || !*path)
		return VGPU_INVALID_PARAM;
	len = strnlen(path, sizeof(ret->path));
	if (len == sizeof(ret->path))
		return VGPU_LIMIT;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)path[i] < 0x20 || path[i] == 0x7f)
			return VGPU_INVALID_PARAM;
	if ((kind == VGPU_URI_UNIX || kind == VGPU_URI_SHM) &&
	    len >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return VGPU_INVALID_PARAM;
	if ((kind == VGPU_URI_SPOOL || kind == VGPU_URI_DEV) && path[0] != '/')
		return VGPU_INVALID_PARAM; /* the path must not depend on the cwd */
	ret->kind = kind;
	memcpy(ret->path, path, len + 1);
	return VGPU_OK;
}

int vgpu_transport_open(const char *uri, struct vgpu_transport **ret)
{
	struct vgpu_uri u;
	int rc = vgpu_uri_parse(uri, &u);

	if (rc != VGPU_OK)
		return rc;
	switch (u.kind) {
	case VGPU_URI_UNIX:
		return vgpu_transport_unix_open(u.path, ret);
	case VGPU_URI_SPOOL:
		return vgpu_transport_spool_open(u.path, ret);
	default:
		return VGPU_UNSUPPORTED;
	}
}

unsigned long long vgpu_env_ull(const char *name, unsigned long long low, unsigned long long high,
				unsigned long long def)
{
	const char *v = secure_getenv(name);
	unsigned long long x = 0;

	if (!v || !*v || strlen(v) > 12)
		return def;
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9')
			return def;
		x = x * 10 + (unsigned)(*p - '0');
	}
	return x < low ? low : x > high ? high : x;
}
