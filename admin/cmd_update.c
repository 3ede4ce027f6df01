/* SPDX-License-Identifier: MIT */
/*
 * cmd_update.c - set-pool, set-priority, set-vm-id and update-vm. Each builds
 * one vgpu_vm_update, drops the fields that would not change, checks what it
 * can before anything is touched, and hands over to restart.c (which
 * restarts a running VM for a new vm_id only: pool and priority apply
 * live). And set-sched, whose settings (weight, rate limit, memory quota)
 * the mediator applies live: no restart.
 */
#include <string.h>

#include "cli.h"

static int change_vm(struct cli *cli, struct vgpu_vm_update upd)
{
	struct vgpu_vm_config cur;
	int rc, ex;
	vgpu_db *db = cli_open_db(cli, &ex);

	if (!db)
		return ex;
	rc = vgpu_get_vm_config(db, cli->vm_uuid, &cur);
	if (rc != VGPU_OK) {
		ex = cli_fail(db, rc, "cannot change the VM");
		goto out;
	}
	if (upd.vm_name && strcmp(upd.vm_name, cur.vm_name) == 0)
		upd.vm_name = NULL;
	if (upd.pool_id == cur.pool_id)
		upd.pool_id = 0;
	if (upd.priority == cur.priority)
		upd.priority = -1;
	if (upd.vm_id == cur.vm_id)
		upd.vm_id = 0;
	if (!upd.vm_name && !upd.pool_id && upd.priority == -1 && !upd.vm_id) {
		printf("VM %s already has these settings; nothing to change.\n", cur.vm_uuid);
		ex = EXIT_OK;
		goto out;
	}
	if (upd.vm_id) {
		bool in_use;

		rc = vgpu_vm_id_in_use(db, upd.vm_id, &in_use);
		if (rc != VGPU_OK) {
			ex = cli_fail(db, rc, "cannot check the vm_id");
			goto out;
		}
		if (in_use) {
			print_error("vm_id %d is already used by another VM; nothing was changed.",
				    upd.vm_id);
			ex = EXIT_CONFLICT;
			goto out;
		}
	}
	ex = apply_change(cli, db, &cur, &upd);
out:
	vgpu_db_close(db);
	return ex;
}

int cmd_set_pool(struct cli *cli)
{
	struct vgpu_vm_update upd = VGPU_VM_UPDATE_INIT;

	upd.pool_id = cli->pool;
	return change_vm(cli, upd);
}

int cmd_set_priority(struct cli *cli)
{
	struct vgpu_vm_update upd = VGPU_VM_UPDATE_INIT;

	upd.priority = cli->priority;
	return change_vm(cli, upd);
}

int cmd_set_vm_id(struct cli *cli)
{
	struct vgpu_vm_update upd = VGPU_VM_UPDATE_INIT;

	upd.vm_id = cli->vm_id;
	return change_vm(cli, upd);
}

int cmd_update_vm(struct cli *cli)
{
	struct vgpu_vm_update upd = VGPU_VM_UPDATE_INIT;

	if (!(cli->given & (OPT_VM_NAME | OPT_POOL | OPT_PRIORITY | OPT_VM_ID))) {
		print_error("update-vm needs at least one of --vm-name, --pool, --priority, --vm-id");
		return EXIT_USAGE;
	}
	if (cli->given & OPT_VM_NAME)
		upd.vm_name = cli->vm_name;
	if (cli->given & OPT_POOL)
		upd.pool_id = cli->pool;
	if (cli->given & OPT_PRIORITY)
		upd.priority = cli->priority;
	if (cli->given & OPT_VM_ID)
		upd.vm_id = cli->vm_id;
	return change_vm(cli, upd);
}

int cmd_set_sched(struct cli *cli)
{
	struct vgpu_vm_update upd = VGPU_VM_UPDATE_INIT;
	struct vgpu_vm_config vm;
	int rc, ex;
	vgpu_db *db;

	if (!(cli->given & (OPT_WEIGHT | OPT_RATE_LIMIT | OPT_MEM_QUOTA))) {
		print_error("set-sched needs at least one of --weight, --rate-limit, --mem-quota");
		return EXIT_USAGE;
	}
	if (cli->given & OPT_WEIGHT)
		upd.weight = cli->weight;
	if (cli->given & OPT_RATE_LIMIT)
		upd.rate_limit_ms = cli->rate_limit_ms;
	if (cli->given & OPT_MEM_QUOTA)
		upd.mem_quota_mib = cli->mem_quota_mib;
	db = cli_open_db(cli, &ex);
	if (!db)
		return ex;
	rc = vgpu_update_vm(db, cli->vm_uuid, &upd);
	if (rc == VGPU_OK)
		rc = vgpu_get_vm_config(db, cli->vm_uuid, &vm);
	if (rc != VGPU_OK) {
		ex = cli_fail(db, rc, "cannot change the VM");
	} else {
		printf("VM %s: weight %d in pool %c, ", vm.vm_uuid, vm.weight, vm.pool_id);
		if (vm.rate_limit_ms)
			printf("at most %d GPU-ms per second, ", vm.rate_limit_ms);
		else
			printf("no rate limit, ");
		if (vm.mem_quota_mib)
			printf("at most %lld MiB of device memory.\n", vm.mem_quota_mib);
		else
			printf("no memory quota.\n");
		printf("A running mediator applies it at its next registry read; the VM keeps "
		       "running.\n");
		ex = EXIT_OK;
	}
	vgpu_db_close(db);
	return ex;
}
