/* SPDX-License-Identifier: MIT */
/*
 * test_migrate.c - schema migrations on open: a version-1 registry made from
 * the shipped schema/001_init.sql (path in $VGPU_SCHEMA_V1), and a version-2
 * one (002 too, $VGPU_SCHEMA_V2), are brought to VGPU_SCHEMA_VERSION with
 * their rows intact and the scheduler's settings at their defaults (v3:
 * the tables made anew, the VMs' reference to the pools kept, pools C to Z
 * possible); the seed's database without a
 * user_version (0) too; an empty file is created in full; a migration that
 * fails rolls back and leaves the version as it was; and the generated
 * init_db.sql ($VGPU_INIT_DB_SQL) builds exactly what the library considers
 * current.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

/* The contents of the file named by environment variable @var. */
static char *read_env_file(const char *var)
{
	const char *path = getenv(var);

	if (!path || !*path)
		print_error("$%s is not set: run this test through meson test\n", var);
	assert_non_null(path);
	assert_true(*path);
	return th_read_file(path, NULL);
}

/* A registry at @path built by executing @sql_text, with user_version @version
 * and one VM row inserted by SQL. */
static void make_old_db(const char *path, const char *sql_text, int version)
{
	sqlite3 *sql = NULL;

	assert_int_equal(sqlite3_open(path, &sql), SQLITE_OK);
	th_sql_exec(sql, "%s", sql_text);
	th_sql_exec(sql, "PRAGMA user_version = %d", version);
	th_sql_exec(sql, "INSERT INTO vms (vm_id, vm_uuid, vm_name, pool_id, priority,"
			 " created_at, updated_at) VALUES (7, '11111111-2222-3333-4444-555555555555',"
			 " 'i-2-33-VM', 'B', 2, '2020-01-02 03:04:05', '2021-01-02 03:04:05')");
	sqlite3_close(sql);
}

static void assert_migrated(const char *path)
{
	struct vgpu_vm_config cfg;
	vgpu_db *db = NULL;
	char err[256] = "";
	int version = -1;

	if (vgpu_db_init(path, VGPU_DB_NO_CREATE, &db, err, sizeof(err)) != VGPU_OK)
		print_error("vgpu_db_init: %s\n", err);
	assert_non_null(db);
	assert_int_equal(vgpu_db_schema_version(db, &version), VGPU_OK);
	assert_int_equal(version, VGPU_SCHEMA_VERSION);

	/* The row is intact, timestamps included, and findable by name (v2). */
	assert_int_equal(vgpu_get_vm_config(db, "11111111-2222-3333-4444-555555555555", &cfg),
			 VGPU_OK);
	assert_int_equal(cfg.vm_id, 7);
	assert_string_equal(cfg.vm_name, "i-2-33-VM");
	assert_int_equal(cfg.pool_id, 'B');
	assert_int_equal(cfg.priority, 2);
	assert_string_equal(cfg.created_at, "2020-01-02 03:04:05");
	assert_string_equal(cfg.updated_at, "2021-01-02 03:04:05");
	assert_int_equal(cfg.weight, VGPU_WEIGHT_DEFAULT);
	assert_int_equal(cfg.rate_limit_ms, 0);
	assert_int_equal(cfg.mem_quota_mib, 0);
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(vgpu_get_vm_config_by_name(db, "i-2-33-VM", &cfg), VGPU_OK);
	assert_int_equal(cfg.vm_id, 7);

	/* New registrations go around the old row. */
	struct vgpu_vm_config added;
	assert_int_equal(vgpu_register_vm(db, "aaaaaaaa-2222-3333-4444-555555555555", NULL, 0, -1,
					  7, NULL),
			 VGPU_EXISTS);
	assert_int_equal(vgpu_register_vm(db, "aaaaaaaa-2222-3333-4444-555555555555", NULL, 0, -1,
					  0, &added),
			 VGPU_OK);
	assert_int_equal(added.vm_id, 1);

	/* v3: pools at their defaults; a new pool, and a VM moved into it. */
	struct vgpu_pool_info pool;
	assert_int_equal(vgpu_get_pool_info(db, 'B', &pool), VGPU_OK);
	assert_int_equal(pool.weight, VGPU_WEIGHT_DEFAULT);
	assert_int_equal(pool.cap_percent, 100);
	assert_int_equal(pool.gpus, 0);
	assert_int_equal(pool.vm_count, 1);
	assert_int_equal(vgpu_create_pool(db, 'C', NULL), VGPU_OK);
	assert_int_equal(vgpu_set_vm_pool(db, "aaaaaaaa-2222-3333-4444-555555555555", 'C'), VGPU_OK);
	assert_int_equal(vgpu_delete_pool(db, 'C'), VGPU_BUSY);
	vgpu_db_close(db);

	sqlite3 *sql = th_sql_open(path);
	assert_int_equal(th_sql_int(sql, "PRAGMA user_version"), VGPU_SCHEMA_VERSION);
	assert_int_equal(th_sql_int(sql, "SELECT COUNT(*) FROM sqlite_master"
					 " WHERE type = 'index' AND name = 'idx_vm_name'"
					 " AND tbl_name = 'vms'"),
			 1);
	assert_int_equal(th_sql_int(sql, "SELECT COUNT(*) FROM pools"), 3);
	/* The reference followed the renamed table, and is enforced. */
	assert_int_equal(th_sql_int(sql, "SELECT COUNT(*) FROM pragma_foreign_key_list('vms')"
					 " WHERE \"table\" = 'pools'"),
			 1);
	assert_int_equal(th_sql_int(sql, "SELECT COUNT(*) FROM sqlite_master"
					 " WHERE name LIKE '%%_v3'"),
			 0);
	assert_int_equal(th_sql_int(sql, "SELECT COUNT(*) FROM pragma_foreign_key_check"), 0);
	assert_int_equal(th_sql_int(sql, "SELECT COUNT(*) FROM vms"), 2);
	char *mode = th_sql_text(sql, "PRAGMA journal_mode");
	assert_string_equal(mode, "wal");
	free(mode);
	char *check = th_sql_text(sql, "PRAGMA integrity_check");
	assert_string_equal(check, "ok");
	free(check);
	sqlite3_close(sql);
}

