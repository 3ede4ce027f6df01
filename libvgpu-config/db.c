/* SPDX-License-Identifier: MIT */
/*
 * db.c - opening and closing the registry, schema migrations, and the small
 * helpers every query file uses.
 *
 * Concurrency: the CLI, the mediator and the start-time hook open the same
 * file at once. WAL lets readers go on during a write; the busy timeout makes
 * writers queue instead of failing; every write is a BEGIN IMMEDIATE
 * transaction, so a transaction never has to upgrade a read lock (the case
 * where SQLite gives up with "database is locked" without waiting).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "schema.h"

int db_fail(vgpu_db *db, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(db->errmsg, sizeof(db->errmsg), fmt, ap);
	va_end(ap);
	return code;
}

int db_fail_sql(vgpu_db *db, const char *what)
{
	int rc = sqlite3_errcode(db->sql);

	db_fail(db, 0, "%s: %s", what, sqlite3_errmsg(db->sql));
	return (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) ? VGPU_BUSY : VGPU_DB_ERROR;
}

int db_prepare(vgpu_db *db, const char *sql, sqlite3_stmt **ret_stmt)
{
	if (sqlite3_prepare_v2(db->sql, sql, -1, ret_stmt, NULL) != SQLITE_OK)
		return db_fail_sql(db, "preparing a query");
	return VGPU_OK;
}

static int db_exec(vgpu_db *db, const char *sql, const char *what)
{
	if (sqlite3_exec(db->sql, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail_sql(db, what);
	return VGPU_OK;
}

int db_begin(vgpu_db *db)
{
	return db_exec(db, "BEGIN IMMEDIATE", "starting a transaction");
}

int db_commit(vgpu_db *db)
{
	int rc = db_exec(db, "COMMIT", "committing");

	if (rc != VGPU_OK)
		db_rollback(db);
	return rc;
}

void db_rollback(vgpu_db *db)
{
	if (!sqlite3_get_autocommit(db->sql))
		sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
}

void db_column_text(sqlite3_stmt *stmt, int col, char *dst, size_t size)
{
	const unsigned char *text = sqlite3_column_text(stmt, col);

	snprintf(dst, size, "%s", text ? (const char *)text : "");
}

int db_collect(vgpu_db *db, sqlite3_stmt *stmt, size_t elem_size,
	       void (*read)(sqlite3_stmt *stmt, void *row), const char *what, void **ret_rows,
	       size_t *ret_count)
{
	char *rows = NULL;
	size_t count = 0, cap = 0;
	int rc = VGPU_OK, step;

	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (count == cap) {
			size_t new_cap = cap ? cap * 2 : 16;
			char *grown = realloc(rows, new_cap * elem_size);

			if (!grown) {
				rc = db_fail(db, VGPU_NO_MEMORY, "out of memory %s", what);
				break;
			}
			rows = grown;
			cap = new_cap;
		}
		read(stmt, rows + count++ * elem_size);
	}
	if (rc == VGPU_OK && step != SQLITE_DONE)
		rc = db_fail_sql(db, what);
	sqlite3_finalize(stmt);
	if (rc != VGPU_OK) {
		free(rows);
		return rc;
	}
	*ret_rows = rows;
	*ret_count = count;
	return VGPU_OK;
}

const char *vgpu_db_errmsg(const vgpu_db *db)
{
	return db ? db->errmsg : "no database handle";
}

const char *vgpu_db_path(const char *explicit_path)
{
	const char *env;

	if (explicit_path)
		return explicit_path;
	env = getenv(VGPU_DB_ENV);
	if (env && *env)
		return env;
	return VGPU_DEFAULT_DB_PATH;
}

/* mkdir -p of the directory part of @path. */
static int make_parent_dirs(const char *path, char *err, size_t err_size)
{
	char dir[4096];
	size_t len = strlen(path);

	if (len >= sizeof(dir)) {
		snprintf(err, err_size, "database path is longer than %zu bytes", sizeof(dir) - 1);
		return VGPU_INVALID_PARAM;
	}
	memcpy(dir, path, len + 1);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return VGPU_OK;
	*slash = '\0';
	for (char *p = dir + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
			snprintf(err, err_size, "cannot create directory %s: %s", dir, strerror(errno));
			return errno == EACCES || errno == EPERM || errno == EROFS ? VGPU_DENIED
										  : VGPU_IO_ERROR;
		}
		*p = saved;
		if (saved == '\0')
			break;
	}
	return VGPU_OK;
}

int vgpu_db_schema_version(vgpu_db *db, int *ret_version)
{
	sqlite3_stmt *stmt;
	int rc = db_prepare(db, "PRAGMA user_version", &stmt);

	if (rc != VGPU_OK)
		return rc;
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		rc = db_fail_sql(db, "reading the schema version");
	} else {
		*ret_version = sqlite3_column_int(stmt, 0);
	}
	sqlite3_finalize(stmt);
	return rc;
}

