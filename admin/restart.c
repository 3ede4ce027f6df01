/* SPDX-License-Identifier: MIT */
/*
 * restart.c - applying a change of name, pool, priority or vm_id to a VM.
 * A new vm_id goes through the seed's restart workflow: show current and
 * new settings, ask, shut the VM down (forced after a timeout), update the
 * registry, start the VM; its device shows the vm_id QEMU was started with.
 * Everything else only updates the registry: the mediator applies a new
 * pool or priority within a second, to the VM's requests and to its
 * device's registers (IDENTITY, docs/specs/vgpu-stub-1.1.md), so a
 * running VM is not restarted for it.
 *
 * Must never: leave the registry holding new values when the VM could not be
 * restarted with them, or leave a VM halted that was running when a step
 * failed (unless even starting it again failed, which is then said loudly and
 * exits with EXIT_VM_STATE).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "xe.h"

static void print_plan(const struct vgpu_vm_config *cur, const struct vgpu_vm_update *upd)
{
	char name_cur[VGPU_NAME_MAX + 1], name_new[VGPU_NAME_MAX + 1];

	printf("VM %s\n", cur->vm_uuid);
	printf("  %-9s %-24s %s\n", "SETTING", "CURRENT", "NEW");
	if (upd->vm_name) {
		sanitize(cur->vm_name, name_cur, sizeof(name_cur));
		sanitize(upd->vm_name, name_new, sizeof(name_new));
		printf("  %-9s %-24s %s\n", "name", *name_cur ? name_cur : "-",
		       *name_new ? name_new : "-");
	}
	if (upd->pool_id)
		printf("  %-9s %-24c %c\n", "pool", cur->pool_id, upd->pool_id);
	if (upd->priority != -1)
		printf("  %-9s %-24s %s\n", "priority", vgpu_priority_name(cur->priority),
		       vgpu_priority_name(upd->priority));
	if (upd->vm_id)
		printf("  %-9s %-24d %d\n", "vm_id", cur->vm_id, upd->vm_id);
}

/* The update that puts back what @upd changed. */
static struct vgpu_vm_update undo_of(const struct vgpu_vm_config *cur,
				     const struct vgpu_vm_update *upd)
{
	struct vgpu_vm_update undo = VGPU_VM_UPDATE_INIT;

	if (upd->vm_name)
		undo.vm_name = cur->vm_name;
	if (upd->pool_id)
		undo.pool_id = cur->pool_id;
	if (upd->priority != -1)
		undo.priority = cur->priority;
	if (upd->vm_id)
		undo.vm_id = cur->vm_id;
	return undo;
}

/*
 * The VM on this host that runs registry entry @cur: the one with its UUID,
 * else the one VM whose name-label is its name (CloudStack recreates VMs under
 * new UUIDs and keeps their names; vgpu-qemu-wrapper matches the same way).
 * VGPU_OK with @ret_uuid and @ret_state, XE_NO_SUCH_VM, or an xe failure.
 */
static int locate(const struct cli *cli, const struct vgpu_vm_config *cur,
		  char ret_uuid[VGPU_UUID_STRLEN + 1], char ret_state[XE_POWER_MAX + 1],
		  char *err, size_t err_size)
{
	struct xe_vm *host;
	size_t n_host, hits = 0, hit = 0;
	int rc = xe_power_state(cur->vm_uuid, cli->timeout_s, ret_state, err, err_size);

	if (rc == VGPU_OK)
		memcpy(ret_uuid, cur->vm_uuid, VGPU_UUID_STRLEN + 1);
	if (rc != XE_NO_SUCH_VM || !cur->vm_name[0])
		return rc;
	rc = xe_list_vms(cli->timeout_s, &host, &n_host, err, err_size);
	if (rc != VGPU_OK)
		return rc;
	for (size_t h = 0; h < n_host; h++) {
		if (strcmp(host[h].name_label, cur->vm_name) == 0) {
			hit = h;
			hits++;
		}
	}
	if (hits == 1) {
		memcpy(ret_uuid, host[hit].uuid, VGPU_UUID_STRLEN + 1);
		snprintf(ret_state, XE_POWER_MAX + 1, "%s", host[hit].power_state);
		printf("VM %s is not on this host; VM %s has its name and is used instead.\n",
		       cur->vm_uuid, ret_uuid);
	} else if (hits > 1) {
		printf("Several VMs on this host are named like the registered VM; none is "
		       "restarted.\n");
	}
	free(host);
	return hits == 1 ? VGPU_OK : XE_NO_SUCH_VM;
}

static int confirm(const struct cli *cli)
{
	char line[32];
	size_t len;

	if (cli->yes)
		return EXIT_OK;
	if (!isatty(STDIN_FILENO)) {
		print_error("applying this restarts the VM; stdin is not a terminal, so confirm "
			    "with --yes (or use --no-restart). Nothing was changed.");
		return EXIT_NOT_CONFIRMED;
	}
	printf("Do you want to apply these settings? (yes/no): ");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin)) {
		printf("\n");
		line[0] = '\0';
	}
	len = strcspn(line, "\r\n");
	line[len] = '\0';
	if (strcasecmp(line, "yes") == 0 || strcasecmp(line, "y") == 0)
		return EXIT_OK;
	printf("Cancelled: nothing was changed.\n");
	return EXIT_NOT_CONFIRMED;
}

