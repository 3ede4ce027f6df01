/* SPDX-License-Identifier: MIT */
/*
 * vms.c - registering, changing, listing and removing VMs.
 *
 * Every write is one BEGIN IMMEDIATE transaction that first checks what the
 * write depends on (UUID registered, vm_id free), so concurrent writers from
 * several processes see consistent answers and the caller gets a precise
 * error instead of a bare constraint failure.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define VM_COLUMNS                                                             \
	"SELECT vm_id, vm_uuid, vm_name, pool_id, priority, created_at, updated_at," \
	" weight, rate_limit_ms, mem_quota_mib FROM vms"

static void read_vm(sqlite3_stmt *stmt, void *row)
{
	struct vgpu_vm_config *vm = row;
	const unsigned char *pool = sqlite3_column_text(stmt, 3);

	vm->vm_id = sqlite3_column_int(stmt, 0);
	db_column_text(stmt, 1, vm->vm_uuid, sizeof(vm->vm_uuid));
	db_column_text(stmt, 2, vm->vm_name, sizeof(vm->vm_name));
	vm->pool_id = pool ? (char)pool[0] : '?';
	vm->priority = sqlite3_column_int(stmt, 4);
	db_column_text(stmt, 5, vm->created_at, sizeof(vm->created_at));
	db_column_text(stmt, 6, vm->updated_at, sizeof(vm->updated_at));
	vm->weight = sqlite3_column_int(stmt, 7);
	vm->rate_limit_ms = sqlite3_column_int(stmt, 8);
	vm->mem_quota_mib = sqlite3_column_int64(stmt, 9);
}

/* Normalize @uuid into @out or record why it is invalid. */
static int check_uuid(vgpu_db *db, const char *uuid, char out[VGPU_UUID_STRLEN + 1])
{
	if (vgpu_uuid_normalize(uuid, out) != VGPU_OK)
		return db_fail(db, VGPU_INVALID_PARAM,
			       "invalid VM UUID: expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx");
	return VGPU_OK;
}

/* Inside the write's transaction: pool @pool_id exists. */
static int check_pool_exists(vgpu_db *db, char pool_id)
{
	sqlite3_stmt *stmt;
	int rc = db_prepare(db, "SELECT 1 FROM pools WHERE pool_id = ?1", &stmt);

	if (rc != VGPU_OK)
		return rc;
	sqlite3_bind_text(stmt, 1, &pool_id, 1, SQLITE_STATIC);
	switch (sqlite3_step(stmt)) {
	case SQLITE_ROW:
		break;
	case SQLITE_DONE:
		rc = db_fail(db, VGPU_NOT_FOUND, "pool %c does not exist (vgpu-admin create-pool)",
			     pool_id);
		break;
	default:
		rc = db_fail_sql(db, "reading the pool");
	}
	sqlite3_finalize(stmt);
	return rc;
}

/* The scheduler's settings of @u that are set. */
static int check_sched(vgpu_db *db, const struct vgpu_vm_update *u)
{
	if (u->weight != 0 && (u->weight < VGPU_WEIGHT_MIN || u->weight > VGPU_WEIGHT_MAX))
		return db_fail(db, VGPU_INVALID_PARAM, "invalid weight %d: must be %d to %d",
			       u->weight, VGPU_WEIGHT_MIN, VGPU_WEIGHT_MAX);
	if (u->rate_limit_ms != -1 &&
	    (u->rate_limit_ms < 0 || u->rate_limit_ms > VGPU_RATE_LIMIT_MS_MAX))
		return db_fail(db, VGPU_INVALID_PARAM,
			       "invalid rate limit %d: must be 0 (none) to %d GPU-ms per second",
			       u->rate_limit_ms, VGPU_RATE_LIMIT_MS_MAX);
	if (u->mem_quota_mib != -1 &&
	    (u->mem_quota_mib < 0 || u->mem_quota_mib > VGPU_MEM_QUOTA_MIB_MAX))
		return db_fail(db, VGPU_INVALID_PARAM,
			       "invalid memory quota %lld: must be 0 (none) to %lld MiB",
			       u->mem_quota_mib, VGPU_MEM_QUOTA_MIB_MAX);
	return VGPU_OK;
}