int vgpu_db_init_schema(vgpu_db *db)
{
	int version, rc;

	if (!db)
		return VGPU_INVALID_PARAM;
	/* Fast path, no write lock: already current. */
	rc = vgpu_db_schema_version(db, &version);
	if (rc != VGPU_OK)
		return rc;
	if (version == vgpu_schema_migration_count)
		return VGPU_OK;

	rc = db_begin(db);
	if (rc != VGPU_OK)
		return rc;
	/* Read again under the lock: another process may have migrated. */
	rc = vgpu_db_schema_version(db, &version);
	if (rc != VGPU_OK)
		goto fail;
	if (version > vgpu_schema_migration_count || version < 0) {
		rc = db_fail(db, VGPU_UNSUPPORTED,
			     "database schema version %d is newer than this vgpu supports (%d)",
			     version, vgpu_schema_migration_count);
		goto fail;
	}
	for (int v = version; v < vgpu_schema_migration_count; v++) {
		char pragma[64];

		rc = db_exec(db, vgpu_schema_migrations[v], "migrating the schema");
		if (rc != VGPU_OK) {
			db_fail(db, rc, "migrating the schema to version %d: %s", v + 1,
				sqlite3_errmsg(db->sql));
			goto fail;
		}
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v + 1);
		rc = db_exec(db, pragma, "recording the schema version");
		if (rc != VGPU_OK)
			goto fail;
	}
	return db_commit(db);
fail:
	db_rollback(db);
	return rc;
}

/*
 * Switch to WAL. On a new file another process may be opening it at the same
 * moment; the switch needs an exclusive lock, and SQLite then reports
 * SQLITE_BUSY at once instead of calling the busy handler (seen with 8
 * processes opening one new file). Retry for as long as the busy timeout
 * would have waited.
 */
static int db_enable_wal(vgpu_db *db)
{
	for (int waited_ms = 0;; waited_ms += 10) {
		sqlite3_stmt *stmt;
		int rc;

		/* journal_mode returns a row; read it to learn whether WAL took. */
		rc = db_prepare(db, "PRAGMA journal_mode = WAL", &stmt);
		if (rc == VGPU_OK) {
			if (sqlite3_step(stmt) != SQLITE_ROW)
				rc = db_fail_sql(db, "switching to WAL");
			sqlite3_finalize(stmt);
		}
		if (rc != VGPU_BUSY || waited_ms >= VGPU_DB_BUSY_TIMEOUT_MS)
			return rc;
		usleep(10 * 1000);
	}
}

int vgpu_db_init(const char *path, unsigned flags, vgpu_db **ret_db, char *ret_errmsg,
		 size_t errmsg_size)
{
	char scratch[1];
	char *err = ret_errmsg ? ret_errmsg : scratch;
	size_t err_size = ret_errmsg ? errmsg_size : sizeof(scratch);
	int open_flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX;
	vgpu_db *db;
	int rc;

	if (err_size)
		err[0] = '\0';
	if (!path || !*path || !ret_db) {
		snprintf(err, err_size, "no database path given");
		return VGPU_INVALID_PARAM;
	}
	if (flags & VGPU_DB_NO_CREATE) {
		if (access(path, F_OK) != 0) {
			snprintf(err, err_size, "database %s does not exist", path);
			return VGPU_NOT_FOUND;
		}
	} else {
		rc = make_parent_dirs(path, err, err_size);
		if (rc != VGPU_OK)
			return rc;
		open_flags |= SQLITE_OPEN_CREATE;
	}

	db = calloc(1, sizeof(*db));
	if (!db) {
		snprintf(err, err_size, "out of memory");
		return VGPU_NO_MEMORY;
	}
	if (sqlite3_open_v2(path, &db->sql, open_flags, NULL) != SQLITE_OK) {
		int code = db->sql ? sqlite3_errcode(db->sql) : SQLITE_NOMEM;

		snprintf(err, err_size, "cannot open database %s: %s", path,
			 db->sql ? sqlite3_errmsg(db->sql) : "out of memory");
		vgpu_db_close(db);
		return code == SQLITE_CANTOPEN && access(path, F_OK) == 0 ? VGPU_DENIED
									  : VGPU_DB_ERROR;
	}
	sqlite3_extended_result_codes(db->sql, 0);
	sqlite3_busy_timeout(db->sql, VGPU_DB_BUSY_TIMEOUT_MS);

	rc = db_exec(db, "PRAGMA foreign_keys = ON", "enabling foreign keys");
	if (rc == VGPU_OK) {
		int version;

		/* Refuse a newer schema before switching to WAL, which writes to the
		 * file: such a database must be left untouched. */
		rc = vgpu_db_schema_version(db, &version);
		if (rc == VGPU_OK && (version > vgpu_schema_migration_count || version < 0))
			rc = db_fail(db, VGPU_UNSUPPORTED,
				     "database schema version %d is newer than this vgpu supports (%d)",
				     version, vgpu_schema_migration_count);
	}
	if (rc == VGPU_OK)
		rc = db_enable_wal(db);
	if (rc == VGPU_OK)
		rc = vgpu_db_init_schema(db);
	if (rc != VGPU_OK) {
		snprintf(err, err_size, "database %s: %s", path, db->errmsg);
		vgpu_db_close(db);
		return rc;
	}
	*ret_db = db;
	return VGPU_OK;
}

void vgpu_db_close(vgpu_db *db)
{
	if (!db)
		return;
	sqlite3_close_v2(db->sql);
	free(db);
}