static void migrate_from_v1(void **state)
{
	char *path = th_join(*state, "v1.db");
	char *v1 = read_env_file("VGPU_SCHEMA_V1");
	sqlite3 *sql;

	make_old_db(path, v1, 1);
	sql = th_sql_open(path);
	assert_int_equal(th_sql_int(sql, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'idx_vm_name'"),
			 0);
	sqlite3_close(sql);
	assert_migrated(path);
	/* Opening again is a no-op. */
	char *before = th_snapshot(path);
	vgpu_db *db = NULL;
	assert_int_equal(vgpu_db_init(path, VGPU_DB_NO_CREATE, &db, NULL, 0), VGPU_OK);
	vgpu_db_close(db);
	char *after = th_snapshot(path);
	assert_string_equal(before, after);
	free(v1);
	free(path);
	free(before);
	free(after);
}

static void migrate_from_v2(void **state)
{
	char *path = th_join(*state, "v2.db");
	char *v1 = read_env_file("VGPU_SCHEMA_V1");
	char *v2 = read_env_file("VGPU_SCHEMA_V2");
	size_t n1 = strlen(v1), n2 = strlen(v2);
	char *both = malloc(n1 + n2 + 1);

	assert_non_null(both);
	memcpy(both, v1, n1);
	memcpy(both + n1, v2, n2 + 1);
	make_old_db(path, both, 2);
	assert_migrated(path);
	free(both);
	free(v1);
	free(v2);
	free(path);
}

static void migrate_seed_without_version(void **state)
{
	char *path = th_join(*state, "seed.db");
	char *v1 = read_env_file("VGPU_SCHEMA_V1");

	/* The seed created its tables with 001's SQL and never set user_version. */
	make_old_db(path, v1, 0);
	assert_migrated(path);
	free(v1);
	free(path);
}

static void create_from_empty_file(void **state)
{
	char *path = th_join(*state, "empty.db");
	struct vgpu_pool_info *pools = NULL;
	size_t count = 0;
	vgpu_db *db = NULL;
	int version = -1;

	th_write_file(path, "", 0);
	assert_int_equal(vgpu_db_init(path, VGPU_DB_NO_CREATE, &db, NULL, 0), VGPU_OK);
	assert_int_equal(vgpu_db_schema_version(db, &version), VGPU_OK);
	assert_int_equal(version, VGPU_SCHEMA_VERSION);
	assert_int_equal(vgpu_list_pools(db, &pools, &count), VGPU_OK);
	assert_int_equal(count, 2);
	free(pools);
	vgpu_db_close(db);

	sqlite3 *sql = th_sql_open(path);
	assert_int_equal(th_sql_int(sql, "SELECT COUNT(*) FROM sqlite_master WHERE name IN"
					 " ('pools', 'vms', 'idx_vm_uuid', 'idx_vm_pool',"
					 " 'idx_vm_priority', 'idx_vm_name')"),
			 6);
	sqlite3_close(sql);
	free(path);
}

static void failed_migration_rolls_back(void **state)
{
	char *path = th_join(*state, "broken.db");
	char err[256] = "";
	vgpu_db *db = NULL;
	sqlite3 *sql = NULL;

	/* A "version 1" whose vms table lacks vm_name: migration 2 cannot index it. */
	assert_int_equal(sqlite3_open(path, &sql), SQLITE_OK);
	th_sql_exec(sql, "CREATE TABLE vms (vm_id INTEGER); INSERT INTO vms VALUES (3);"
			 " PRAGMA user_version = 1;");
	sqlite3_close(sql);

	assert_int_equal(vgpu_db_init(path, 0, &db, err, sizeof(err)), VGPU_DB_ERROR);
	assert_null(db);
	assert_non_null(strstr(err, "version 2"));
	sql = th_sql_open(path);
	assert_int_equal(th_sql_int(sql, "PRAGMA user_version"), 1);
	assert_int_equal(th_sql_int(sql, "SELECT COUNT(*) FROM sqlite_master"), 1);
	assert_int_equal(th_sql_int(sql, "SELECT vm_id FROM vms"), 3);
	sqlite3_close(sql);
	free(path);
}

static void init_db_sql_matches_library(void **state)
{
	char *from_sql = th_join(*state, "from_sql.db");
	char *from_lib = th_join(*state, "from_lib.db");
	char *text = read_env_file("VGPU_INIT_DB_SQL");
	vgpu_db *db = NULL;
	sqlite3 *sql = NULL;

	assert_int_equal(sqlite3_open(from_sql, &sql), SQLITE_OK);
	th_sql_exec(sql, "%s", text);
	sqlite3_close(sql);
	assert_int_equal(vgpu_db_init(from_lib, 0, &db, NULL, 0), VGPU_OK);
	vgpu_db_close(db);

	/* Same schema, same version; the library finds nothing to migrate. */
	char *a = th_snapshot(from_sql);
	char *b = th_snapshot(from_lib);
	/* Pools differ only in their creation timestamps: compare the schema part. */
	*strstr(a, "-- SELECT * FROM pools") = '\0';
	*strstr(b, "-- SELECT * FROM pools") = '\0';
	assert_string_equal(a, b);
	free(a);
	free(b);

	char *before = th_snapshot(from_sql);
	assert_int_equal(vgpu_db_init(from_sql, VGPU_DB_NO_CREATE, &db, NULL, 0), VGPU_OK);
	vgpu_db_close(db);
	char *after = th_snapshot(from_sql);
	assert_string_equal(before, after);
	free(before);
	free(after);
	free(text);
	free(from_sql);
	free(from_lib);
}

#define D(f) cmocka_unit_test_setup_teardown(f, th_dir_setup, th_dir_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		D(migrate_from_v1),
		D(migrate_from_v2),
		D(migrate_seed_without_version),
		D(create_from_empty_file),
		D(failed_migration_rolls_back),
		D(init_db_sql_matches_library),
	};

	return cmocka_run_group_tests_name("migrate", tests, NULL, NULL);
}
