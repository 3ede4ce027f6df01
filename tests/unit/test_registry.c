/* SPDX-License-Identifier: MIT */
/*
 * test_registry.c - opening and closing the registry and reading its pools:
 * vgpu_db_path's three sources, vgpu_db_init (directories created, WAL on,
 * VGPU_DB_NO_CREATE, a file that is not SQLite, a schema newer than this
 * build, bad arguments, permission and I/O failures), vgpu_db_close(NULL),
 * vgpu_db_init_schema and vgpu_db_schema_version, vgpu_db_errmsg, the pool
 * calls, and the database failure codes (VGPU_DB_ERROR, VGPU_BUSY, and the
 * busy timeout that makes writers queue instead of failing).
 *
 * Two tests reach the library's SQLite connection through the private
 * internal.h: the VGPU_BUSY test, to shorten the 15 s busy timeout, and the
 * foreign-key test, because that pragma is per connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

#define FAILS(code, substr, call) TH_ASSERT_FAILS(t, code, substr, call)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- vgpu_db_path --------------------------------------------------------- */

static void db_path_sources(void **state)
{
	const char *saved = getenv(VGPU_DB_ENV);
	char *copy = saved ? strdup(saved) : NULL;
	const char *explicit_path = "/x/explicit.db";
	(void)state;

	assert_int_equal(setenv(VGPU_DB_ENV, "/from/env.db", 1), 0);
	assert_ptr_equal(vgpu_db_path(explicit_path), explicit_path);
	assert_string_equal(vgpu_db_path(NULL), "/from/env.db");
	/* An explicit path wins even when it is empty (the caller checks it). */
	assert_string_equal(vgpu_db_path(""), "");
	assert_int_equal(setenv(VGPU_DB_ENV, "", 1), 0);
	assert_string_equal(vgpu_db_path(NULL), VGPU_DEFAULT_DB_PATH);
	assert_int_equal(unsetenv(VGPU_DB_ENV), 0);
	assert_string_equal(vgpu_db_path(NULL), VGPU_DEFAULT_DB_PATH);
	assert_string_equal(VGPU_DEFAULT_DB_PATH, "/etc/vgpu/vgpu_config.db");

	if (copy)
		setenv(VGPU_DB_ENV, copy, 1);
	free(copy);
}

/* ---- vgpu_db_init ----------------------------------------------------------- */

static void init_creates_directories(void **state)
{
	char *path = th_join(*state, "a/b/c/reg.db");
	char *dir = th_join(*state, "a/b/c");
	char err[256] = "junk";
	vgpu_db *db = NULL;
	struct stat st;
	int version = -1;

	mode_t old = umask(022);
	assert_int_equal(vgpu_db_init(path, 0, &db, err, sizeof(err)), VGPU_OK);
	umask(old);
	assert_non_null(db);
	assert_string_equal(err, "");
	assert_string_equal(vgpu_db_errmsg(db), "");
	assert_int_equal(stat(dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0755);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(vgpu_db_schema_version(db, &version), VGPU_OK);
	assert_int_equal(version, VGPU_SCHEMA_VERSION);
	vgpu_db_close(db);

	/* Reopening with NO_CREATE finds it; a relative path works too. */
	db = NULL;
	assert_int_equal(vgpu_db_init(path, VGPU_DB_NO_CREATE, &db, NULL, 0), VGPU_OK);
	vgpu_db_close(db);
	char cwd[4096];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(*state), 0);
	db = NULL;
	assert_int_equal(vgpu_db_init("rel/reg.db", 0, &db, err, sizeof(err)), VGPU_OK);
	assert_int_equal(chdir(cwd), 0);
	vgpu_db_close(db);
	free(path);
	path = th_join(*state, "rel/reg.db");
	assert_true(th_exists(path));
	free(path);
	free(dir);
}