static int update_registry(vgpu_db *db, const char *uuid, const struct vgpu_vm_update *upd)
{
	int rc = vgpu_update_vm(db, uuid, upd);

	if (rc != VGPU_OK)
		return cli_fail(db, rc, "cannot update the registry");
	return EXIT_OK;
}

/* The VM was running and is now halted; a later step failed. Start it again
 * with what the registry now holds. */
static int restore_running(const struct cli *cli, const char *uuid, int ex)
{
	char err[512];

	printf("Starting VM %s again with its previous settings...\n", uuid);
	if (xe_start(uuid, cli->timeout_s, err, sizeof(err)) != VGPU_OK) {
		print_error("%s", err);
		print_error("VM %s was running and is now HALTED: start it by hand "
			    "(xe vm-start uuid=%s).", uuid, uuid);
		return EXIT_VM_STATE;
	}
	printf("VM %s is running again with its previous settings.\n", uuid);
	return ex;
}

static int restart_with_change(const struct cli *cli, vgpu_db *db,
			       const struct vgpu_vm_config *cur, const struct vgpu_vm_update *upd,
			       const char *host_uuid)
{
	struct vgpu_vm_update undo = undo_of(cur, upd);
	char err[512];
	int ex;

	printf("Shutting down VM %s...\n", host_uuid);
	if (xe_shutdown(host_uuid, 0, cli->timeout_s, err, sizeof(err)) != VGPU_OK) {
		printf("Clean shutdown failed (%s); forcing.\n", err);
		if (xe_shutdown(host_uuid, 1, cli->timeout_s, err, sizeof(err)) != VGPU_OK) {
			print_error("cannot shut VM %s down: %s", host_uuid, err);
			print_error("the registry was not changed.");
			return EXIT_ERROR;
		}
	}
	printf("Updating the registry...\n");
	ex = update_registry(db, cur->vm_uuid, upd);
	if (ex != EXIT_OK) {
		print_error("the registry was not changed.");
		return restore_running(cli, host_uuid, ex);
	}
	printf("Starting VM %s...\n", host_uuid);
	if (xe_start(host_uuid, cli->timeout_s, err, sizeof(err)) != VGPU_OK) {
		print_error("cannot start VM %s with the new settings: %s", host_uuid, err);
		if (update_registry(db, cur->vm_uuid, &undo) != EXIT_OK) {
			print_error("the registry could NOT be restored; VM %s is halted.",
				    host_uuid);
			return EXIT_VM_STATE;
		}
		print_error("the registry was restored to the previous settings.");
		return restore_running(cli, host_uuid, EXIT_ERROR);
	}
	printf("Done: VM %s was restarted with the new settings.\n", host_uuid);
	return EXIT_OK;
}

int apply_change(const struct cli *cli, vgpu_db *db, const struct vgpu_vm_config *cur,
		 const struct vgpu_vm_update *upd)
{
	/* Shown by the device only from its start: a restart applies it. */
	bool restart = upd->vm_id != 0;
	bool live = upd->pool_id || upd->priority != -1;
	char state[XE_POWER_MAX + 1], host_uuid[VGPU_UUID_STRLEN + 1], err[512];
	int rc, ex;

	print_plan(cur, upd);
	if (!restart || cli->no_restart) {
		ex = update_registry(db, cur->vm_uuid, upd);
		if (ex != EXIT_OK)
			return ex;
		if (restart)
			printf("Registry updated. A running mediator applies it within a second; the "
			       "VM's device shows the new vm_id after its next start%s.\n",
			       live ? " (its new pool and priority at once)" : "");
		else if (live)
			printf("Registry updated. A running mediator applies it within a second, to "
			       "the VM's requests and to its device's registers: no restart needed.\n");
		else
			printf("Registry updated.\n");
		return ex;
	}

	rc = locate(cli, cur, host_uuid, state, err, sizeof(err));
	if (rc == XE_NO_SUCH_VM) {
		ex = update_registry(db, cur->vm_uuid, upd);
		if (ex == EXIT_OK)
			printf("Registry updated. The VM is not on this host; the change takes "
			       "effect when it starts.\n");
		return ex;
	}
	if (rc != VGPU_OK) {
		print_error("cannot tell whether the VM is running: %s", err);
		print_error("nothing was changed; --no-restart changes only the registry.");
		return EXIT_ERROR;
	}
	if (strcmp(state, "halted") == 0) {
		ex = update_registry(db, cur->vm_uuid, upd);
		if (ex == EXIT_OK)
			printf("Registry updated. The VM is halted; the change takes effect at its "
			       "next start.\n");
		return ex;
	}
	if (strcmp(state, "running") != 0) {
		char shown[XE_POWER_MAX + 1];

		sanitize(state, shown, sizeof(shown));
		print_error("VM %s is %s: resume or shut it down first, or use --no-restart. "
			    "Nothing was changed.", cur->vm_uuid, shown);
		return EXIT_ERROR;
	}
	printf("The VM is running: applying this shuts it down and starts it again.\n");
	ex = confirm(cli);
	if (ex != EXIT_OK)
		return ex;
	return restart_with_change(cli, db, cur, upd, host_uuid);
}
