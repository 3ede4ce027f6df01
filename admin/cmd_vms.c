/* SPDX-License-Identifier: MIT */
/*
 * cmd_vms.c - register-vm, show-vm, list-vms and remove-vm: the commands that
 * touch only the registry, never a running VM.
 */
#include <stdlib.h>

#include "cli.h"

int cmd_register_vm(struct cli *cli)
{
	struct vgpu_vm_config vm;
	int rc, ex;
	vgpu_db *db = cli_open_db(cli, &ex);

	if (!db)
		return ex;
	rc = vgpu_register_vm(db, cli->vm_uuid, cli->vm_name,
			      (cli->given & OPT_POOL) ? cli->pool : 0,
			      (cli->given & OPT_PRIORITY) ? cli->priority : -1,
			      (cli->given & OPT_VM_ID) ? cli->vm_id : 0, &vm);
	if (rc != VGPU_OK) {
		ex = cli_fail(db, rc, "cannot register the VM");
	} else {
		printf("Registered VM %s as vm_id %d in pool %c with priority %s.\n", vm.vm_uuid,
		       vm.vm_id, vm.pool_id, vgpu_priority_name(vm.priority));
		printf("A running VM gets its vgpu device at its next start.\n");
		ex = EXIT_OK;
	}
	vgpu_db_close(db);
	return ex;
}

int cmd_show_vm(struct cli *cli)
{
	struct vgpu_vm_config vm;
	int rc, ex;
	vgpu_db *db;

	if (!(cli->given & OPT_VM_UUID) == !(cli->given & OPT_VM_NAME)) {
		print_error("show-vm needs exactly one of --vm-uuid and --vm-name");
		return EXIT_USAGE;
	}
	db = cli_open_db(cli, &ex);
	if (!db)
		return ex;
	if (cli->given & OPT_VM_UUID)
		rc = vgpu_get_vm_config(db, cli->vm_uuid, &vm);
	else
		rc = vgpu_get_vm_config_by_name(db, cli->vm_name, &vm);
	if (rc != VGPU_OK) {
		ex = cli_fail(db, rc, "cannot show the VM");
	} else if (cli->json) {
		ex = print_json(json_vm(&vm));
	} else if (cli->export_env) {
		/* For scripts (vgpu-vm-startup.sh): fixed keys, validated values. */
		printf("VGPU_VM_ID=%d\nVGPU_POOL_ID=%c\nVGPU_PRIORITY=%d\n", vm.vm_id, vm.pool_id,
		       vm.priority);
		ex = EXIT_OK;
	} else {
		char name[VGPU_NAME_MAX + 1];

		sanitize(vm.vm_name, name, sizeof(name));
		printf("VM %s\n", vm.vm_uuid);
		printf("  Name:      %s\n", *name ? name : "-");
		printf("  vm_id:     %d\n", vm.vm_id);
		printf("  Pool:      %c\n", vm.pool_id);
		printf("  Priority:  %s (%d)\n", vgpu_priority_name(vm.priority), vm.priority);
		printf("  Weight:    %d (within pool %c)\n", vm.weight, vm.pool_id);
		if (vm.rate_limit_ms)
			printf("  GPU rate:  at most %d GPU-ms per second\n", vm.rate_limit_ms);
		else
			printf("  GPU rate:  no limit\n");
		if (vm.mem_quota_mib)
			printf("  Memory:    at most %lld MiB of device memory\n", vm.mem_quota_mib);
		else
			printf("  Memory:    no quota\n");
		printf("  Created:   %s\n", vm.created_at);
		printf("  Updated:   %s\n", vm.updated_at);
		ex = EXIT_OK;
	}
	vgpu_db_close(db);
	return ex;
}

int cmd_list_vms(struct cli *cli)
{
	struct vgpu_vm_config *vms;
	size_t count;
	int rc, ex;
	vgpu_db *db = cli_open_db(cli, &ex);

	if (!db)
		return ex;
	rc = vgpu_list_vms(db, (cli->given & OPT_POOL) ? cli->pool : 0,
			   (cli->given & OPT_PRIORITY) ? cli->priority : -1, &vms, &count);
	if (rc != VGPU_OK) {
		ex = cli_fail(db, rc, "cannot list VMs");
		vgpu_db_close(db);
		return ex;
	}
	if (cli->json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < count; i++)
			json_array_append_new(arr, json_vm(&vms[i]));
		ex = print_json(json_pack("{s:o}", "vms", arr));
	} else {
		char name[VGPU_NAME_MAX + 1];

		printf("%-10s %-4s %-8s %-36s  %s\n", "VM_ID", "POOL", "PRIORITY", "UUID", "NAME");
		for (size_t i = 0; i < count; i++) {
			sanitize(vms[i].vm_name, name, sizeof(name));
			printf("%-10d %-4c %-8s %-36s  %s\n", vms[i].vm_id, vms[i].pool_id,
			       vgpu_priority_name(vms[i].priority), vms[i].vm_uuid,
			       *name ? name : "-");
		}
		ex = EXIT_OK;
	}
	free(vms);
	vgpu_db_close(db);
	return ex;
}

int cmd_remove_vm(struct cli *cli)
{
	struct vgpu_vm_config vm;
	int rc, ex;
	vgpu_db *db = cli_open_db(cli, &ex);

	if (!db)
		return ex;
	rc = vgpu_get_vm_config(db, cli->vm_uuid, &vm);
	if (rc == VGPU_OK)
		rc = vgpu_remove_vm(db, cli->vm_uuid);
	if (rc != VGPU_OK) {
		ex = cli_fail(db, rc, "cannot remove the VM");
	} else {
		printf("Removed VM %s (vm_id %d) from the registry.\n", vm.vm_uuid, vm.vm_id);
		printf("A running VM keeps its vgpu device until its next start.\n");
		ex = EXIT_OK;
	}
	vgpu_db_close(db);
	return ex;
}
