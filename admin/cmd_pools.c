/* SPDX-License-Identifier: MIT */
/*
 * cmd_pools.c - list-pools and show-pool.
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

		printf("%-4s %-16s %-7s %-5s %s\n", "POOL", "NAME", "ENABLED", "VMS", "DESCRIPTION");
		for (size_t i = 0; i < count; i++) {
			sanitize(pools[i].pool_name, name, sizeof(name));
			sanitize(pools[i].description, desc, sizeof(desc));
			printf("%-4c %-16s %-7s %-5d %s\n", pools[i].pool_id, name,
			       pools[i].enabled ? "yes" : "no", pools[i].vm_count, desc);
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
		printf("  Enabled:     %s\n", pool.enabled ? "yes" : "no");
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
