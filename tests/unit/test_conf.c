/* SPDX-License-Identifier: MIT */
/*
 * test_conf.c - the table-driven `key = value` parser of common/conf.h:
 * defaults, every option type and its bounds, then files: comments, blank
 * lines, trimming, CRLF, unknown keys and lines without '=' (named by line
 * number), the line and file size limits at and past their boundary, NUL
 * bytes, a missing file (settings untouched), an unreadable one, and a
 * directory or FIFO in place of the file (an error, never a hang).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "conf.h"
#include "vgpu_error.h"

struct settings {
	char name[16];
	char socket[32];
	bool debug;
	long long workers;
	long long offset;
};

static const struct vgpu_conf_option table[] = {
	{ "name", VGPU_CONF_STRING, offsetof(struct settings, name), 16, 0, 0, "vgpu", "a name" },
	{ "socket", VGPU_CONF_PATH, offsetof(struct settings, socket), 32, 0, 0, "/run/vgpu.sock",
	  "socket path" },
	{ "debug", VGPU_CONF_BOOL, offsetof(struct settings, debug), 0, 0, 0, "no", "debug" },
	{ "workers", VGPU_CONF_INT, offsetof(struct settings, workers), 0, 1, 64, "4", "workers" },
	{ "offset", VGPU_CONF_INT, offsetof(struct settings, offset), 0, -10, 10, "-3", "offset" },
	{ NULL, 0, 0, 0, 0, 0, NULL, NULL },
};

struct fixture {
	char *dir;
	char *path;  /* dir/test.conf, not yet written */
	struct settings s;
	char err[512];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->dir = th_mkdtemp();
	f->path = th_join(f->dir, "test.conf");
	assert_int_equal(vgpu_conf_defaults(table, &f->s), VGPU_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	th_rmtree(f->dir);
	free(f->dir);
	free(f->path);
	free(f);
	return 0;
}

static int load_text(struct fixture *f, const char *text)
{
	th_write_file(f->path, text, strlen(text));
	f->err[0] = '\0';
	return vgpu_conf_load(f->path, table, &f->s, f->err, sizeof(f->err));
}

/* f->err names the file, the line @lineno (0: no line) and contains @what. */
static void assert_err(struct fixture *f, int lineno, const char *what)
{
	char prefix[600];

	if (lineno)
		snprintf(prefix, sizeof(prefix), "%s:%d: ", f->path, lineno);
	else
		snprintf(prefix, sizeof(prefix), "%s: ", f->path);
	if (strncmp(f->err, prefix, strlen(prefix)) != 0 || !strstr(f->err, what)) {
		print_error("message \"%s\" lacks \"%s\" or \"%s\"\n", f->err, prefix, what);
		fail();
	}
}

static void defaults(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(f->s.name, "vgpu");
	assert_string_equal(f->s.socket, "/run/vgpu.sock");
	assert_false(f->s.debug);
	assert_int_equal(f->s.workers, 4);
	assert_int_equal(f->s.offset, -3);

	/* A table whose default breaks its own bounds is a programming error. */
	static const struct vgpu_conf_option broken[] = {
		{ "n", VGPU_CONF_INT, 0, 0, 1, 2, "3", "" },
		{ NULL, 0, 0, 0, 0, 0, NULL, NULL },
	};
	long long n = 0;
	assert_int_equal(vgpu_conf_defaults(broken, &n), VGPU_ERROR);
}

