/* SPDX-License-Identifier: MIT */
/*
 * cmd_pools.c - list-pools, show-pool, create-pool, update-pool and
 * delete-pool. A pool's settings reach a running mediator at its next
 * registry read (registry_poll_ms, default 500 ms): no VM restarts.
 */
#include <stdlib.h>

#include "cli.h"

static void print_vm_rows(const struct vgpu_vm_config *vms, size_t count)
{
	char name[VGPU_NAME_MAX + 1];

	printf("  %-10s %-8s %-36s  %s\n", "VM_ID", "PRIORITY", "UUID", "NAME");
	for (size_t i = 0; i < count; i++) {
		sanitize(vms[i].vm_name, name, sizeof(name));
		printf("  %-10d %-8s %-36s  %s\n", vms[i].vm_id, vgpu_priority_name(vms[i].priority),
		       vms[i].vm_uuid, *name ? name : "-");
	}
}

int cmd_list_pools(struct cli *cli)
{
	struct vgpu_pool_info *pools;
	size_t count;
	int rc, ex;
	vgpu_db *db = cli_open_db(cli, &ex);

	if (!db)
		return ex;
	rc = vgpu_list_pools(db, &pools, &count);
	if (rc != VGPU_OK) {
		ex = cli_fail(db, rc, "cannot list pools");
		vgpu_db_close(db);
		return ex;
	}
	if (cli->json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < count; i++)
			json_array_append_new(arr, json_pool(&pools[i]));
		ex = print_json(json_pack("{s:o}", "pools", arr));
	} else {
		char name[VGPU_NAME_MAX + 1], desc[VGPU_DESCRIPTION_MAX + 1];

		char gpus[96];

		printf("%-4s %-16s %-7s %-5s %-6s %-4s %-8s %s\n", "POOL", "NAME", "ENABLED", "VMS",
		       "WEIGHT", "CAP", "GPUS", "DESCRIPTION");
		for (size_t i = 0; i < count; i++) {
			sanitize(pools[i].pool_name, name, sizeof(name));
			sanitize(pools[i].description, desc, sizeof(desc));
			vgpu_gpus_format(pools[i].gpus, gpus);
			printf("%-4c %-16s %-7s %-5d %-6d %3d%% %-8s %s\n", pools[i].pool_id, name,
			       pools[i].enabled ? "yes" : "no", pools[i].vm_count, pools[i].weight,
			       pools[i].cap_percent, gpus, desc);
		}
		ex = EXIT_OK;
	}
	free(pools);
	vgpu_db_close(db);
	return ex;
}

int cmd_show_pool(struct cli *cli)
{
	struct vgpu_pool_info pool;
	struct vgpu_vm_config *vms = NULL;
	size_t count = 0;
	int rc, ex;
	vgpu_db *db = cli_open_db(cli, &ex);

	if (!db)
		return ex;
	rc = vgpu_get_pool_info(db, cli->pool, &pool);
	if (rc == VGPU_OK)
		rc = vgpu_list_vms(db, cli->pool, -1, &vms, &count);
	if (rc != VGPU_OK) {
		ex = cli_fail(db, rc, "cannot show the pool");
		vgpu_db_close(db);
		return ex;
	}
	if (cli->json) {
		json_t *arr = json_array();
		json_t *obj = json_pool(&pool);

		for (size_t i = 0; i < count; i++)
			json_array_append_new(arr, json_vm(&vms[i]));
		json_object_set_new(obj, "vms", arr);
		ex = print_json(obj);
	} else {
		char name[VGPU_NAME_MAX + 1], desc[VGPU_DESCRIPTION_MAX + 1];

		sanitize(pool.pool_name, name, sizeof(name));
		sanitize(pool.description, desc, sizeof(desc));
		printf("Pool %c: %s\n", pool.pool_id, name);
		printf("  Description: %s\n", *desc ? desc : "-");
		char gpus[96];

		vgpu_gpus_format(pool.gpus, gpus);
		printf("  Enabled:     %s\n", pool.enabled ? "yes" : "no");
		printf("  Weight:      %d\n", pool.weight);
		printf("  Cap:         %d%%%s\n", pool.cap_percent,
		       pool.cap_percent == VGPU_CAP_PERCENT_MAX ? " (none)" : "");
		printf("  GPUs:        %s\n", gpus);
		printf("  VMs:         %d\n", pool.vm_count);
		printf("  Created:     %s\n", pool.created_at);
		printf("  Updated:     %s\n", pool.updated_at);
		if (count) {
			printf("\n");
			print_vm_rows(vms, count);
		}
		ex = EXIT_OK;
	}
	free(vms);
	vgpu_db_close(db);
	return ex;
}

