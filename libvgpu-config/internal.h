/* SPDX-License-Identifier: MIT */
/*
 * internal.h - what the files of libvgpu-config share and nobody else sees.
 */
#ifndef VGPU_CONFIG_INTERNAL_H
#define VGPU_CONFIG_INTERNAL_H

#include <sqlite3.h>

#include "vgpu_config.h"

/* How long a statement waits for another process's write lock. */
#define VGPU_DB_BUSY_TIMEOUT_MS 15000

struct vgpu_db {
	sqlite3 *sql;       /* the connection; one per handle */
	char errmsg[512];   /* explanation of the last failure, "" when none */
};

/* Record a printf-style explanation in db->errmsg and return @code. */
int db_fail(vgpu_db *db, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Record sqlite's own message for a failed call and return VGPU_DB_ERROR
 * (or VGPU_BUSY when the database stayed locked past the busy timeout). */
int db_fail_sql(vgpu_db *db, const char *what);

/* Prepare @sql; VGPU_OK or a failure recorded in @db. */
int db_prepare(vgpu_db *db, const char *sql, sqlite3_stmt **ret_stmt);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. db_rollback never fails visibly. */
int db_begin(vgpu_db *db);
int db_commit(vgpu_db *db);
void db_rollback(vgpu_db *db);

/*
 * Step @stmt to its end, reading each row with @read into a malloc()ed array
 * of @elem_size elements. Finalizes @stmt. On success *ret_rows (NULL when
 * empty) and *ret_count are set; @what names the query in messages.
 */
int db_collect(vgpu_db *db, sqlite3_stmt *stmt, size_t elem_size,
	       void (*read)(sqlite3_stmt *stmt, void *row), const char *what, void **ret_rows,
	       size_t *ret_count);

/* @pool_id ('A' .. 'Z', either case) into *@ret_id in upper case, or
 * VGPU_INVALID_PARAM recorded in @db (pools.c). */
int db_check_pool_id(vgpu_db *db, char pool_id, char *ret_id);

/* Bounded copy of a text column into @dst of @size bytes ("" for NULL). */
void db_column_text(sqlite3_stmt *stmt, int col, char *dst, size_t size);

#endif