static void init_wal_mode(void **state)
{
	char *path = th_join(*state, "reg.db");
	vgpu_db *db = NULL;
	sqlite3 *sql;

	assert_int_equal(vgpu_db_init(path, 0, &db, NULL, 0), VGPU_OK);
	sql = th_sql_open(path);
	char *mode = th_sql_text(sql, "PRAGMA journal_mode");
	assert_string_equal(mode, "wal");
	free(mode);
	sqlite3_close(sql);
	vgpu_db_close(db);

	/* WAL is persistent: it is still on with no handle open. */
	sql = th_sql_open(path);
	mode = th_sql_text(sql, "PRAGMA journal_mode");
	assert_string_equal(mode, "wal");
	free(mode);
	sqlite3_close(sql);
	free(path);
}

static void init_no_create_missing(void **state)
{
	char *path = th_join(*state, "missing/reg.db");
	char *dir = th_join(*state, "missing");
	char *plain = th_join(*state, "reg.db");
	vgpu_db *db = (vgpu_db *)&db; /* a sentinel that must stay */
	char err[256] = "";

	assert_int_equal(vgpu_db_init(path, VGPU_DB_NO_CREATE, &db, err, sizeof(err)),
			 VGPU_NOT_FOUND);
	assert_ptr_equal(db, (vgpu_db *)&db);
	assert_non_null(strstr(err, "does not exist"));
	assert_false(th_exists(dir));
	assert_int_equal(vgpu_db_init(plain, VGPU_DB_NO_CREATE, &db, NULL, 0), VGPU_NOT_FOUND);
	assert_false(th_exists(plain));
	free(path);
	free(dir);
	free(plain);
}

static void init_not_sqlite(void **state)
{
	char *path = th_join(*state, "reg.db");
	char *wal = th_join(*state, "reg.db-wal");
	static const char text[] =
		"This is a plain text file and certainly not an SQLite database.\n"
		"Opening it as the registry must fail and must leave it as it was.\n"
		"Padding padding padding padding padding padding padding padding.\n";
	vgpu_db *db = NULL;
	char err[256] = "";

	th_write_file(path, text, sizeof(text) - 1);
	for (unsigned flags = 0; flags <= VGPU_DB_NO_CREATE; flags += VGPU_DB_NO_CREATE) {
		size_t len;

		assert_int_equal(vgpu_db_init(path, flags, &db, err, sizeof(err)), VGPU_DB_ERROR);
		assert_null(db);
		assert_non_null(strstr(err, "not a database"));
		char *after = th_read_file(path, &len);
		assert_int_equal(len, sizeof(text) - 1);
		assert_memory_equal(after, text, len);
		free(after);
		assert_false(th_exists(wal));
	}
	free(path);
	free(wal);
}

