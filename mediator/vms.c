/* SPDX-License-Identifier: MIT */
/*
 * vms.c - the mediator's VM table, kept equal to the registry: polled every
 * registry_poll_ms, so a VM registered, removed, or moved to another pool or
 * priority takes effect without a restart of the VM or the mediator. A VM's
 * pool and priority come from here, never from its requests.
 *
 * Must never: drop the whole table because one read of the registry failed
 * (a failed poll keeps the last good table and logs), or give a removed
 * VM's slot to another while anything of the old VM is held.
 */
#include <stdlib.h>
#include <string.h>

#include "mediator.h"

struct vgpu_vm *vgpu_vm_by_uuid(struct mediator *m, const char *uuid)
{
	for (long long i = 0; i < m->set.max_vms; i++)
		if (m->vms[i].in_use && strcmp(m->vms[i].uuid, uuid) == 0)
			return &m->vms[i];
	return NULL;
}

static void vm_remove(struct mediator *m, struct vgpu_vm *vm)
{
	struct vgpu_queue_item *list = NULL;

	vgpu_log(LOG_NOTICE, "VM %s (vm_id %d) left the registry", vm->uuid, vm->vm_id);
	for (int t = 0; t < m->n_transports; t++)
		m->transports[t]->vm_removed(m, vm);
	/* Its queued requests have no channel left to answer on. */
	vgpu_queue_drain_vm(m->queue, vm->slot, &list);
	while (list) {
		struct vgpu_request *req = (struct vgpu_request *)list;

		list = list->next;
		vgpu_request_fail(req, VGPU_DENIED);
	}
	vm->in_use = false;
}

static void vm_add(struct mediator *m, const struct vgpu_vm_config *cfg)
{
	struct vgpu_vm *vm = NULL;

	/* A removed VM's slot only once nothing of it is held any more: its
	 * late answers and statistics must not reach the VM after it. */
	for (long long i = 0; i < m->set.max_vms && !vm; i++)
		if (!m->vms[i].in_use && vgpu_budget_idle(m->budget, (uint32_t)i))
			vm = &m->vms[i];
	if (!vm) {
		/* Tried at every registry read until a slot frees: rate-limited. */
		static struct vgpu_ratelimit rl;

		vgpu_log_guest(&rl, LOG_ERR, "VM %s not served yet: max_vms (%lld) reached, or "
			       "removed VMs' work is still finishing", cfg->vm_uuid, m->set.max_vms);
		return;
	}
	memset(vm, 0, sizeof(*vm));
	vm->slot = (uint32_t)(vm - m->vms);
	memcpy(vm->uuid, cfg->vm_uuid, sizeof(vm->uuid));
	memcpy(vm->name, cfg->vm_name, sizeof(vm->name));
	vm->vm_id = cfg->vm_id;
	vm->pool = cfg->pool_id;
	vm->priority = cfg->priority;
	vm->in_use = true;
	vgpu_stats_reset_vm(m->stats, vm->slot);
	vgpu_budget_reset(m->budget, vm->slot);
	for (int t = 0; t < m->n_transports; t++) {
		if (m->transports[t]->vm_added(m, vm) != VGPU_OK) {
			vgpu_log(LOG_ERR, "VM %s: the %s transport cannot serve it", vm->uuid,
				 m->transports[t]->name);
		}
	}
	vgpu_log(LOG_NOTICE, "serving VM %s (vm_id %d, pool %c, priority %s)", vm->uuid,
		 vm->vm_id, vm->pool, vgpu_priority_name(vm->priority));
}

static void vm_update(struct mediator *m, struct vgpu_vm *vm, const struct vgpu_vm_config *cfg)
{
	bool new_id = vm->vm_id != cfg->vm_id;

	if (!new_id && vm->pool == cfg->pool_id && vm->priority == cfg->priority &&
	    strcmp(vm->name, cfg->vm_name) == 0)
		return;
	vgpu_log(LOG_NOTICE, "VM %s now vm_id %d, pool %c, priority %s", vm->uuid, cfg->vm_id,
		 cfg->pool_id, vgpu_priority_name(cfg->priority));
	vm->vm_id = cfg->vm_id;
	vm->pool = cfg->pool_id;
	vm->priority = cfg->priority;
	memcpy(vm->name, cfg->vm_name, sizeof(vm->name));
	for (int t = 0; new_id && t < m->n_transports; t++)
		if (m->transports[t]->vm_updated)
			m->transports[t]->vm_updated(m, vm);
}

int vgpu_vms_reload(struct mediator *m)
{
	struct vgpu_vm_config *cfg;
	size_t n;
	int rc;

	if (!m->db) {
		char err[512];

		rc = vgpu_db_init(m->set.db, 0, &m->db, err, sizeof(err));
		if (rc != VGPU_OK) {
			vgpu_log(LOG_ERR, "%s", err);
			return rc;
		}
	}
	rc = vgpu_list_vms(m->db, 0, -1, &cfg, &n);
	if (rc != VGPU_OK) {
		vgpu_log(LOG_ERR, "reading the registry: %s (keeping the last VM table)",
			 vgpu_db_errmsg(m->db));
		vgpu_db_close(m->db);
		m->db = NULL; /* reopen next time: the file may have been replaced */
		return rc;
	}
	for (long long i = 0; i < m->set.max_vms; i++) {
		struct vgpu_vm *vm = &m->vms[i];
		bool found = false;

		for (size_t j = 0; j < n && vm->in_use && !found; j++) {
			if (strcmp(cfg[j].vm_uuid, vm->uuid) == 0) {
				vm_update(m, vm, &cfg[j]);
				found = true;
			}
		}
		if (vm->in_use && !found)
			vm_remove(m, vm);
	}
	for (size_t j = 0; j < n; j++)
		if (!vgpu_vm_by_uuid(m, cfg[j].vm_uuid))
			vm_add(m, &cfg[j]);
	free(cfg);
	return VGPU_OK;
}
