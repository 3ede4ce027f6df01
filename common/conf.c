/* SPDX-License-Identifier: MIT */
/*
 * conf.c - the `key = value` configuration parser behind conf.h.
 * Must never: accept a value outside its option's bounds, read an unbounded
 * line or file, or follow the file into a non-regular file (a FIFO would hang).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "vgpu_error.h"

static const struct vgpu_conf_option *find(const struct vgpu_conf_option *table,
					   const char *name)
{
	for (; table->name; table++)
		if (strcmp(table->name, name) == 0)
			return table;
	return NULL;
}

static int parse_bool(const char *v, bool *ret)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*ret = true;
			return VGPU_OK;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*ret = false;
			return VGPU_OK;
		}
	}
	return VGPU_INVALID_PARAM;
}

static int apply(const struct vgpu_conf_option *opt, void *settings, const char *value,
		 char *err, size_t err_size)
{
	char *field = (char *)settings + opt->offset;

	switch (opt->type) {
	case VGPU_CONF_PATH:
		if (value[0] != '/') {
			snprintf(err, err_size, "%s must be an absolute path", opt->name);
			return VGPU_INVALID_PARAM;
		}
		/* fall through */
	case VGPU_CONF_STRING:
		if (strlen(value) >= opt->size) {
			snprintf(err, err_size, "%s is longer than %zu bytes", opt->name,
				 opt->size - 1);
			return VGPU_INVALID_PARAM;
		}
		memcpy(field, value, strlen(value) + 1);
		return VGPU_OK;
	case VGPU_CONF_BOOL: {
		bool b;

		if (parse_bool(value, &b) != VGPU_OK) {
			snprintf(err, err_size, "%s must be yes or no, not \"%s\"", opt->name, value);
			return VGPU_INVALID_PARAM;
		}
		memcpy(field, &b, sizeof(b));
		return VGPU_OK;
	}
	case VGPU_CONF_INT: {
		char *end;
		long long v;

		errno = 0;
		v = strtoll(value, &end, 10);
		if (errno || end == value || *end || v < opt->min || v > opt->max) {
			snprintf(err, err_size, "%s must be an integer in %lld..%lld, not \"%s\"",
				 opt->name, opt->min, opt->max, value);
			return VGPU_INVALID_PARAM;
		}
		memcpy(field, &v, sizeof(v));
		return VGPU_OK;
	}
	}
	snprintf(err, err_size, "%s has an unknown type", opt->name);
	return VGPU_ERROR;
}

int vgpu_conf_set(const struct vgpu_conf_option *table, void *settings, const char *name,
		  const char *value, char *ret_err, size_t err_size)
{
	const struct vgpu_conf_option *opt = find(table, name);

	if (!opt) {
		snprintf(ret_err, err_size, "unknown setting \"%s\"", name);
		return VGPU_INVALID_PARAM;
	}
	return apply(opt, settings, value, ret_err, err_size);
}

int vgpu_conf_defaults(const struct vgpu_conf_option *table, void *settings)
{
	char err[128];

	for (; table->name; table++)
		if (apply(table, settings, table->default_value, err, sizeof(err)) != VGPU_OK)
			return VGPU_ERROR;
	return VGPU_OK;
}

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

int vgpu_conf_parse(const char *text, size_t len, const char *origin,
		    const struct vgpu_conf_option *table, void *settings, char *ret_err,
		    size_t err_size)
{
	char err[256];
	char *copy;
	int lineno = 0, rc = VGPU_OK;

	if (len > VGPU_CONF_MAX_BYTES) {
		snprintf(ret_err, err_size, "%s: larger than %d bytes", origin, VGPU_CONF_MAX_BYTES);
		return VGPU_LIMIT;
	}
	if (memchr(text, '\0', len)) {
		snprintf(ret_err, err_size, "%s: contains a NUL byte", origin);
		return VGPU_INVALID_PARAM;
	}
	copy = malloc(len + 1);
	if (!copy)
		return VGPU_NO_MEMORY;
	memcpy(copy, text, len);
	copy[len] = '\0';

	for (char *line = copy, *next; line && *line; line = next) {
		char *eq, *key, *value;

		lineno++;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strlen(line) > VGPU_CONF_MAX_LINE) {
			snprintf(ret_err, err_size, "%s:%d: line longer than %d bytes", origin, lineno,
				 VGPU_CONF_MAX_LINE);
			rc = VGPU_LIMIT;
			break;
		}
		key = trim(line);
		if (*key == '\0' || *key == '#')
			continue;
		eq = strchr(key, '=');
		if (!eq) {
			snprintf(ret_err, err_size, "%s:%d: expected \"key = value\"", origin, lineno);
			rc = VGPU_INVALID_PARAM;
			break;
		}
		*eq = '\0';
		key = trim(key);
		value = trim(eq + 1);
		if (vgpu_conf_set(table, settings, key, value, err, sizeof(err)) != VGPU_OK) {
			snprintf(ret_err, err_size, "%s:%d: %s", origin, lineno, err);
			rc = VGPU_INVALID_PARAM;
			break;
		}
	}
	free(copy);
	return rc;
}

int vgpu_conf_load(const char *path, const struct vgpu_conf_option *table, void *settings,
		   char *ret_err, size_t err_size)
{
	char *buf;
	struct stat st;
	size_t len = 0;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(ret_err, err_size, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? VGPU_NOT_FOUND
		       : errno == EACCES ? VGPU_DENIED
					 : VGPU_IO_ERROR;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(ret_err, err_size, "%s: not a regular file", path);
		close(fd);
		return VGPU_INVALID_PARAM;
	}
	buf = malloc(VGPU_CONF_MAX_BYTES + 1);
	if (!buf) {
		close(fd);
		return VGPU_NO_MEMORY;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, VGPU_CONF_MAX_BYTES + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(ret_err, err_size, "%s: %s", path, strerror(errno));
			free(buf);
			close(fd);
			return VGPU_IO_ERROR;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > VGPU_CONF_MAX_BYTES)
			break; /* vgpu_conf_parse reports it */
	}
	close(fd);
	rc = vgpu_conf_parse(buf, len, path, table, settings, ret_err, err_size);
	free(buf);
	return rc;
}
