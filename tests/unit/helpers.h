/* SPDX-License-Identifier: MIT */
/*
 * helpers.h - what the unit tests share: temporary directories, files, and
 * direct SQLite access to a registry behind libvgpu-config's back (to build
 * old schemas and to check what is really stored).
 *
 * Every helper asserts with cmocka, so a helper that fails fails the test.
 * Never use them in a forked child: a cmocka failure there longjmps into a
 * copy of the runner.
 */
#ifndef VGPU_TEST_HELPERS_H
#define VGPU_TEST_HELPERS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "vgpu_config.h"

/* A fresh directory /tmp/vgpu-unit-XXXXXX; free() it after th_rmtree(). */
char *th_mkdtemp(void);
/* rm -rf @path (no symlinks followed). Accepts NULL. */
void th_rmtree(const char *path);
/* malloc()ed "@dir/@name". */
char *th_join(const char *dir, const char *name);

void th_write_file(const char *path, const void *data, size_t len);
/* The whole file, NUL-terminated, malloc()ed; *ret_len may be NULL. */
char *th_read_file(const char *path, size_t *ret_len);
/* Whether @path exists (lstat). */
int th_exists(const char *path);

/* A raw SQLite connection to @path, read-write, never creating. */
sqlite3 *th_sql_open(const char *path);
/* Run @sql (several statements allowed); the test fails on error. */
void th_sql_exec(sqlite3 *sql, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The first column of the first row of @sql as an integer. */
long long th_sql_int(sqlite3 *sql, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The first column of the first row as malloc()ed text ("" for NULL). */
char *th_sql_text(sqlite3 *sql, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * A text dump of everything the registry holds: user_version, the schema in
 * sqlite_master and every row of pools and vms, timestamps included.
 * malloc()ed. Two equal snapshots mean nothing changed.
 */
char *th_snapshot(const char *db_path);

/* The canonical lower-case UUID number @n: "000000nn-0000-4000-8000-0000000000nn". */
void th_uuid(char out[37], unsigned n);

/*
 * Evaluate @call on the fixture @t expecting @code; the registry must be
 * unchanged afterwards and vgpu_db_errmsg() must contain @substr (NULL:
 * only non-empty).
 */
#define TH_ASSERT_FAILS(t, code, substr, call)                                      \
	do {                                                                        \
		char *th_before_ = th_snapshot((t)->path);                          \
		assert_int_equal((call), (code));                                   \
		th_assert_errmsg((t)->db, (substr));                                \
		char *th_after_ = th_snapshot((t)->path);                           \
		assert_string_equal(th_before_, th_after_);                         \
		free(th_before_);                                                   \
		free(th_after_);                                                    \
	} while (0)

/* vgpu_db_errmsg(@db) is not empty and contains @substr when not NULL. */
void th_assert_errmsg(const vgpu_db *db, const char *substr);

/*
 * Run @fn(@arg) in a forked child that has dropped root to nobody (65534)
 * when it ran as root, so that permission checks apply; returns what @fn
 * returned (0..255), or -1 when the child could not run or crashed. @fn must
 * not use cmocka.
 */
int th_run_unprivileged(int (*fn)(void *arg), void *arg);

/* A fixture: a fresh registry in a temporary directory. */
struct th_db {
	char *dir;    /* the temporary directory, removed by the teardown */
	char *path;   /* dir/vgpu_config.db */
	vgpu_db *db;  /* open on path */
};

/* cmocka setup/teardown making *state a th_mkdtemp() directory. */
int th_dir_setup(void **state);
int th_dir_teardown(void **state);

/* cmocka setup/teardown making *state a struct th_db. */
int th_db_setup(void **state);
int th_db_teardown(void **state);

#endif