static void set_string_and_path(void **state)
{
	struct fixture *f = *state;
	char *err = f->err;
	size_t es = sizeof(f->err);

	assert_int_equal(vgpu_conf_set(table, &f->s, "name", "fifteen-bytes-x", err, es), VGPU_OK);
	assert_string_equal(f->s.name, "fifteen-bytes-x");
	assert_int_equal(vgpu_conf_set(table, &f->s, "name", "sixteen-bytes-xx", err, es),
			 VGPU_INVALID_PARAM);
	assert_non_null(strstr(err, "name"));
	assert_string_equal(f->s.name, "fifteen-bytes-x");
	assert_int_equal(vgpu_conf_set(table, &f->s, "name", "", err, es), VGPU_OK);
	assert_string_equal(f->s.name, "");

	assert_int_equal(vgpu_conf_set(table, &f->s, "socket", "/var/run/x.sock", err, es), VGPU_OK);
	assert_string_equal(f->s.socket, "/var/run/x.sock");
	static const char *const relative[] = { "run/x.sock", "./x.sock", "../x", "", " /x", "~/x" };
	for (size_t i = 0; i < sizeof(relative) / sizeof(relative[0]); i++) {
		err[0] = '\0';
		assert_int_equal(vgpu_conf_set(table, &f->s, "socket", relative[i], err, es),
				 VGPU_INVALID_PARAM);
		assert_non_null(strstr(err, "absolute"));
	}
	assert_int_equal(vgpu_conf_set(table, &f->s, "socket", "/0123456789012345678901234567890",
				       err, es),
			 VGPU_INVALID_PARAM);
	assert_string_equal(f->s.socket, "/var/run/x.sock");

	assert_int_equal(vgpu_conf_set(table, &f->s, "nope", "1", err, es), VGPU_INVALID_PARAM);
	assert_non_null(strstr(err, "unknown setting \"nope\""));
	assert_int_equal(vgpu_conf_set(table, &f->s, "NAME", "x", err, es), VGPU_INVALID_PARAM);
}

static void set_bool(void **state)
{
	struct fixture *f = *state;
	static const char *const yes[] = { "yes", "true", "on", "1", "YES", "True", "ON" };
	static const char *const no[] = { "no", "false", "off", "0", "NO", "False", "oFF" };
	static const char *const bad[] = { "maybe", "", "2", "y", "n", "yes!", "-1", "enabled" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		f->s.debug = false;
		assert_int_equal(vgpu_conf_set(table, &f->s, "debug", yes[i], f->err, sizeof(f->err)),
				 VGPU_OK);
		assert_true(f->s.debug);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		f->s.debug = true;
		assert_int_equal(vgpu_conf_set(table, &f->s, "debug", no[i], f->err, sizeof(f->err)),
				 VGPU_OK);
		assert_false(f->s.debug);
	}
	f->s.debug = true;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(vgpu_conf_set(table, &f->s, "debug", bad[i], f->err, sizeof(f->err)),
				 VGPU_INVALID_PARAM);
		assert_non_null(strstr(f->err, "debug"));
		assert_true(f->s.debug);
	}
}

static void set_int_bounds(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *name, *value;
		long long want;
	} good[] = {
		{ "workers", "1", 1 }, { "workers", "64", 64 }, { "workers", "007", 7 },
		{ "offset", "-10", -10 }, { "offset", "10", 10 }, { "offset", "0", 0 },
		{ "offset", "+3", 3 },
	};
	static const struct {
		const char *name, *value;
	} bad[] = {
		{ "workers", "0" }, { "workers", "65" }, { "workers", "-1" }, { "workers", "" },
		{ "workers", "4x" }, { "workers", "x4" }, { "workers", "4 5" }, { "workers", "4.0" },
		{ "workers", "99999999999999999999" }, { "offset", "-11" }, { "offset", "11" },
		{ "offset", "-99999999999999999999" }, { "offset", "0x5" }, { "workers", "1e1" },
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(vgpu_conf_set(table, &f->s, good[i].name, good[i].value, f->err,
					       sizeof(f->err)),
				 VGPU_OK);
		assert_int_equal(*(strcmp(good[i].name, "workers") == 0 ? &f->s.workers : &f->s.offset),
				 good[i].want);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f->err[0] = '\0';
		if (vgpu_conf_set(table, &f->s, bad[i].name, bad[i].value, f->err, sizeof(f->err)) !=
		    VGPU_INVALID_PARAM) {
			print_error("%s = \"%s\" was accepted\n", bad[i].name, bad[i].value);
			fail();
		}
		assert_non_null(strstr(f->err, bad[i].name));
	}
	assert_int_equal(f->s.workers, 7);
	assert_int_equal(f->s.offset, 3);
}

