/* SPDX-License-Identifier: MIT */
/*
 * vms.c - the mediator's VM table, kept equal to the registry: polled every
 * registry_poll_ms, so a VM registered, removed, or moved to another pool or
 * priority, or a pool's or VM's scheduler settings changed (weight, cap,
 * GPUs, rate limit), takes effect without a restart of the VM or the
 * mediator, for its queued work too: the queue's pools and VMs follow the
 * registry at each read (pools first, since VMs refer to them). A VM's
 * pool and priority come from here, never from its requests; a change of
 * them or of the vm_id is passed to the transports (vm_updated: the
 * device's registers follow it, the spool's owner the vm_id).
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

/* The GPUs of a registry mask (0: all) among the queue's. */
uint64_t vgpu_gpu_mask(const struct mediator *m, unsigned gpus)
{
	uint64_t all = m->n_gpus >= 64 ? UINT64_MAX : (1ull << m->n_gpus) - 1;

	return gpus ? (uint64_t)gpus & all : all;
}

static void pool_sync(struct mediator *m, const struct vgpu_pool_info *p)
{
	struct vgpu_pool_state *st = &m->pools[vgpu_pool_index(p->pool_id)];
	uint64_t mask = vgpu_gpu_mask(m, p->gpus);

	if (st->defined && st->weight == p->weight && st->cap_percent == p->cap_percent &&
	    st->gpus == p->gpus)
		return;
	if (mask == 0) {
		/* Only GPUs this host does not have: keep the last settings. */
		static struct vgpu_ratelimit rl;

		vgpu_log_guest(&rl, LOG_ERR, "pool %c: none of its GPUs (mask 0x%x) is on this host "
			       "(%u GPU%s); its settings are not applied", p->pool_id, p->gpus,
			       m->n_gpus, m->n_gpus == 1 ? "" : "s");
		return;
	}
	if (vgpu_queue_set_pool(m->queue, vgpu_pool_index(p->pool_id), (uint32_t)p->weight,
				(uint32_t)p->cap_percent * 10, mask) != VGPU_OK) {
		vgpu_log(LOG_ERR, "pool %c: the scheduler refused its settings", p->pool_id);
		return;
	}
	vgpu_log(LOG_NOTICE, "pool %c: weight %d, cap %d%%, GPUs 0x%llx", p->pool_id, p->weight,
		 p->cap_percent, (unsigned long long)mask);
	st->defined = true;
	st->weight = p->weight;
	st->cap_percent = p->cap_percent;
	st->gpus = p->gpus;
}

/* @vm's scheduling settings to the queue. */
static int vm_sync(struct mediator *m, struct vgpu_vm *vm)
{
	int rc = vgpu_queue_set_vm(m->queue, vm->slot, vgpu_pool_index(vm->pool), vm->priority,
				   (uint32_t)vm->weight, (uint64_t)vm->rate_limit_ms * 1000000u);

	return rc == VGPU_OK ? vgpu_queue_set_vm_quota(m->queue, vm->slot,
						       (uint64_t)vm->mem_quota_mib << 20)
			     : rc;
}

static void vm_remove(struct mediator *m, struct vgpu_vm *vm)
{
	struct vgpu_queue_item *list = NULL;

	vgpu_log(LOG_NOTICE, "VM %s (vm_id %d) left the registry", vm->uuid, vm->vm_id);
	vgpu_cuda_release(m, vm);
	for (int t = 0; t < m->n_transports; t++)
		m->transports[t]->vm_removed(m, vm);
	/* Its queued requests have no channel left to answer on. */
	vgpu_queue_drain_vm(m->queue, vm->slot, &list);
	while (list) {
		struct vgpu_request *req = (struct vgpu_request *)list;

		list = (struct vgpu_queue_item *)list->sched.next;
		vgpu_request_fail(req, VGPU_DENIED);
	}
	vgpu_queue_remove_vm(m->queue, vm->slot);
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
	if (vm && !m->pools[vgpu_pool_index(cfg->pool_id)].defined) {
		/* Its pool has none of this host's GPUs (pool_sync logged it):
		 * tried again at every registry read, until the pool is fixed. */
		static struct vgpu_ratelimit rl;

		vgpu_log_guest(&rl, LOG_ERR, "VM %s not served yet: its pool %c has no GPU on this "
			       "host", cfg->vm_uuid, cfg->pool_id);
		return;
	}
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
	vm->weight = cfg->weight;
	vm->rate_limit_ms = cfg->rate_limit_ms;
	vm->mem_quota_mib = cfg->mem_quota_mib;
	if (vm_sync(m, vm) != VGPU_OK) {
		vgpu_log(LOG_ERR, "VM %s: the scheduler refused its settings (pool %c unknown?)",
			 vm->uuid, vm->pool);
		return;
	}
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
	/* What the transports show the VM (spool: its uid; device: registers). */
	bool new_identity = vm->vm_id != cfg->vm_id || vm->pool != cfg->pool_id ||
			    vm->priority != cfg->priority;

	if (!new_identity && vm->weight == cfg->weight && vm->rate_limit_ms == cfg->rate_limit_ms &&
	    vm->mem_quota_mib == cfg->mem_quota_mib && strcmp(vm->name, cfg->vm_name) == 0)
		return;
	vgpu_log(LOG_NOTICE, "VM %s now vm_id %d, pool %c, priority %s, weight %d, rate limit %d "
		 "GPU-ms/s, memory quota %lld MiB", vm->uuid, cfg->vm_id, cfg->pool_id,
		 vgpu_priority_name(cfg->priority), cfg->weight, cfg->rate_limit_ms,
		 cfg->mem_quota_mib);
	vm->vm_id = cfg->vm_id;
	vm->pool = cfg->pool_id;
	vm->priority = cfg->priority;
	vm->weight = cfg->weight;
	vm->rate_limit_ms = cfg->rate_limit_ms;
	vm->mem_quota_mib = cfg->mem_quota_mib;
	memcpy(vm->name, cfg->vm_name, sizeof(vm->name));
	/* Its queued work moves with it (scheduler.h). */
	if (vm_sync(m, vm) != VGPU_OK)
		vgpu_log(LOG_ERR, "VM %s: the scheduler refused its new settings", vm->uuid);
	for (int t = 0; new_identity && t < m->n_transports; t++)
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
	struct vgpu_pool_info *pools;
	size_t n_pools;

	rc = vgpu_list_pools(m->db, &pools, &n_pools);
	if (rc == VGPU_OK) {
		for (size_t i = 0; i < n_pools; i++)
			pool_sync(m, &pools[i]);
		free(pools);
		rc = vgpu_list_vms(m->db, 0, -1, &cfg, &n);
	}
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
	vgpu_cuda_regate(m); /* priorities may have changed */
	return VGPU_OK;
}