/* The pool options given, as library settings. */
static struct vgpu_pool_settings given_settings(const struct cli *cli)
{
	struct vgpu_pool_settings st = VGPU_POOL_SETTINGS_INIT;

	if (cli->given & OPT_NAME)
		st.pool_name = cli->pool_name;
	if (cli->given & OPT_DESCRIPTION)
		st.description = cli->description;
	if (cli->given & OPT_WEIGHT)
		st.weight = cli->weight;
	if (cli->given & OPT_CAP)
		st.cap_percent = cli->cap_percent;
	if (cli->given & OPT_GPUS)
		st.gpus = cli->gpus;
	return st;
}

static void print_settings(const struct vgpu_pool_info *p)
{
	char gpus[96];

	vgpu_gpus_format(p->gpus, gpus);
	printf("Pool %c: weight %d, cap %d%%, GPUs %s.\n", p->pool_id, p->weight, p->cap_percent,
	       gpus);
}

int cmd_create_pool(struct cli *cli)
{
	struct vgpu_pool_settings st = given_settings(cli);
	struct vgpu_pool_info info;
	int rc, ex;
	vgpu_db *db = cli_open_db(cli, &ex);

	if (!db)
		return ex;
	rc = vgpu_create_pool(db, cli->pool, &st);
	if (rc == VGPU_OK)
		rc = vgpu_get_pool_info(db, cli->pool, &info);
	if (rc != VGPU_OK) {
		ex = cli_fail(db, rc, "cannot create the pool");
	} else {
		printf("Created pool %c.\n", info.pool_id);
		print_settings(&info);
		ex = EXIT_OK;
	}
	vgpu_db_close(db);
	return ex;
}

int cmd_update_pool(struct cli *cli)
{
	struct vgpu_pool_settings st = given_settings(cli);
	struct vgpu_pool_info info;
	int rc, ex;
	vgpu_db *db;

	if (!(cli->given & (OPT_NAME | OPT_DESCRIPTION | OPT_WEIGHT | OPT_CAP | OPT_GPUS))) {
		print_error("update-pool needs at least one of --name, --description, --weight, "
			    "--cap, --gpus");
		return EXIT_USAGE;
	}
	db = cli_open_db(cli, &ex);
	if (!db)
		return ex;
	rc = vgpu_update_pool(db, cli->pool, &st);
	if (rc == VGPU_OK)
		rc = vgpu_get_pool_info(db, cli->pool, &info);
	if (rc != VGPU_OK) {
		ex = cli_fail(db, rc, "cannot change the pool");
	} else {
		print_settings(&info);
		printf("A running mediator applies it at its next registry read.\n");
		ex = EXIT_OK;
	}
	vgpu_db_close(db);
	return ex;
}

int cmd_delete_pool(struct cli *cli)
{
	int rc, ex;
	vgpu_db *db = cli_open_db(cli, &ex);

	if (!db)
		return ex;
	rc = vgpu_delete_pool(db, cli->pool);
	if (rc != VGPU_OK) {
		ex = cli_fail(db, rc, "cannot delete the pool");
	} else {
		printf("Deleted pool %c.\n", cli->pool);
		ex = EXIT_OK;
	}
	vgpu_db_close(db);
	return ex;
}