static void load_full_file(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load_text(f, "# vgpu test configuration\n"
				      "\n"
				      "   \t\n"
				      "  # an indented comment\n"
				      "name=first\n"
				      "\tname   =   second  \t\n"
				      "socket = /tmp/a=b.sock\n"
				      "debug = On\n"
				      "workers = 64\n"
				      "offset=-10"),
			 VGPU_OK);
	assert_string_equal(f->s.name, "second");
	assert_string_equal(f->s.socket, "/tmp/a=b.sock");
	assert_true(f->s.debug);
	assert_int_equal(f->s.workers, 64);
	assert_int_equal(f->s.offset, -10);

	/* An empty file and one of comments only change nothing. */
	struct settings before;
	memcpy(&before, &f->s, sizeof(before));
	assert_int_equal(load_text(f, ""), VGPU_OK);
	assert_int_equal(load_text(f, "#\n# only comments\n\n"), VGPU_OK);
	assert_memory_equal(&before, &f->s, sizeof(before));
}

static void load_crlf(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load_text(f, "# windows\r\n\r\nname = dos\r\nworkers = 9\r\ndebug = yes\r\n"
				      "socket = /x\r\n"),
			 VGPU_OK);
	assert_string_equal(f->s.name, "dos");
	assert_int_equal(f->s.workers, 9);
	assert_true(f->s.debug);
	assert_string_equal(f->s.socket, "/x");
}

static void load_unknown_key(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load_text(f, "name = ok\n# comment\nbogus = 1\nworkers = 2\n"),
			 VGPU_INVALID_PARAM);
	assert_err(f, 3, "bogus");
	/* Lines before the bad one were applied; lines after it were not. */
	assert_string_equal(f->s.name, "ok");
	assert_int_equal(f->s.workers, 4);

	assert_int_equal(load_text(f, "na me = x\n"), VGPU_INVALID_PARAM);
	assert_err(f, 1, "na me");
	assert_int_equal(load_text(f, "= x\n"), VGPU_INVALID_PARAM);
	assert_err(f, 1, "unknown");
}

static void load_bad_value_names_line(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load_text(f, "\n\n\n\nworkers = 65\n"), VGPU_INVALID_PARAM);
	assert_err(f, 5, "workers");
	assert_int_equal(load_text(f, "socket = relative\n"), VGPU_INVALID_PARAM);
	assert_err(f, 1, "absolute");
	assert_int_equal(load_text(f, "debug = perhaps\n"), VGPU_INVALID_PARAM);
	assert_err(f, 1, "perhaps");
	assert_int_equal(f->s.workers, 4);
}

static void load_missing_equals(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load_text(f, "name = a\n\nworkers 8\n"), VGPU_INVALID_PARAM);
	assert_err(f, 3, "key = value");
	assert_int_equal(load_text(f, "justaword"), VGPU_INVALID_PARAM);
	assert_err(f, 1, "key = value");
}

static void load_line_limit(void **state)
{
	struct fixture *f = *state;
	char text[VGPU_CONF_MAX_LINE + 64];

	/* Exactly VGPU_CONF_MAX_LINE bytes: fine. */
	text[0] = '#';
	memset(text + 1, 'c', VGPU_CONF_MAX_LINE - 1);
	strcpy(text + VGPU_CONF_MAX_LINE, "\nworkers = 5\n");
	assert_int_equal(load_text(f, text), VGPU_OK);
	assert_int_equal(f->s.workers, 5);

	/* One more byte, on line 2: VGPU_LIMIT naming the line. */
	static const char first[] = "workers = 6\n";
	size_t at = sizeof(first) - 1;
	memcpy(text, first, at);
	text[at] = '#';
	memset(text + at + 1, 'c', VGPU_CONF_MAX_LINE);
	text[at + 1 + VGPU_CONF_MAX_LINE] = '\0';
	assert_int_equal(strlen(text) - at, VGPU_CONF_MAX_LINE + 1);
	assert_int_equal(load_text(f, text), VGPU_LIMIT);
	assert_err(f, 2, "line longer");
}

