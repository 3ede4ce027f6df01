/*
 * budget.c - per-VM and host-wide resource accounting (see budget.h).
 *
 * One mutex: a take checks the VM's and the host's figure and adds to
 * both as one step, and a take or give is a few additions, at most once
 * per request, connection or window. Never: let a figure go below zero (a
 * give of more than is held would be a bug: it is clamped), or allocate
 * after vgpu_budget_new.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "vgpu_error.h"

struct vm_figures {
	uint64_t held[VGPU_BUDGET_KINDS];
	uint64_t refused[VGPU_BUDGET_KINDS];
};

struct vgpu_budget {
	pthread_mutex_t lock;
	uint32_t max_vms;
	struct vgpu_budget_limits limits;
	uint64_t total[VGPU_BUDGET_KINDS];  /* held by all VMs */
	struct vm_figures vm[];             /* max_vms of them */
};

static const char *const kind_names[VGPU_BUDGET_KINDS] = {
	"bytes", "requests", "connections", "windows", "window_bytes",
};

const char *vgpu_budget_kind_name(enum vgpu_budget_kind kind)
{
	return (unsigned)kind < VGPU_BUDGET_KINDS ? kind_names[kind] : "?";
}

int vgpu_budget_new(uint32_t max_vms, const struct vgpu_budget_limits *limits,
		    struct vgpu_budget **ret)
{
	struct vgpu_budget *b;
	size_t size;

	if (!ret || !limits || max_vms == 0)
		return VGPU_INVALID_PARAM;
	if (__builtin_mul_overflow((size_t)max_vms, sizeof(b->vm[0]), &size) ||
	    __builtin_add_overflow(size, sizeof(*b), &size))
		return VGPU_NO_MEMORY;
	b = calloc(1, size);
	if (!b)
		return VGPU_NO_MEMORY;
	if (pthread_mutex_init(&b->lock, NULL) != 0) {
		free(b);
		return VGPU_ERROR;
	}
	b->max_vms = max_vms;
	b->limits = *limits;
	*ret = b;
	return VGPU_OK;
}

void vgpu_budget_free(struct vgpu_budget *b)
{
	if (!b)
		return;
	pthread_mutex_destroy(&b->lock);
	free(b);
}

static int take(struct vgpu_budget *b, uint32_t slot, enum vgpu_budget_kind kind,
		uint64_t amount, bool count)
{
	int rc = VGPU_OK;

	if (slot >= b->max_vms || (unsigned)kind >= VGPU_BUDGET_KINDS)
		return VGPU_INVALID_PARAM;
	pthread_mutex_lock(&b->lock);
	struct vm_figures *v = &b->vm[slot];
	if (amount > b->limits.vm[kind] || amount > b->limits.total[kind])
		rc = VGPU_LIMIT;
	else if (amount > b->limits.vm[kind] - v->held[kind] ||
		 amount > b->limits.total[kind] - b->total[kind])
		rc = VGPU_BUSY;
	if (rc == VGPU_OK) {
		v->held[kind] += amount;
		b->total[kind] += amount;
	} else if (count) {
		v->refused[kind]++;
	}
	pthread_mutex_unlock(&b->lock);
	return rc;
}

int vgpu_budget_take(struct vgpu_budget *b, uint32_t slot, enum vgpu_budget_kind kind,
		     uint64_t amount)
{
	return take(b, slot, kind, amount, true);
}

int vgpu_budget_try(struct vgpu_budget *b, uint32_t slot, enum vgpu_budget_kind kind,
		    uint64_t amount)
{
	return take(b, slot, kind, amount, false);
}

void vgpu_budget_give(struct vgpu_budget *b, uint32_t slot, enum vgpu_budget_kind kind,
		      uint64_t amount)
{
	if (slot >= b->max_vms || (unsigned)kind >= VGPU_BUDGET_KINDS || amount == 0)
		return;
	pthread_mutex_lock(&b->lock);
	struct vm_figures *v = &b->vm[slot];
	if (amount > v->held[kind])
		amount = v->held[kind];
	v->held[kind] -= amount;
	b->total[kind] -= amount;
	pthread_mutex_unlock(&b->lock);
}

bool vgpu_budget_idle(struct vgpu_budget *b, uint32_t slot)
{
	bool idle = true;

	if (slot >= b->max_vms)
		return true;
	pthread_mutex_lock(&b->lock);
	for (int k = 0; k < VGPU_BUDGET_KINDS; k++)
		idle = idle && b->vm[slot].held[k] == 0;
	pthread_mutex_unlock(&b->lock);
	return idle;
}

void vgpu_budget_reset(struct vgpu_budget *b, uint32_t slot)
{
	if (slot >= b->max_vms)
		return;
	pthread_mutex_lock(&b->lock);
	memset(b->vm[slot].refused, 0, sizeof(b->vm[slot].refused));
	pthread_mutex_unlock(&b->lock);
}

void vgpu_budget_usage(struct vgpu_budget *b, uint32_t slot, struct vgpu_budget_usage *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (slot >= b->max_vms)
		return;
	pthread_mutex_lock(&b->lock);
	memcpy(ret->held, b->vm[slot].held, sizeof(ret->held));
	memcpy(ret->refused, b->vm[slot].refused, sizeof(ret->refused));
	memcpy(ret->limit, b->limits.vm, sizeof(ret->limit));
	pthread_mutex_unlock(&b->lock);
}
