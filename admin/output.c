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
