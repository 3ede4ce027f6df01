/* SPDX-License-Identifier: MIT */
/*
 * helpers.c - temporary directories, files and raw SQLite access for the
 * unit tests (see helpers.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

char *th_mkdtemp(void)
{
	char *dir = strdup("/tmp/vgpu-unit-XXXXXX");

	assert_non_null(dir);
	assert_non_null(mkdtemp(dir));
	return dir;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static int make_writable(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_D || type == FTW_DNR)
		chmod(path, (st->st_mode & 07777) | 0700);
	return 0;
}

void th_rmtree(const char *path)
{
	if (!path)
		return;
	/* A test may have made a directory read-only to provoke VGPU_DENIED. */
	nftw(path, make_writable, 16, FTW_PHYS);
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *th_join(const char *dir, const char *name)
{
	char *path;

	assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
	return path;
}

void th_write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	const char *p = data;

	assert_true(fd >= 0);
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
	assert_int_equal(close(fd), 0);
}

char *th_read_file(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rbe");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	size_t n;

	assert_non_null(f);
	do {
		if (cap - len < 4096) {
			cap = cap * 2 + 4096;
			buf = realloc(buf, cap + 1);
			assert_non_null(buf);
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	buf[len] = '\0';
	if (ret_len)
		*ret_len = len;
	return buf;
}

int th_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

sqlite3 *th_sql_open(const char *path)
{
	sqlite3 *sql = NULL;
	int rc = sqlite3_open_v2(path, &sql, SQLITE_OPEN_READWRITE, NULL);

	if (rc != SQLITE_OK)
		print_error("sqlite3_open_v2(%s): %s\n", path, sql ? sqlite3_errmsg(sql) : "?");
	assert_int_equal(rc, SQLITE_OK);
	sqlite3_busy_timeout(sql, 5000);
	return sql;
}

static char *vformat(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static char *vformat(const char *fmt, va_list ap)
{
	char *s;

	assert_true(vasprintf(&s, fmt, ap) >= 0);
	return s;
}

void th_sql_exec(sqlite3 *sql, const char *fmt, ...)
{
	va_list ap;
	char *text, *err = NULL;
	int rc;

	va_start(ap, fmt);
	text = vformat(fmt, ap);
	va_end(ap);
	rc = sqlite3_exec(sql, text, NULL, NULL, &err);
	if (rc != SQLITE_OK)
		print_error("SQL failed: %s\n  %s\n", err ? err : "?", text);
	sqlite3_free(err);
	free(text);
	assert_int_equal(rc, SQLITE_OK);
}

static sqlite3_stmt *first_row(sqlite3 *sql, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static sqlite3_stmt *first_row(sqlite3 *sql, const char *fmt, va_list ap)
{
	sqlite3_stmt *stmt = NULL;
	char *text = vformat(fmt, ap);
	int rc = sqlite3_prepare_v2(sql, text, -1, &stmt, NULL);

	if (rc != SQLITE_OK)
		print_error("SQL failed: %s\n  %s\n", sqlite3_errmsg(sql), text);
	free(text);
	assert_int_equal(rc, SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	return stmt;
}

long long th_sql_int(sqlite3 *sql, const char *fmt, ...)
{
	va_list ap;
	sqlite3_stmt *stmt;
	long long v;

	va_start(ap, fmt);
	stmt = first_row(sql, fmt, ap);
	va_end(ap);
	v = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return v;
}

char *th_sql_text(sqlite3 *sql, const char *fmt, ...)
{
	va_list ap;
	sqlite3_stmt *stmt;
	const unsigned char *t;
	char *s;

	va_start(ap, fmt);
	stmt = first_row(sql, fmt, ap);
	va_end(ap);
	t = sqlite3_column_text(stmt, 0);
	s = strdup(t ? (const char *)t : "");
	assert_non_null(s);
	sqlite3_finalize(stmt);
	return s;
}

static void dump_query(sqlite3 *sql, FILE *out, const char *query)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	assert_int_equal(sqlite3_prepare_v2(sql, query, -1, &stmt, NULL), SQLITE_OK);
	fprintf(out, "-- %s\n", query);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		for (int i = 0; i < sqlite3_column_count(stmt); i++) {
			const unsigned char *t = sqlite3_column_text(stmt, i);

			fprintf(out, "%s%s", i ? "|" : "", t ? (const char *)t : "<null>");
		}
		fputc('\n', out);
	}
	assert_int_equal(rc, SQLITE_DONE);
	sqlite3_finalize(stmt);
}

char *th_snapshot(const char *db_path)
{
	sqlite3 *sql = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	assert_non_null(out);
	assert_int_equal(sqlite3_open_v2(db_path, &sql, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_busy_timeout(sql, 5000);
	dump_query(sql, out, "PRAGMA user_version");
	dump_query(sql, out, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name");
	dump_query(sql, out, "SELECT * FROM pools ORDER BY rowid");
	dump_query(sql, out, "SELECT * FROM vms ORDER BY rowid");
	sqlite3_close(sql);
	assert_int_equal(fclose(out), 0);
	return text;
}

void th_uuid(char out[37], unsigned n)
{
	snprintf(out, 37, "%08x-0000-4000-8000-%012x", n, n);
}

int th_dir_setup(void **state)
{
	*state = th_mkdtemp();
	return 0;
}

int th_dir_teardown(void **state)
{
	th_rmtree(*state);
	free(*state);
	*state = NULL;
	return 0;
}

int th_db_setup(void **state)
{
	struct th_db *t = calloc(1, sizeof(*t));
	char err[256];

	assert_non_null(t);
	t->dir = th_mkdtemp();
	t->path = th_join(t->dir, "vgpu_config.db");
	if (vgpu_db_init(t->path, 0, &t->db, err, sizeof(err)) != VGPU_OK)
		print_error("vgpu_db_init: %s\n", err);
	assert_non_null(t->db);
	*state = t;
	return 0;
}

int th_db_teardown(void **state)
{
	struct th_db *t = *state;

	if (!t)
		return 0;
	vgpu_db_close(t->db);
	th_rmtree(t->dir);
	free(t->path);
	free(t->dir);
	free(t);
	*state = NULL;
	return 0;
}

void th_assert_errmsg(const vgpu_db *db, const char *substr)
{
	const char *msg = vgpu_db_errmsg(db);

	assert_non_null(msg);
	assert_true(msg[0] != '\0');
	if (substr && !strstr(msg, substr)) {
		print_error("errmsg \"%s\" lacks \"%s\"\n", msg, substr);
		fail();
	}
}

int th_run_unprivileged(int (*fn)(void *arg), void *arg)
{
	int wstatus;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setgid(65534) != 0 ||
				       setuid(65534) != 0))
			_exit(255);
		_exit(fn(arg) & 0xff);
	}
	while (waitpid(pid, &wstatus, 0) < 0)
		assert_int_equal(errno, EINTR);
	if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) == 255)
		return -1;
	return WEXITSTATUS(wstatus);
}