static int check_priority(vgpu_db *db, int priority)
{
	if (!vgpu_priority_valid(priority))
		return db_fail(db, VGPU_INVALID_PARAM,
			       "invalid priority %d: must be 0 (low), 1 (medium) or 2 (high)",
			       priority);
	return VGPU_OK;
}

static int check_vm_id(vgpu_db *db, int vm_id)
{
	if (!vgpu_vm_id_valid(vm_id))
		return db_fail(db, VGPU_INVALID_PARAM, "invalid vm_id %d: must be 1..%d", vm_id,
			       VGPU_VM_ID_MAX);
	return VGPU_OK;
}

static int check_name(vgpu_db *db, const char *name)
{
	if (name && !vgpu_name_valid(name))
		return db_fail(db, VGPU_INVALID_PARAM,
			       "invalid VM name: at most %d bytes of printable UTF-8, no control characters",
			       VGPU_NAME_MAX);
	return VGPU_OK;
}

/* Run a query that selects VM rows with text parameter ?1 = @key and return
 * the only row. VGPU_AMBIGUOUS when there is more than one. */
static int get_one_vm(vgpu_db *db, const char *sql, const char *key, const char *what,
		      struct vgpu_vm_config *ret_config)
{
	struct vgpu_vm_config first;
	sqlite3_stmt *stmt;
	int rc = db_prepare(db, sql, &stmt);

	if (rc != VGPU_OK)
		return rc;
	sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
	switch (sqlite3_step(stmt)) {
	case SQLITE_ROW:
		read_vm(stmt, &first);
		switch (sqlite3_step(stmt)) {
		case SQLITE_DONE:
			*ret_config = first;
			break;
		case SQLITE_ROW:
			rc = db_fail(db, VGPU_AMBIGUOUS, "several VMs are registered as %s %s",
				     what, key);
			break;
		default:
			rc = db_fail_sql(db, "reading a VM");
		}
		break;
	case SQLITE_DONE:
		rc = db_fail(db, VGPU_NOT_FOUND, "no VM is registered with %s %s", what, key);
		break;
	default:
		rc = db_fail_sql(db, "reading a VM");
	}
	sqlite3_finalize(stmt);
	return rc;
}

int vgpu_get_vm_config(vgpu_db *db, const char *vm_uuid, struct vgpu_vm_config *ret_config)
{
	char uuid[VGPU_UUID_STRLEN + 1];
	int rc;

	if (!db)
		return VGPU_INVALID_PARAM;
	if (!ret_config)
		return db_fail(db, VGPU_INVALID_PARAM, "missing argument");
	rc = check_uuid(db, vm_uuid, uuid);
	if (rc != VGPU_OK)
		return rc;
	return get_one_vm(db, VM_COLUMNS " WHERE vm_uuid = ?1", uuid, "UUID", ret_config);
}

int vgpu_get_vm_config_by_name(vgpu_db *db, const char *vm_name,
			       struct vgpu_vm_config *ret_config)
{
	int rc;

	if (!db)
		return VGPU_INVALID_PARAM;
	if (!ret_config)
		return db_fail(db, VGPU_INVALID_PARAM, "missing argument");
	rc = check_name(db, vm_name);
	if (rc != VGPU_OK)
		return rc;
	if (!vm_name || !*vm_name)
		return db_fail(db, VGPU_INVALID_PARAM, "empty VM name");
	return get_one_vm(db, VM_COLUMNS " WHERE vm_name = ?1 LIMIT 2", vm_name, "name",
			  ret_config);
}

/* Inside a transaction: VGPU_EXISTS (with a message) when a VM other than
 * @uuid holds @vm_id. */
static int check_vm_id_free(vgpu_db *db, int vm_id, const char *uuid)
{
	sqlite3_stmt *stmt;
	int rc = db_prepare(db, "SELECT vm_uuid FROM vms WHERE vm_id = ?1 AND vm_uuid != ?2",
			    &stmt);

	if (rc != VGPU_OK)
		return rc;
	sqlite3_bind_int(stmt, 1, vm_id);
	sqlite3_bind_text(stmt, 2, uuid ? uuid : "", -1, SQLITE_STATIC);
	switch (sqlite3_step(stmt)) {
	case SQLITE_DONE:
		break;
	case SQLITE_ROW:
		rc = db_fail(db, VGPU_EXISTS, "vm_id %d is already used by VM %s", vm_id,
			     (const char *)sqlite3_column_text(stmt, 0));
		break;
	default:
		rc = db_fail_sql(db, "checking the vm_id");
	}
	sqlite3_finalize(stmt);
	return rc;
}

