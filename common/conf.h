/* SPDX-License-Identifier: MIT */
/*
 * conf.h - configuration files as a data table (the shape of Redis's
 * config.c): each program lists its settings once, with type, bounds and
 * default, and this parser applies a `key = value` file to them.
 *
 * File format: one `key = value` per line; blank lines and lines starting
 * with '#' are ignored; spaces around key and value are trimmed. Unknown keys,
 * bad values, over-long lines and over-large files are errors that name the
 * line, never silently ignored.
 */
#ifndef VGPU_CONF_H
#define VGPU_CONF_H

#include <stddef.h>

#define VGPU_CONF_MAX_BYTES (64 * 1024)
#define VGPU_CONF_MAX_LINE 1024

enum vgpu_conf_type {
	VGPU_CONF_STRING, /* char[size] at offset; at most size - 1 bytes */
	VGPU_CONF_PATH,   /* like STRING, and must be absolute */
	VGPU_CONF_BOOL,   /* bool at offset; yes/no, true/false, on/off, 1/0 */
	VGPU_CONF_INT,    /* long long at offset, within min..max */
};

struct vgpu_conf_option {
	const char *name;          /* key in the file */
	enum vgpu_conf_type type;
	size_t offset;             /* where the value lives in the settings struct */
	size_t size;               /* STRING/PATH: buffer size in bytes */
	long long min, max;        /* INT: inclusive bounds */
	const char *default_value; /* text form, applied by vgpu_conf_defaults() */
	const char *help;          /* one line, for docs and --help */
};

/* Set every option of @table (terminated by a NULL name) to its default. */
int vgpu_conf_defaults(const struct vgpu_conf_option *table, void *settings);

/* Set one option from its text form, as if it were read from a file. */
int vgpu_conf_set(const struct vgpu_conf_option *table, void *settings, const char *name,
		  const char *value, char *ret_err, size_t err_size);

/*
 * Apply the file at @path to @settings. VGPU_NOT_FOUND when the file does not
 * exist (settings untouched); on any other failure @ret_err says which line
 * and why, and @settings may hold the values of the lines before it.
 */
int vgpu_conf_load(const char *path, const struct vgpu_conf_option *table, void *settings,
		   char *ret_err, size_t err_size);

/*
 * Apply the @len bytes at @text (need not be NUL-terminated) to @settings;
 * @origin names the source in messages. The parser behind vgpu_conf_load(),
 * exposed for tests and fuzzing.
 */
int vgpu_conf_parse(const char *text, size_t len, const char *origin,
		    const struct vgpu_conf_option *table, void *settings, char *ret_err,
		    size_t err_size);

#endif
