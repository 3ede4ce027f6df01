/* SPDX-License-Identifier: MIT */
/*
 * pools.c - pools: reading them, creating and deleting pools C to Z, and
 * changing any pool's name, description and scheduler settings (weight,
 * cap, GPUs). Pools A and B are created with the schema and never deleted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define POOL_COLUMNS                                                          \
	"SELECT p.pool_id, p.pool_name, p.description, p.enabled,"            \
	" (SELECT COUNT(*) FROM vms v WHERE v.pool_id = p.pool_id),"          \
	" p.created_at, p.updated_at, p.weight, p.cap_percent, p.gpus"        \
	" FROM pools p"

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
	info->weight = sqlite3_column_int(stmt, 7);
	info->cap_percent = sqlite3_column_int(stmt, 8);
	info->gpus = (unsigned)sqlite3_column_int64(stmt, 9);
}

int db_check_pool_id(vgpu_db *db, char pool_id, char *ret_id)
{
	char text[2] = { pool_id, '\0' };

	if (vgpu_pool_id_parse(text, ret_id) != VGPU_OK)
		return db_fail(db, VGPU_INVALID_PARAM, "invalid pool: must be one letter A to Z");
	return VGPU_OK;
}

static int check_settings(vgpu_db *db, const struct vgpu_pool_settings *st)
{
	if (st->pool_name && (!*st->pool_name || !vgpu_name_valid(st->pool_name)))
		return db_fail(db, VGPU_INVALID_PARAM,
			       "invalid pool name: 1 to %d bytes of UTF-8, no control characters",
			       VGPU_NAME_MAX);
	if (st->description && !vgpu_text_valid(st->description, VGPU_DESCRIPTION_MAX))
		return db_fail(db, VGPU_INVALID_PARAM,
			       "invalid description: at most %d bytes of UTF-8, no control characters",
			       VGPU_DESCRIPTION_MAX);
	if (st->weight != 0 && (st->weight < VGPU_WEIGHT_MIN || st->weight > VGPU_WEIGHT_MAX))
		return db_fail(db, VGPU_INVALID_PARAM, "invalid weight %d: must be %d to %d",
			       st->weight, VGPU_WEIGHT_MIN, VGPU_WEIGHT_MAX);
	if (st->cap_percent != 0 &&
	    (st->cap_percent < VGPU_CAP_PERCENT_MIN || st->cap_percent > VGPU_CAP_PERCENT_MAX))
		return db_fail(db, VGPU_INVALID_PARAM, "invalid cap %d%%: must be %d to %d",
			       st->cap_percent, VGPU_CAP_PERCENT_MIN, VGPU_CAP_PERCENT_MAX);
	if (st->gpus < -1 || st->gpus > 0xffffffffLL)
		return db_fail(db, VGPU_INVALID_PARAM, "invalid GPU mask %lld", st->gpus);
	return VGPU_OK;
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
	rc = db_check_pool_id(db, pool_id, &id[0]);
	if (rc != VGPU_OK)
		return rc;
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

int vgpu_create_pool(vgpu_db *db, char pool_id, const struct vgpu_pool_settings *settings)
{
	struct vgpu_pool_settings st = VGPU_POOL_SETTINGS_INIT;
	char id[2] = { 0, '\0' }, name[16];
	sqlite3_stmt *stmt;
	int rc;

	if (!db)
		return VGPU_INVALID_PARAM;
	if (settings)
		st = *settings;
	if ((rc = db_check_pool_id(db, pool_id, &id[0])) != VGPU_OK ||
	    (rc = check_settings(db, &st)) != VGPU_OK)
		return rc;
	snprintf(name, sizeof(name), "Pool %c", id[0]);
	rc = db_prepare(db,
			"INSERT INTO pools (pool_id, pool_name, description, weight, cap_percent, gpus)"
			" VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (pool_id) DO NOTHING",
			&stmt);
	if (rc != VGPU_OK)
		return rc;
	sqlite3_bind_text(stmt, 1, id, 1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, st.pool_name ? st.pool_name : name, -1, SQLITE_STATIC);
	if (st.description && *st.description)
		sqlite3_bind_text(stmt, 3, st.description, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 4, st.weight ? st.weight : VGPU_WEIGHT_DEFAULT);
	sqlite3_bind_int(stmt, 5, st.cap_percent ? st.cap_percent : VGPU_CAP_PERCENT_MAX);
	sqlite3_bind_int64(stmt, 6, st.gpus >= 0 ? st.gpus : 0);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		rc = db_fail_sql(db, "creating the pool");
	else if (sqlite3_changes(db->sql) == 0)
		rc = db_fail(db, VGPU_EXISTS, "pool %s exists", id);
	sqlite3_finalize(stmt);
	return rc;
}

int vgpu_update_pool(vgpu_db *db, char pool_id, const struct vgpu_pool_settings *settings)
{
	char id[2] = { 0, '\0' };
	sqlite3_stmt *stmt;
	int rc;

	if (!db)
		return VGPU_INVALID_PARAM;
	if (!settings)
		return db_fail(db, VGPU_INVALID_PARAM, "missing argument");
	if ((rc = db_check_pool_id(db, pool_id, &id[0])) != VGPU_OK ||
	    (rc = check_settings(db, settings)) != VGPU_OK)
		return rc;
	rc = db_prepare(db,
			"UPDATE pools SET"
			" pool_name = COALESCE(?2, pool_name),"
			" description = CASE WHEN ?3 THEN ?4 ELSE description END,"
			" weight = COALESCE(?5, weight),"
			" cap_percent = COALESCE(?6, cap_percent),"
			" gpus = COALESCE(?7, gpus),"
			" updated_at = CURRENT_TIMESTAMP"
			" WHERE pool_id = ?1",
			&stmt);
	if (rc != VGPU_OK)
		return rc;
	sqlite3_bind_text(stmt, 1, id, 1, SQLITE_STATIC);
	if (settings->pool_name)
		sqlite3_bind_text(stmt, 2, settings->pool_name, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 3, settings->description != NULL);
	if (settings->description && *settings->description)
		sqlite3_bind_text(stmt, 4, settings->description, -1, SQLITE_STATIC);
	if (settings->weight)
		sqlite3_bind_int(stmt, 5, settings->weight);
	if (settings->cap_percent)
		sqlite3_bind_int(stmt, 6, settings->cap_percent);
	if (settings->gpus >= 0)
		sqlite3_bind_int64(stmt, 7, settings->gpus);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		rc = db_fail_sql(db, "changing the pool");
	else if (sqlite3_changes(db->sql) == 0)
		rc = db_fail(db, VGPU_NOT_FOUND, "pool %s does not exist", id);
	sqlite3_finalize(stmt);
	return rc;
}

int vgpu_delete_pool(vgpu_db *db, char pool_id)
{
	char id[2] = { 0, '\0' };
	sqlite3_stmt *stmt = NULL;
	int rc, vms = 0;

	if (!db)
		return VGPU_INVALID_PARAM;
	if ((rc = db_check_pool_id(db, pool_id, &id[0])) != VGPU_OK)
		return rc;
	if (id[0] == VGPU_DEFAULT_POOL || id[0] == VGPU_SECOND_POOL)
		return db_fail(db, VGPU_INVALID_PARAM, "pools %c and %c are the defaults: they stay",
			       VGPU_DEFAULT_POOL, VGPU_SECOND_POOL);
	rc = db_begin(db);
	if (rc != VGPU_OK)
		return rc;
	rc = db_prepare(db, "SELECT COUNT(*) FROM vms WHERE pool_id = ?1", &stmt);
	if (rc != VGPU_OK)
		goto out;
	sqlite3_bind_text(stmt, 1, id, 1, SQLITE_STATIC);
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		rc = db_fail_sql(db, "counting the pool's VMs");
		goto out;
	}
	vms = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	stmt = NULL;
	if (vms > 0) {
		rc = db_fail(db, VGPU_BUSY, "pool %s has %d VM%s: move or remove %s first", id, vms,
			     vms == 1 ? "" : "s", vms == 1 ? "it" : "them");
		goto out;
	}
	rc = db_prepare(db, "DELETE FROM pools WHERE pool_id = ?1", &stmt);
	if (rc != VGPU_OK)
		goto out;
	sqlite3_bind_text(stmt, 1, id, 1, SQLITE_STATIC);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		rc = db_fail_sql(db, "deleting the pool");
		goto out;
	}
	if (sqlite3_changes(db->sql) == 0) {
		rc = db_fail(db, VGPU_NOT_FOUND, "pool %s does not exist", id);
		goto out;
	}
	sqlite3_finalize(stmt);
	return db_commit(db);
out:
	sqlite3_finalize(stmt);
	db_rollback(db);
	return rc;
}