static int next_vm_id(vgpu_db *db, int *ret_vm_id)
{
	/* 1 when free, else the smallest id + 1 whose successor is free. */
	static const char sql[] =
		"SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM vms WHERE vm_id = 1) THEN 1"
		" ELSE (SELECT MIN(v.vm_id) + 1 FROM vms v WHERE v.vm_id < ?1 AND NOT EXISTS"
		"       (SELECT 1 FROM vms w WHERE w.vm_id = v.vm_id + 1)) END";
	sqlite3_stmt *stmt;
	int rc = db_prepare(db, sql, &stmt);

	if (rc != VGPU_OK)
		return rc;
	sqlite3_bind_int(stmt, 1, VGPU_VM_ID_MAX);
	if (sqlite3_step(stmt) != SQLITE_ROW)
		rc = db_fail_sql(db, "finding a free vm_id");
	else if (sqlite3_column_type(stmt, 0) == SQLITE_NULL)
		rc = db_fail(db, VGPU_LIMIT, "no free vm_id is left");
	else
		*ret_vm_id = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	return rc;
}

int vgpu_get_next_vm_id(vgpu_db *db, int *ret_vm_id)
{
	if (!db)
		return VGPU_INVALID_PARAM;
	if (!ret_vm_id)
		return db_fail(db, VGPU_INVALID_PARAM, "missing argument");
	return next_vm_id(db, ret_vm_id);
}

int vgpu_vm_id_in_use(vgpu_db *db, int vm_id, bool *ret_in_use)
{
	int rc;

	if (!db)
		return VGPU_INVALID_PARAM;
	if (!ret_in_use)
		return db_fail(db, VGPU_INVALID_PARAM, "missing argument");
	rc = check_vm_id(db, vm_id);
	if (rc != VGPU_OK)
		return rc;
	rc = check_vm_id_free(db, vm_id, NULL);
	if (rc == VGPU_OK || rc == VGPU_EXISTS) {
		*ret_in_use = rc == VGPU_EXISTS;
		db->errmsg[0] = '\0';
		return VGPU_OK;
	}
	return rc;
}

/* Inside a transaction: VGPU_EXISTS when @uuid is registered. */
static int check_uuid_free(vgpu_db *db, const char *uuid)
{
	struct vgpu_vm_config existing;
	int rc = get_one_vm(db, VM_COLUMNS " WHERE vm_uuid = ?1", uuid, "UUID", &existing);

	if (rc == VGPU_OK)
		return db_fail(db, VGPU_EXISTS, "VM %s is already registered (vm_id %d)", uuid,
			       existing.vm_id);
	if (rc == VGPU_NOT_FOUND) {
		db->errmsg[0] = '\0';
		return VGPU_OK;
	}
	return rc;
}