static void load_file_limit(void **state)
{
	struct fixture *f = *state;
	static char text[VGPU_CONF_MAX_BYTES + 2];
	size_t len = 0;

	/* Exactly VGPU_CONF_MAX_BYTES of comment lines, then a setting in them. */
	while (len < VGPU_CONF_MAX_BYTES) {
		size_t line = VGPU_CONF_MAX_BYTES - len < 100 ? VGPU_CONF_MAX_BYTES - len : 100;

		memset(text + len, '#', line - 1);
		text[len + line - 1] = '\n';
		len += line;
	}
	memcpy(text + 100, "workers = 33\n", 13);
	text[len] = '\0';
	assert_int_equal(strlen(text), VGPU_CONF_MAX_BYTES);
	assert_int_equal(load_text(f, text), VGPU_OK);
	assert_int_equal(f->s.workers, 33);

	/* One byte more. */
	text[len] = '#';
	text[len + 1] = '\0';
	f->s.workers = 1;
	assert_int_equal(load_text(f, text), VGPU_LIMIT);
	assert_err(f, 0, "larger than");
	assert_int_equal(f->s.workers, 1);
}

static void load_nul_byte(void **state)
{
	struct fixture *f = *state;
	static const char text[] = "name = a\0b\nworkers = 3\n";

	th_write_file(f->path, text, sizeof(text) - 1);
	assert_int_equal(vgpu_conf_load(f->path, table, &f->s, f->err, sizeof(f->err)),
			 VGPU_INVALID_PARAM);
	assert_err(f, 0, "NUL");
	assert_string_equal(f->s.name, "vgpu");
	assert_int_equal(f->s.workers, 4);
}

static void load_missing_file(void **state)
{
	struct fixture *f = *state;
	char *path = th_join(f->dir, "absent.conf");
	struct settings before;

	memset(&f->s, 0x5c, sizeof(f->s));
	memcpy(&before, &f->s, sizeof(before));
	assert_int_equal(vgpu_conf_load(path, table, &f->s, f->err, sizeof(f->err)), VGPU_NOT_FOUND);
	assert_memory_equal(&before, &f->s, sizeof(before));
	assert_non_null(strstr(f->err, path));
	free(path);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void load_not_a_regular_file(void **state)
{
	struct fixture *f = *state;
	char *fifo = th_join(f->dir, "fifo.conf");
	double start;

	assert_int_equal(vgpu_conf_load(f->dir, table, &f->s, f->err, sizeof(f->err)),
			 VGPU_INVALID_PARAM);
	assert_non_null(strstr(f->err, "not a regular file"));

	/* A FIFO without a writer would block a plain open() or read() forever. */
	assert_int_equal(mkfifo(fifo, 0600), 0);
	start = now_s();
	alarm(10); /* a hang fails the test instead of the suite's timeout */
	assert_int_equal(vgpu_conf_load(fifo, table, &f->s, f->err, sizeof(f->err)),
			 VGPU_INVALID_PARAM);
	alarm(0);
	assert_true(now_s() - start < 2.0);
	assert_non_null(strstr(f->err, "not a regular file"));
	assert_string_equal(f->s.name, "vgpu");
	free(fifo);
}

static int load_as_nobody(void *arg)
{
	struct settings s;
	char err[256] = "";

	memset(&s, 0, sizeof(s));
	return vgpu_conf_load(arg, table, &s, err, sizeof(err)) == VGPU_DENIED && err[0] ? 0 : 1;
}

static void load_unreadable(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load_text(f, "workers = 2\n"), VGPU_OK);
	assert_int_equal(chmod(f->path, 0), 0);
	assert_int_equal(chmod(f->dir, 0755), 0);
	assert_int_equal(th_run_unprivileged(load_as_nobody, f->path), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(defaults),
		T(set_string_and_path),
		T(set_bool),
		T(set_int_bounds),
		T(load_full_file),
		T(load_crlf),
		T(load_unknown_key),
		T(load_bad_value_names_line),
		T(load_missing_equals),
		T(load_line_limit),
		T(load_file_limit),
		T(load_nul_byte),
		T(load_missing_file),
		T(load_not_a_regular_file),
		T(load_unreadable),
	};

	return cmocka_run_group_tests_name("conf", tests, NULL, NULL);
}
