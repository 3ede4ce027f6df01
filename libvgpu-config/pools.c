/* SPDX-License-Identifier: MIT */
/*
 * pools.c - reading pools. Pools A and B are created with the schema; the
 * registry has no command that adds or removes pools.
 */
#include <stdlib.h>

#include "internal.h"

#define POOL_COLUMNS                                                          \
	"SELECT p.pool_id, p.pool_name, p.description, p.enabled,"            \
	" (SELECT COUNT(*) FROM vms v WHERE v.pool_id = p.pool_id),"          \
	" p.created_at, p.updated_at FROM pools p"

static void read_pool(sqlite3_stmt *stmt, void *row)
{
	struct vgpu_pool_info *info = row;
	const unsigned char *id = sqlite3_column_text(stmt, 0);

	info->pool_id = id ? (char)id[0] : '?';
	db_column_text(stmt, 1, info->pool_name, sizeof(info->pool_name));
	db_column_text(stmt, 2, info->description, sizeof(info->description));
	info->enabled = sqlite3_column_int(stmt, 3) != 0;
	info->vm_count = sqlite3_column_int(stmt, 4);
	db_column_text(stmt, 5, info->created_at, sizeof(info->created_at));
	db_column_text(stmt, 6, info->updated_at, sizeof(info->updated_at));
}

int vgpu_get_pool_info(vgpu_db *db, char pool_id, struct vgpu_pool_info *ret_info)
{
	char id[2] = { pool_id, '\0' };
	sqlite3_stmt *stmt;
	int rc;

	if (!db)
		return VGPU_INVALID_PARAM;
	if (!ret_info)
		return db_fail(db, VGPU_INVALID_PARAM, "missing argument");
	rc = vgpu_pool_id_parse(id, &id[0]);
	if (rc != VGPU_OK)
		return db_fail(db, rc, "pool must be A or B");
	rc = db_prepare(db, POOL_COLUMNS " WHERE p.pool_id = ?1", &stmt);
	if (rc != VGPU_OK)
		return rc;
	sqlite3_bind_text(stmt, 1, id, 1, SQLITE_STATIC);
	switch (sqlite3_step(stmt)) {
	case SQLITE_ROW:
		read_pool(stmt, ret_info);
		break;
	case SQLITE_DONE:
		rc = db_fail(db, VGPU_NOT_FOUND, "pool %s does not exist", id);
		break;
	default:
		rc = db_fail_sql(db, "reading a pool");
	}
	sqlite3_finalize(stmt);
	return rc;
}

int vgpu_list_pools(vgpu_db *db, struct vgpu_pool_info **ret_pools, size_t *ret_count)
{
	sqlite3_stmt *stmt;
	int rc;

	if (!db)
		return VGPU_INVALID_PARAM;
	if (!ret_pools || !ret_count)
		return db_fail(db, VGPU_INVALID_PARAM, "missing argument");
	rc = db_prepare(db, POOL_COLUMNS " ORDER BY p.pool_id", &stmt);
	if (rc != VGPU_OK)
		return rc;
	void *rows;
	rc = db_collect(db, stmt, sizeof(**ret_pools), read_pool, "listing pools", &rows,
			ret_count);
	if (rc == VGPU_OK)
		*ret_pools = rows;
	return rc;
}