int vgpu_register_vm(vgpu_db *db, const char *vm_uuid, const char *vm_name, char pool_id,
		     int priority, int vm_id, struct vgpu_vm_config *ret_config)
{
	char uuid[VGPU_UUID_STRLEN + 1];
	sqlite3_stmt *stmt = NULL;
	int rc;

	if (!db)
		return VGPU_INVALID_PARAM;
	if (pool_id == 0)
		pool_id = VGPU_DEFAULT_POOL;
	if (priority == -1)
		priority = VGPU_DEFAULT_PRIORITY;
	if ((rc = check_uuid(db, vm_uuid, uuid)) != VGPU_OK ||
	    (rc = check_name(db, vm_name)) != VGPU_OK ||
	    (rc = db_check_pool_id(db, pool_id, &pool_id)) != VGPU_OK ||
	    (rc = check_priority(db, priority)) != VGPU_OK ||
	    (vm_id != 0 && (rc = check_vm_id(db, vm_id)) != VGPU_OK))
		return rc;

	rc = db_begin(db);
	if (rc != VGPU_OK)
		return rc;
	if ((rc = check_uuid_free(db, uuid)) != VGPU_OK ||
	    (rc = check_pool_exists(db, pool_id)) != VGPU_OK)
		goto out;
	if (vm_id == 0)
		rc = next_vm_id(db, &vm_id);
	else
		rc = check_vm_id_free(db, vm_id, NULL);
	if (rc != VGPU_OK)
		goto out;
	rc = db_prepare(db,
			"INSERT INTO vms (vm_id, vm_uuid, vm_name, pool_id, priority)"
			" VALUES (?1, ?2, ?3, ?4, ?5)",
			&stmt);
	if (rc != VGPU_OK)
		goto out;
	sqlite3_bind_int(stmt, 1, vm_id);
	sqlite3_bind_text(stmt, 2, uuid, -1, SQLITE_STATIC);
	if (vm_name && *vm_name)
		sqlite3_bind_text(stmt, 3, vm_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, &pool_id, 1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 5, priority);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		rc = db_fail_sql(db, "registering the VM");
		goto out;
	}
	sqlite3_finalize(stmt);
	stmt = NULL;
	/* Read the row back before committing: no other writer can remove it
	 * between the commit and the read. */
	struct vgpu_vm_config stored;
	if (ret_config &&
	    (rc = get_one_vm(db, VM_COLUMNS " WHERE vm_uuid = ?1", uuid, "UUID", &stored)) != VGPU_OK)
		goto out;
	rc = db_commit(db);
	if (rc == VGPU_OK && ret_config)
		*ret_config = stored;
	return rc;
out:
	sqlite3_finalize(stmt);
	db_rollback(db);
	return rc;
}

int vgpu_update_vm(vgpu_db *db, const char *vm_uuid, const struct vgpu_vm_update *update)
{
	char uuid[VGPU_UUID_STRLEN + 1];
	struct vgpu_vm_config current;
	sqlite3_stmt *stmt = NULL;
	char pool_id = 0;
	int rc;

	if (!db)
		return VGPU_INVALID_PARAM;
	if (!update)
		return db_fail(db, VGPU_INVALID_PARAM, "missing argument");
	if ((rc = check_uuid(db, vm_uuid, uuid)) != VGPU_OK ||
	    (rc = check_name(db, update->vm_name)) != VGPU_OK ||
	    (update->pool_id && (rc = db_check_pool_id(db, update->pool_id, &pool_id)) != VGPU_OK) ||
	    (update->priority != -1 && (rc = check_priority(db, update->priority)) != VGPU_OK) ||
	    (update->vm_id != 0 && (rc = check_vm_id(db, update->vm_id)) != VGPU_OK) ||
	    (rc = check_sched(db, update)) != VGPU_OK)
		return rc;

	rc = db_begin(db);
	if (rc != VGPU_OK)
		return rc;
	rc = get_one_vm(db, VM_COLUMNS " WHERE vm_uuid = ?1", uuid, "UUID", &current);
	if (rc != VGPU_OK)
		goto out;
	if (pool_id && (rc = check_pool_exists(db, pool_id)) != VGPU_OK)
		goto out;
	if (update->vm_id != 0 && (rc = check_vm_id_free(db, update->vm_id, uuid)) != VGPU_OK)
		goto out;
	rc = db_prepare(db,
			"UPDATE vms SET"
			" vm_name = CASE WHEN ?2 THEN ?3 ELSE vm_name END,"
			" pool_id = COALESCE(?4, pool_id),"
			" priority = COALESCE(?5, priority),"
			" vm_id = COALESCE(?6, vm_id),"
			" weight = COALESCE(?7, weight),"
			" rate_limit_ms = COALESCE(?8, rate_limit_ms),"
			" mem_quota_mib = COALESCE(?9, mem_quota_mib),"
			" updated_at = CURRENT_TIMESTAMP"
			" WHERE vm_uuid = ?1",
			&stmt);
	if (rc != VGPU_OK)
		goto out;
	sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 2, update->vm_name != NULL);
	if (update->vm_name && *update->vm_name)
		sqlite3_bind_text(stmt, 3, update->vm_name, -1, SQLITE_STATIC);
	if (pool_id)
		sqlite3_bind_text(stmt, 4, &pool_id, 1, SQLITE_STATIC);
	if (update->priority != -1)
		sqlite3_bind_int(stmt, 5, update->priority);
	if (update->vm_id != 0)
		sqlite3_bind_int(stmt, 6, update->vm_id);
	if (update->weight != 0)
		sqlite3_bind_int(stmt, 7, update->weight);
	if (update->rate_limit_ms != -1)
		sqlite3_bind_int(stmt, 8, update->rate_limit_ms);
	if (update->mem_quota_mib != -1)
		sqlite3_bind_int64(stmt, 9, update->mem_quota_mib);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		rc = db_fail_sql(db, "updating the VM");
		goto out;
	}
	sqlite3_finalize(stmt);
	return db_commit(db);
