/* SPDX-License-Identifier: MIT */
/*
 * test_concurrency.c - several processes writing one registry at once, as
 * vgpu-admin, the start-time hook and the mediator do. 8 children, started
 * together, each open the same (not yet existing) file with their own
 * handle, register 50 VMs with automatic vm_ids, read each back, then change
 * every one's priority and pool. Every call must return VGPU_OK: never
 * VGPU_BUSY or "database is locked". The parent then checks the 400 rows:
 * vm_ids exactly 1..400, every change visible, and PRAGMA integrity_check.
 *
 * Children report failures on stderr and through their exit status; they
 * never call cmocka.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

#define CHILDREN 8
#define VMS_PER_CHILD 50
#define TOTAL (CHILDREN * VMS_PER_CHILD)

static unsigned vm_number(int child, int i)
{
	return (unsigned)(child + 1) << 16 | (unsigned)i;
}

/* What child @child leaves VM @i with. */
static int final_priority(int child, int i)
{
	return (child + i) % 3;
}

static char final_pool(int child, int i)
{
	return (child + i) % 2 ? 'B' : 'A';
}

static int child_fail(int child, const char *what, int rc, vgpu_db *db)
{
	fprintf(stderr, "child %d: %s: %s (%d): %s\n", child, what, vgpu_strerror(rc), rc,
		db ? vgpu_db_errmsg(db) : "");
	return 1;
}

static int child_main(int child, const char *path, int start_fd)
{
	char err[256] = "", uuid[37], name[32];
	vgpu_db *db = NULL;
	char go;
	int rc;

	/* Wait for the parent to release every child at once. */
	if (read(start_fd, &go, 1) != 0)
		return child_fail(child, "start barrier", VGPU_ERROR, NULL);
	rc = vgpu_db_init(path, 0, &db, err, sizeof(err));
	if (rc != VGPU_OK) {
		fprintf(stderr, "child %d: vgpu_db_init: %s\n", child, err);
		return 1;
	}
	for (int i = 0; i < VMS_PER_CHILD; i++) {
		struct vgpu_vm_config cfg, back;

		th_uuid(uuid, vm_number(child, i));
		snprintf(name, sizeof(name), "c%d-vm%d", child, i);
		rc = vgpu_register_vm(db, uuid, name, 0, -1, 0, &cfg);
		if (rc != VGPU_OK)
			return child_fail(child, "register", rc, db);
		rc = vgpu_get_vm_config(db, uuid, &back);
		if (rc != VGPU_OK)
			return child_fail(child, "get", rc, db);
		if (back.vm_id != cfg.vm_id || strcmp(back.vm_name, name) != 0)
			return child_fail(child, "read back", VGPU_ERROR, db);
	}
	for (int i = 0; i < VMS_PER_CHILD; i++) {
		th_uuid(uuid, vm_number(child, i));
		rc = vgpu_set_vm_priority(db, uuid, final_priority(child, i));
		if (rc != VGPU_OK)
			return child_fail(child, "set priority", rc, db);
		rc = vgpu_set_vm_pool(db, uuid, final_pool(child, i));
		if (rc != VGPU_OK)
			return child_fail(child, "set pool", rc, db);
	}
	vgpu_db_close(db);
	return 0;
}

static void many_writers(void **state)
{
	char *path = th_join(*state, "sub/vgpu_config.db");
	pid_t pids[CHILDREN];
	int start[2];
	struct timespec t0, t1;

	assert_int_equal(pipe(start), 0);
	for (int c = 0; c < CHILDREN; c++) {
		pids[c] = fork();
		assert_true(pids[c] >= 0);
		if (pids[c] == 0) {
			close(start[1]);
			_exit(child_main(c, path, start[0]));
		}
	}
	close(start[0]);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	close(start[1]); /* go */

	int failed = 0;
	for (int c = 0; c < CHILDREN; c++) {
		int wstatus;

		while (waitpid(pids[c], &wstatus, 0) < 0)
			assert_int_equal(errno, EINTR);
		if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
			print_error("child %d failed (wait status 0x%x)\n", c, wstatus);
			failed++;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	print_message("%d processes x %d VMs: %.2f s\n", CHILDREN, VMS_PER_CHILD,
		      (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	assert_int_equal(failed, 0);

	/* Every row, every id once, every change visible. */
	struct vgpu_vm_config *vms = NULL;
	size_t count = 0;
	vgpu_db *db = NULL;
	bool seen[TOTAL + 1] = { false };

	assert_int_equal(vgpu_db_init(path, VGPU_DB_NO_CREATE, &db, NULL, 0), VGPU_OK);
	assert_int_equal(vgpu_list_vms(db, 0, -1, &vms, &count), VGPU_OK);
	assert_int_equal(count, TOTAL);
	for (size_t k = 0; k < count; k++) {
		unsigned c, i;
		char name[32];

		assert_int_equal(vms[k].vm_id, (int)k + 1); /* ordered, so 1..400 exactly */
		assert_in_range(vms[k].vm_id, 1, TOTAL);
		assert_false(seen[vms[k].vm_id]);
		seen[vms[k].vm_id] = true;
		assert_int_equal(sscanf(vms[k].vm_uuid, "%8x", &c), 1);
		i = c & 0xffff;
		c = (c >> 16) - 1;
		assert_in_range(c, 0, CHILDREN - 1);
		assert_in_range(i, 0, VMS_PER_CHILD - 1);
		snprintf(name, sizeof(name), "c%u-vm%u", c, i);
		assert_string_equal(vms[k].vm_name, name);
		assert_int_equal(vms[k].priority, final_priority((int)c, (int)i));
		assert_int_equal(vms[k].pool_id, final_pool((int)c, (int)i));
	}
	free(vms);

	struct vgpu_pool_info a, b;
	assert_int_equal(vgpu_get_pool_info(db, 'A', &a), VGPU_OK);
	assert_int_equal(vgpu_get_pool_info(db, 'B', &b), VGPU_OK);
	assert_int_equal(a.vm_count, TOTAL / 2);
	assert_int_equal(b.vm_count, TOTAL / 2);
	vgpu_db_close(db);

	sqlite3 *sql = th_sql_open(path);
	char *check = th_sql_text(sql, "PRAGMA integrity_check");
	assert_string_equal(check, "ok");
	free(check);
	assert_int_equal(th_sql_int(sql, "SELECT COUNT(DISTINCT vm_id) FROM vms"), TOTAL);
	assert_int_equal(th_sql_int(sql, "SELECT COUNT(DISTINCT vm_uuid) FROM vms"), TOTAL);
	assert_int_equal(th_sql_int(sql, "PRAGMA user_version"), VGPU_SCHEMA_VERSION);
	sqlite3_close(sql);

	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(many_writers, th_dir_setup, th_dir_teardown),
	};

	return cmocka_run_group_tests_name("concurrency", tests, NULL, NULL);
}