static void init_newer_schema_untouched(void **state)
{
	char *path = th_join(*state, "reg.db");
	char *before, *after;
	size_t before_len, after_len;
	vgpu_db *db = NULL;
	char err[256] = "";
	sqlite3 *sql = NULL;

	assert_int_equal(sqlite3_open(path, &sql), SQLITE_OK);
	th_sql_exec(sql, "CREATE TABLE future (x TEXT); INSERT INTO future VALUES ('kept');"
			 " PRAGMA user_version = 99;");
	sqlite3_close(sql);
	before = th_read_file(path, &before_len);

	assert_int_equal(vgpu_db_init(path, 0, &db, err, sizeof(err)), VGPU_UNSUPPORTED);
	assert_null(db);
	assert_non_null(strstr(err, "99"));
	assert_int_equal(vgpu_db_init(path, VGPU_DB_NO_CREATE, &db, NULL, 0), VGPU_UNSUPPORTED);

	/* Not even switched to WAL: the very same bytes, no -wal or -shm file. */
	after = th_read_file(path, &after_len);
	assert_int_equal(after_len, before_len);
	assert_memory_equal(after, before, before_len);
	char *wal = th_join(*state, "reg.db-wal"), *shm = th_join(*state, "reg.db-shm");
	assert_false(th_exists(wal));
	assert_false(th_exists(shm));
	free(wal);
	free(shm);
	sql = th_sql_open(path);
	assert_int_equal(th_sql_int(sql, "PRAGMA user_version"), 99);
	assert_int_equal(th_sql_int(sql, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'vms'"), 0);
	char *kept = th_sql_text(sql, "SELECT x FROM future");
	assert_string_equal(kept, "kept");
	free(kept);
	sqlite3_close(sql);
	free(before);
	free(after);
	free(path);
}

static void init_bad_arguments(void **state)
{
	char *path = th_join(*state, "reg.db");
	char long_path[5000];
	char err[256];
	vgpu_db *db = NULL;

	strcpy(err, "junk");
	assert_int_equal(vgpu_db_init(NULL, 0, &db, err, sizeof(err)), VGPU_INVALID_PARAM);
	assert_true(err[0] != '\0' && strcmp(err, "junk") != 0);
	assert_int_equal(vgpu_db_init("", 0, &db, err, sizeof(err)), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_db_init(path, 0, NULL, err, sizeof(err)), VGPU_INVALID_PARAM);
	assert_false(th_exists(path));
	/* No message buffer, or a zero-sized one, is fine. */
	assert_int_equal(vgpu_db_init(NULL, 0, &db, NULL, 0), VGPU_INVALID_PARAM);
	err[0] = 'x';
	assert_int_equal(vgpu_db_init(NULL, 0, &db, err, 0), VGPU_INVALID_PARAM);
	assert_int_equal(err[0], 'x');
	/* A small buffer gets a truncated, terminated message. */
	memset(err, 'z', sizeof(err));
	assert_int_equal(vgpu_db_init(NULL, 0, &db, err, 8), VGPU_INVALID_PARAM);
	assert_int_equal(strlen(err), 7);
	assert_int_equal(err[8], 'z');

	memset(long_path, 'p', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = '\0';
	assert_int_equal(vgpu_db_init(long_path, 0, &db, err, sizeof(err)), VGPU_INVALID_PARAM);
	assert_non_null(strstr(err, "longer"));
	assert_null(db);
	free(path);
}

static void init_parent_is_a_file(void **state)
{
	char *file = th_join(*state, "file");
	char *path = th_join(*state, "file/sub/reg.db");
	char err[256] = "";
	vgpu_db *db = NULL;

	th_write_file(file, "x", 1);
	assert_int_equal(vgpu_db_init(path, 0, &db, err, sizeof(err)), VGPU_IO_ERROR);
	assert_non_null(strstr(err, "cannot create directory"));
	assert_null(db);
	free(file);
	free(path);
}

struct denied_case {
	const char *path;
	unsigned flags;
};

static int init_as_nobody(void *arg)
{
	const struct denied_case *c = arg;
	char err[256] = "";
	vgpu_db *db = NULL;
	int rc = vgpu_db_init(c->path, c->flags, &db, err, sizeof(err));

	vgpu_db_close(db);
	return rc == VGPU_DENIED && err[0] ? 0 : 1;
}

static void init_permission_denied(void **state)
{
	char *inside = th_join(*state, "sub/reg.db");
	char *file = th_join(*state, "locked.db");
	struct denied_case c = { inside, 0 };
	vgpu_db *db = NULL;

	/* A directory nobody may write to (neither the unprivileged user nor,
	 * when the test does not run as root, its owner). */
	assert_int_equal(chmod(*state, 0500), 0);
	assert_int_equal(th_run_unprivileged(init_as_nobody, &c), 0);
	assert_int_equal(chmod(*state, 0755), 0);
	char *sub = th_join(*state, "sub");
	assert_false(th_exists(sub));
	free(sub);

	/* An existing registry nobody may open. */
	assert_int_equal(vgpu_db_init(file, 0, &db, NULL, 0), VGPU_OK);
	vgpu_db_close(db);
	assert_int_equal(chmod(file, 0), 0);
	c.path = file;
	assert_int_equal(th_run_unprivileged(init_as_nobody, &c), 0);
	c.flags = VGPU_DB_NO_CREATE;
	assert_int_equal(th_run_unprivileged(init_as_nobody, &c), 0);
	free(inside);
	free(file);
}

static void close_null(void **state)
{
	(void)state;
	vgpu_db_close(NULL);
	assert_non_null(vgpu_db_errmsg(NULL));
	assert_true(vgpu_db_errmsg(NULL)[0] != '\0');
}

/* ---- schema -------------------------------------------------------------- */

static void schema_version_and_idempotent(void **state)
{
	struct th_db *t = *state;
	int version = -1;
	char *before, *after;

	assert_int_equal(vgpu_db_schema_version(t->db, &version), VGPU_OK);
	assert_int_equal(version, VGPU_SCHEMA_VERSION);

	before = th_snapshot(t->path);
	assert_int_equal(vgpu_db_init_schema(t->db), VGPU_OK);
	assert_int_equal(vgpu_db_init_schema(t->db), VGPU_OK);
	after = th_snapshot(t->path);
	assert_string_equal(before, after);
	free(after);

	/* Reopening does not change anything either. */
	vgpu_db *again = NULL;
	assert_int_equal(vgpu_db_init(t->path, 0, &again, NULL, 0), VGPU_OK);
	vgpu_db_close(again);
	after = th_snapshot(t->path);
	assert_string_equal(before, after);
	free(after);
	free(before);

	sqlite3 *sql = th_sql_open(t->path);
	assert_int_equal(th_sql_int(sql, "PRAGMA user_version"), VGPU_SCHEMA_VERSION);
	static const char *const objects[] = { "pools", "vms", "idx_vm_uuid", "idx_vm_pool",
					       "idx_vm_priority", "idx_vm_name" };
	for (size_t i = 0; i < sizeof(objects) / sizeof(objects[0]); i++)
		assert_int_equal(th_sql_int(sql, "SELECT COUNT(*) FROM sqlite_master WHERE name = '%s'",
					    objects[i]),
				 1);
	sqlite3_close(sql);
	assert_int_equal(vgpu_db_init_schema(NULL), VGPU_INVALID_PARAM);
}

static void foreign_keys_enforced(void **state)
{
	struct th_db *t = *state;

	/* White box as well: foreign keys are a per-connection setting, so the
	 * library's own connection must refuse to delete a pool a VM is in. */
	char uuid[37];
	th_uuid(uuid, 1);
	assert_int_equal(vgpu_register_vm(t->db, uuid, NULL, 'A', -1, 0, NULL), VGPU_OK);
	assert_int_equal(sqlite3_exec(t->db->sql, "DELETE FROM pools WHERE pool_id = 'A'", NULL,
				      NULL, NULL),
			 SQLITE_CONSTRAINT);
	struct vgpu_pool_info info;
	assert_int_equal(vgpu_get_pool_info(t->db, 'A', &info), VGPU_OK);
}

/* ---- errors from SQLite ------------------------------------------------------ */

static void db_error_on_damaged_schema(void **state)
{
	struct th_db *t = *state;
	struct vgpu_vm_config *vms = NULL;
	struct vgpu_vm_config cfg;
	size_t count = 0;
	char uuid[37];
	sqlite3 *sql = th_sql_open(t->path);

	th_uuid(uuid, 1);
	th_sql_exec(sql, "DROP TABLE vms");
	sqlite3_close(sql);
	assert_int_equal(vgpu_list_vms(t->db, 0, -1, &vms, &count), VGPU_DB_ERROR);
	th_assert_errmsg(t->db, "no such table");
	assert_null(vms);
	assert_int_equal(vgpu_register_vm(t->db, uuid, NULL, 0, -1, 0, NULL), VGPU_DB_ERROR);
	th_assert_errmsg(t->db, "no such table");
	assert_int_equal(vgpu_get_vm_config(t->db, uuid, &cfg), VGPU_DB_ERROR);
	assert_int_equal(vgpu_remove_vm(t->db, uuid), VGPU_DB_ERROR);
	/* Pools count their VMs from the vms table too. */
	struct vgpu_pool_info *pools = NULL;
	assert_int_equal(vgpu_list_pools(t->db, &pools, &count), VGPU_DB_ERROR);
	assert_null(pools);
	/* No transaction was left open: a raw writer gets the lock at once. */
	sql = th_sql_open(t->path);
	sqlite3_busy_timeout(sql, 0);
	th_sql_exec(sql, "BEGIN IMMEDIATE; COMMIT;");
	sqlite3_close(sql);
}

static void busy_when_locked_past_timeout(void **state)
{
	struct th_db *t = *state;
	struct vgpu_vm_config cfg;
	char uuid[37], other[37];
	sqlite3 *sql = th_sql_open(t->path);

	th_uuid(uuid, 1);
	th_uuid(other, 2);
	assert_int_equal(vgpu_register_vm(t->db, other, NULL, 0, -1, 0, NULL), VGPU_OK);
	/* White box: 15 s is too long to wait for in a unit test. */
	sqlite3_busy_timeout(t->db->sql, 50);
	th_sql_exec(sql, "BEGIN IMMEDIATE");

	assert_int_equal(vgpu_register_vm(t->db, uuid, NULL, 0, -1, 0, NULL), VGPU_BUSY);
	th_assert_errmsg(t->db, "locked");
	assert_int_equal(vgpu_set_vm_priority(t->db, other, 2), VGPU_BUSY);
	/* WAL: readers go on while another process writes. */
	assert_int_equal(vgpu_get_vm_config(t->db, other, &cfg), VGPU_OK);
	assert_int_equal(cfg.priority, VGPU_PRIORITY_MEDIUM);

	th_sql_exec(sql, "COMMIT");
	sqlite3_close(sql);
	assert_int_equal(vgpu_register_vm(t->db, uuid, NULL, 0, -1, 0, NULL), VGPU_OK);
	assert_int_equal(vgpu_set_vm_priority(t->db, other, 2), VGPU_OK);
}

static void writers_wait_for_the_lock(void **state)
{
	struct th_db *t = *state;
	int ready[2];
	char uuid[37], byte;
	pid_t pid;
	int wstatus;

	th_uuid(uuid, 1);
	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		sqlite3 *sql = NULL;
		int ok = sqlite3_open(t->path, &sql) == SQLITE_OK &&
			 sqlite3_exec(sql, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;

		if (write(ready[1], ok ? "y" : "n", 1) != 1)
			_exit(1);
		usleep(400 * 1000);
		ok = ok && sqlite3_exec(sql, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
		sqlite3_close(sql);
		_exit(ok ? 0 : 1);
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &byte, 1), 1);
	assert_int_equal(byte, 'y');
	close(ready[0]);

	double start = now_s();
	assert_int_equal(vgpu_register_vm(t->db, uuid, NULL, 0, -1, 0, NULL), VGPU_OK);
	assert_true(now_s() - start >= 0.2);
	assert_int_equal(waitpid(pid, &wstatus, 0), pid);
	assert_true(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
}

/* ---- pools --------------------------------------------------------------- */

static void pools_default(void **state)
{
	struct th_db *t = *state;
	struct vgpu_pool_info *pools = NULL;
	size_t count = 0;

	assert_int_equal(vgpu_list_pools(t->db, &pools, &count), VGPU_OK);
	assert_int_equal(count, 2);
	assert_int_equal(pools[0].pool_id, 'A');
	assert_string_equal(pools[0].pool_name, "Pool A");
	assert_string_equal(pools[0].description, "Default pool");
	assert_int_equal(pools[1].pool_id, 'B');
	assert_string_equal(pools[1].pool_name, "Pool B");
	assert_string_equal(pools[1].description, "Second pool");
	for (size_t i = 0; i < count; i++) {
		assert_true(pools[i].enabled);
		assert_int_equal(pools[i].vm_count, 0);
		assert_int_equal(strlen(pools[i].created_at), VGPU_TIMESTAMP_STRLEN);
		assert_int_equal(strlen(pools[i].updated_at), VGPU_TIMESTAMP_STRLEN);
	}
	free(pools);

	struct vgpu_pool_info info;
	assert_int_equal(vgpu_get_pool_info(t->db, 'a', &info), VGPU_OK);
	assert_int_equal(info.pool_id, 'A');
	assert_string_equal(info.pool_name, "Pool A");
	assert_int_equal(vgpu_get_pool_info(t->db, 'B', &info), VGPU_OK);
	assert_string_equal(info.pool_name, "Pool B");
	assert_true(info.enabled);

	/* A disabled pool reads as disabled. */
	sqlite3 *sql = th_sql_open(t->path);
	th_sql_exec(sql, "UPDATE pools SET enabled = 0, description = NULL WHERE pool_id = 'B'");
	sqlite3_close(sql);
	assert_int_equal(vgpu_get_pool_info(t->db, 'b', &info), VGPU_OK);
	assert_false(info.enabled);
	assert_string_equal(info.description, "");
}

static void pools_count_vms(void **state)
{
	struct th_db *t = *state;
	struct vgpu_pool_info a, b;
	char uuid[5][37];

	for (unsigned i = 0; i < 5; i++) {
		th_uuid(uuid[i], i + 1);
		assert_int_equal(vgpu_register_vm(t->db, uuid[i], NULL, i < 3 ? 'A' : 'B', -1, 0, NULL),
				 VGPU_OK);
	}
	assert_int_equal(vgpu_get_pool_info(t->db, 'A', &a), VGPU_OK);
	assert_int_equal(vgpu_get_pool_info(t->db, 'B', &b), VGPU_OK);
	assert_int_equal(a.vm_count, 3);
	assert_int_equal(b.vm_count, 2);

	assert_int_equal(vgpu_set_vm_pool(t->db, uuid[0], 'B'), VGPU_OK);
	assert_int_equal(vgpu_remove_vm(t->db, uuid[4]), VGPU_OK);
	assert_int_equal(vgpu_get_pool_info(t->db, 'A', &a), VGPU_OK);
	assert_int_equal(vgpu_get_pool_info(t->db, 'B', &b), VGPU_OK);
	assert_int_equal(a.vm_count, 2);
	assert_int_equal(b.vm_count, 2);

	struct vgpu_pool_info *pools = NULL;
	size_t count = 0;
	assert_int_equal(vgpu_list_pools(t->db, &pools, &count), VGPU_OK);
	assert_int_equal(count, 2);
	assert_int_equal(pools[0].vm_count, 2);
	assert_int_equal(pools[1].vm_count, 2);
	free(pools);
}

/* Pools C to Z: created with settings or defaults, changed field by
 * field (all or none), deleted only when empty; A and B stay. */
static void pools_create_update_delete(void **state)
{
	struct th_db *t = *state;
	struct vgpu_pool_settings st = VGPU_POOL_SETTINGS_INIT, bad;
	struct vgpu_pool_info info, *pools = NULL;
	char uuid[37], desc[VGPU_DESCRIPTION_MAX + 2];
	size_t count = 0;

	assert_int_equal(vgpu_create_pool(t->db, 'c', NULL), VGPU_OK);
	assert_int_equal(vgpu_get_pool_info(t->db, 'C', &info), VGPU_OK);
	assert_string_equal(info.pool_name, "Pool C");
	assert_string_equal(info.description, "");
	assert_int_equal(info.weight, VGPU_WEIGHT_DEFAULT);
	assert_int_equal(info.cap_percent, 100);
	assert_int_equal(info.gpus, 0);
	FAILS(VGPU_EXISTS, "exists", vgpu_create_pool(t->db, 'C', NULL));
	FAILS(VGPU_EXISTS, "exists", vgpu_create_pool(t->db, 'A', NULL));

	st.pool_name = "render farm";
	st.description = "nightly jobs";
	st.weight = 400;
	st.cap_percent = 50;
	st.gpus = 0x5;
	assert_int_equal(vgpu_create_pool(t->db, 'Z', &st), VGPU_OK);
	assert_int_equal(vgpu_get_pool_info(t->db, 'z', &info), VGPU_OK);
	assert_string_equal(info.pool_name, "render farm");
	assert_string_equal(info.description, "nightly jobs");
	assert_int_equal(info.weight, 400);
	assert_int_equal(info.cap_percent, 50);
	assert_int_equal(info.gpus, 0x5);
	assert_int_equal(vgpu_list_pools(t->db, &pools, &count), VGPU_OK);
	assert_int_equal(count, 4);
	assert_int_equal(pools[2].pool_id, 'C');
	assert_int_equal(pools[3].pool_id, 'Z');
	free(pools);

	/* Changes: one field; "" clears the description; bad values change
	 * nothing, even beside good ones. */
	st = (struct vgpu_pool_settings)VGPU_POOL_SETTINGS_INIT;
	st.weight = 7;
	assert_int_equal(vgpu_update_pool(t->db, 'Z', &st), VGPU_OK);
	st = (struct vgpu_pool_settings)VGPU_POOL_SETTINGS_INIT;
	st.description = "";
	st.gpus = 0;
	assert_int_equal(vgpu_update_pool(t->db, 'A', &st), VGPU_OK);
	assert_int_equal(vgpu_get_pool_info(t->db, 'A', &info), VGPU_OK);
	assert_string_equal(info.description, "");
	assert_int_equal(info.weight, VGPU_WEIGHT_DEFAULT);
	assert_int_equal(vgpu_get_pool_info(t->db, 'Z', &info), VGPU_OK);
	assert_int_equal(info.weight, 7);
	assert_int_equal(info.cap_percent, 50);
	assert_string_equal(info.pool_name, "render farm");
	memset(desc, 'x', sizeof(desc) - 1);
	desc[sizeof(desc) - 1] = '\0';
	const struct vgpu_pool_settings bads[] = {
		{ .pool_name = "", .weight = 9, .gpus = -1 },
		{ .pool_name = "a\nb", .gpus = -1 },
		{ .description = desc, .gpus = -1 },
		{ .description = "\x01", .gpus = -1 },
		{ .weight = 10001, .gpus = -1 },
		{ .weight = -3, .gpus = -1 },
		{ .cap_percent = 101, .weight = 9, .gpus = -1 },
		{ .cap_percent = -1, .gpus = -1 },
		{ .gpus = 0x100000000LL, .weight = 9 },
		{ .gpus = -2 },
	};
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		bad = bads[i];
		FAILS(VGPU_INVALID_PARAM, "invalid", vgpu_update_pool(t->db, 'Z', &bad));
		FAILS(VGPU_INVALID_PARAM, "invalid", vgpu_create_pool(t->db, 'Y', &bad));
	}
	assert_int_equal(vgpu_get_pool_info(t->db, 'Z', &info), VGPU_OK);
	assert_int_equal(info.weight, 7);
	FAILS(VGPU_NOT_FOUND, "Y does not exist", vgpu_get_pool_info(t->db, 'Y', &info));
	FAILS(VGPU_NOT_FOUND, "does not exist", vgpu_update_pool(t->db, 'Y', &st));
	FAILS(VGPU_INVALID_PARAM, "A to Z", vgpu_update_pool(t->db, '1', &st));
	FAILS(VGPU_INVALID_PARAM, "missing", vgpu_update_pool(t->db, 'A', NULL));
	FAILS(VGPU_INVALID_PARAM, "A to Z", vgpu_create_pool(t->db, '[', NULL));

	/* Delete: refused while a VM is in the pool, and for A and B. */
	th_uuid(uuid, 1);
	assert_int_equal(vgpu_register_vm(t->db, uuid, NULL, 'C', -1, 0, NULL), VGPU_OK);
	FAILS(VGPU_BUSY, "has 1 VM", vgpu_delete_pool(t->db, 'C'));
	assert_int_equal(vgpu_remove_vm(t->db, uuid), VGPU_OK);
	assert_int_equal(vgpu_delete_pool(t->db, 'c'), VGPU_OK);
	FAILS(VGPU_NOT_FOUND, "does not exist", vgpu_delete_pool(t->db, 'C'));
	FAILS(VGPU_NOT_FOUND, "does not exist",
	      vgpu_register_vm(t->db, uuid, NULL, 'C', -1, 0, NULL));
	FAILS(VGPU_INVALID_PARAM, "defaults", vgpu_delete_pool(t->db, 'A'));
	FAILS(VGPU_INVALID_PARAM, "defaults", vgpu_delete_pool(t->db, 'b'));
	FAILS(VGPU_INVALID_PARAM, "A to Z", vgpu_delete_pool(t->db, 0));
	assert_int_equal(vgpu_delete_pool(NULL, 'C'), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_create_pool(NULL, 'C', NULL), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_update_pool(NULL, 'C', &st), VGPU_INVALID_PARAM);
}

static void pools_errors(void **state)
{
	struct th_db *t = *state;
	struct vgpu_pool_info info, *pools = NULL;
	size_t count = 7;

	memset(&info, 0x11, sizeof(info));
	FAILS(VGPU_INVALID_PARAM, "pool", vgpu_get_pool_info(t->db, '[', &info));
	FAILS(VGPU_NOT_FOUND, "does not exist", vgpu_get_pool_info(t->db, 'C', &info));
	FAILS(VGPU_INVALID_PARAM, "pool", vgpu_get_pool_info(t->db, 0, &info));
	FAILS(VGPU_INVALID_PARAM, "pool", vgpu_get_pool_info(t->db, '1', &info));
	assert_int_equal(info.vm_count, 0x11111111);
	assert_int_equal(vgpu_get_pool_info(t->db, 'A', NULL), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_get_pool_info(NULL, 'A', &info), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_list_pools(t->db, NULL, &count), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_list_pools(t->db, &pools, NULL), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_list_pools(NULL, &pools, &count), VGPU_INVALID_PARAM);
	assert_null(pools);
	assert_int_equal(count, 7);

	/* A pool missing from the table (only possible behind the library's back). */
	sqlite3 *sql = th_sql_open(t->path);
	th_sql_exec(sql, "DELETE FROM pools WHERE pool_id = 'B'");
	sqlite3_close(sql);
	FAILS(VGPU_NOT_FOUND, "does not exist", vgpu_get_pool_info(t->db, 'B', &info));
	assert_int_equal(vgpu_list_pools(t->db, &pools, &count), VGPU_OK);
	assert_int_equal(count, 1);
	assert_int_equal(pools[0].pool_id, 'A');
	free(pools);
}

#define T(f) cmocka_unit_test_setup_teardown(f, th_db_setup, th_db_teardown)
#define D(f) cmocka_unit_test_setup_teardown(f, th_dir_setup, th_dir_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(db_path_sources),
		D(init_creates_directories),
		D(init_wal_mode),
		D(init_no_create_missing),
		D(init_not_sqlite),
		D(init_newer_schema_untouched),
		D(init_bad_arguments),
		D(init_parent_is_a_file),
		D(init_permission_denied),
		cmocka_unit_test(close_null),
		T(schema_version_and_idempotent),
		T(foreign_keys_enforced),
		T(db_error_on_damaged_schema),
		T(busy_when_locked_past_timeout),
		T(writers_wait_for_the_lock),
		T(pools_default),
		T(pools_count_vms),
		T(pools_create_update_delete),
		T(pools_errors),
	};

	return cmocka_run_group_tests_name("registry", tests, NULL, NULL);
}