out:
	sqlite3_finalize(stmt);
	db_rollback(db);
	return rc;
}

int vgpu_set_vm_pool(vgpu_db *db, const char *vm_uuid, char pool_id)
{
	struct vgpu_vm_update update = VGPU_VM_UPDATE_INIT;

	if (pool_id == 0)
		return db ? db_fail(db, VGPU_INVALID_PARAM, "invalid pool: must be one letter A to Z")
			  : VGPU_INVALID_PARAM;
	update.pool_id = pool_id;
	return vgpu_update_vm(db, vm_uuid, &update);
}

int vgpu_set_vm_priority(vgpu_db *db, const char *vm_uuid, int priority)
{
	struct vgpu_vm_update update = VGPU_VM_UPDATE_INIT;

	if (priority == -1)
		return db ? check_priority(db, priority) : VGPU_INVALID_PARAM;
	update.priority = priority;
	return vgpu_update_vm(db, vm_uuid, &update);
}

int vgpu_set_vm_id(vgpu_db *db, const char *vm_uuid, int vm_id)
{
	struct vgpu_vm_update update = VGPU_VM_UPDATE_INIT;

	if (vm_id == 0)
		return db ? check_vm_id(db, vm_id) : VGPU_INVALID_PARAM;
	update.vm_id = vm_id;
	return vgpu_update_vm(db, vm_uuid, &update);
}

int vgpu_remove_vm(vgpu_db *db, const char *vm_uuid)
{
	char uuid[VGPU_UUID_STRLEN + 1];
	sqlite3_stmt *stmt;
	int rc;

	if (!db)
		return VGPU_INVALID_PARAM;
	rc = check_uuid(db, vm_uuid, uuid);
	if (rc != VGPU_OK)
		return rc;
	rc = db_prepare(db, "DELETE FROM vms WHERE vm_uuid = ?1", &stmt);
	if (rc != VGPU_OK)
		return rc;
	sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_STATIC);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		rc = db_fail_sql(db, "removing the VM");
	else if (sqlite3_changes(db->sql) == 0)
		rc = db_fail(db, VGPU_NOT_FOUND, "no VM is registered with UUID %s", uuid);
	sqlite3_finalize(stmt);
	return rc;
}

int vgpu_list_vms(vgpu_db *db, char pool_filter, int priority_filter,
		  struct vgpu_vm_config **ret_vms, size_t *ret_count)
{
	sqlite3_stmt *stmt;
	char pool = 0;
	int rc;

	if (!db)
		return VGPU_INVALID_PARAM;
	if (!ret_vms || !ret_count)
		return db_fail(db, VGPU_INVALID_PARAM, "missing argument");
	if ((pool_filter && (rc = db_check_pool_id(db, pool_filter, &pool)) != VGPU_OK) ||
	    (priority_filter != -1 && (rc = check_priority(db, priority_filter)) != VGPU_OK))
		return rc;
	rc = db_prepare(db,
			VM_COLUMNS " WHERE (?1 IS NULL OR pool_id = ?1)"
				   " AND (?2 IS NULL OR priority = ?2) ORDER BY vm_id",
			&stmt);
	if (rc != VGPU_OK)
		return rc;
	if (pool)
		sqlite3_bind_text(stmt, 1, &pool, 1, SQLITE_STATIC);
	if (priority_filter != -1)
		sqlite3_bind_int(stmt, 2, priority_filter);
	void *rows;
	rc = db_collect(db, stmt, sizeof(**ret_vms), read_vm, "listing VMs", &rows, ret_count);
	if (rc == VGPU_OK)
		*ret_vms = rows;
	return rc;
}
