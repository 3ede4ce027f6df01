/* SPDX-License-Identifier: MIT */
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
#include "vgpu_mutex.h"

struct vm_figures {
	uint64_t held[VGPU_BUDGET_KINDS];
	uint64_t refused[VGPU_BUDGET_KINDS];
	double pin_tokens;     /* bytes it may pin now, as of pin_ns */
	uint64_t pin_ns;       /* 0: a full bucket */
	uint64_t pin_refused;
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
	if (vgpu_mutex_init(&b->lock) != 0) {
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

int vgpu_budget_pin(struct vgpu_budget *b, uint32_t slot, uint64_t bytes, uint64_t now_ns)
{
	int rc = VGPU_OK;

	if (slot >= b->max_vms)
		return VGPU_INVALID_PARAM;
	if (b->limits.pin_rate == 0 || bytes == 0)
		return VGPU_OK;
	pthread_mutex_lock(&b->lock);
	struct vm_figures *v = &b->vm[slot];
	double burst = (double)b->limits.pin_burst;
	if (v->pin_ns == 0) {
		v->pin_tokens = burst;
		v->pin_ns = now_ns;
	} else if (now_ns > v->pin_ns) { /* an older reading (another thread's) adds nothing */
		v->pin_tokens += (double)b->limits.pin_rate * (double)(now_ns - v->pin_ns) / 1e9;
		if (v->pin_tokens > burst)
			v->pin_tokens = burst;
		v->pin_ns = now_ns;
	}
	if (v->pin_tokens >= (double)bytes) {
		v->pin_tokens -= (double)bytes;
	} else {
		v->pin_refused++;
		rc = VGPU_BUSY;
	}
	pthread_mutex_unlock(&b->lock);
	return rc;
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
	b->vm[slot].pin_ns = 0;
	b->vm[slot].pin_refused = 0;
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
	ret->pin_rate = b->limits.pin_rate;
	ret->pin_refused = b->vm[slot].pin_refused;
	pthread_mutex_unlock(&b->lock);
}

int vgpu_budget_take_window(struct vgpu_budget *b, uint32_t slot, uint64_t size, bool count)
{
	int (*take_fn)(struct vgpu_budget *, uint32_t, enum vgpu_budget_kind, uint64_t) =
		count ? vgpu_budget_take : vgpu_budget_try;
	int rc = take_fn(b, slot, VGPU_BUDGET_WINDOWS, 1);

	if (rc != VGPU_OK)
		return rc;
	rc = take_fn(b, slot, VGPU_BUDGET_WINDOW_BYTES, size);
	if (rc != VGPU_OK)
		vgpu_budget_give(b, slot, VGPU_BUDGET_WINDOWS, 1);
	return rc;
}

void vgpu_budget_give_window(struct vgpu_budget *b, uint32_t slot, uint64_t size)
{
	vgpu_budget_give(b, slot, VGPU_BUDGET_WINDOW_BYTES, size);
	vgpu_budget_give(b, slot, VGPU_BUDGET_WINDOWS, 1);
}
