/* SPDX-License-Identifier: MIT */
/*
 * budget.h - what each VM may make the mediator hold, and what it holds
 * now (ARCHITECTURE.md principle 2: a bad client gets an error and costs
 * the others nothing).
 *
 * Every resource a client can make the mediator keep is taken from its
 * VM's budget before it is allocated and given back when it is released:
 * bytes of request and response buffers (being read, queued, running and
 * answers not yet written), requests held, connections, shared-memory
 * windows and their bytes. Bytes and window bytes also have a host-wide
 * total. Thread-safe: takes and gives on any thread (takes are on the loop
 * thread but for a window's that waits for the release of the VM's kept
 * windows, on a worker).
 */
#ifndef VGPU_BUDGET_H
#define VGPU_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

enum vgpu_budget_kind {
	VGPU_BUDGET_BYTES,        /* request and response buffers */
	VGPU_BUDGET_REQUESTS,     /* requests held: queued, running or being answered */
	VGPU_BUDGET_CONNS,        /* socket connections */
	VGPU_BUDGET_WINDOWS,      /* shared-memory windows */
	VGPU_BUDGET_WINDOW_BYTES, /* bytes of those windows (pinned memory) */
	VGPU_BUDGET_KINDS
};

/* The limit of each kind: per VM, and for all VMs together (UINT64_MAX:
 * none); and each VM's rate of new pinned memory (vgpu_budget_pin). */
struct vgpu_budget_limits {
	uint64_t vm[VGPU_BUDGET_KINDS];
	uint64_t total[VGPU_BUDGET_KINDS];
	uint64_t pin_rate;  /* bytes per second; 0: no limit */
	uint64_t pin_burst; /* bytes a VM may have pinned at once, before the rate */
};

/* One VM's figures, for statistics. */
struct vgpu_budget_usage {
	uint64_t held[VGPU_BUDGET_KINDS];
	uint64_t limit[VGPU_BUDGET_KINDS];
	uint64_t refused[VGPU_BUDGET_KINDS]; /* takes refused since the slot was taken */
	uint64_t pin_rate, pin_refused;      /* vgpu_budget_pin's limit, and its refusals */
};

struct vgpu_budget;

int vgpu_budget_new(uint32_t max_vms, const struct vgpu_budget_limits *limits,
		    struct vgpu_budget **ret);
void vgpu_budget_free(struct vgpu_budget *b);

/* The JSON/statistics name of @kind ("bytes", "requests", ...). */
const char *vgpu_budget_kind_name(enum vgpu_budget_kind kind);

/* Take @amount of @kind for VM slot @slot. VGPU_OK; VGPU_LIMIT when
 * @amount alone is more than the VM's limit or the host's total (it can
 * never fit); VGPU_BUSY
 * when it does not fit now, beside what the VM or all VMs hold. A refusal
 * changes nothing but the VM's refusal count. */
int vgpu_budget_take(struct vgpu_budget *b, uint32_t slot, enum vgpu_budget_kind kind,
		     uint64_t amount);
/* The same, but a refusal is not counted: for a caller that can make
 * room and try again (transport/shm.c's kept windows). */
int vgpu_budget_try(struct vgpu_budget *b, uint32_t slot, enum vgpu_budget_kind kind,
		    uint64_t amount);
/* Give back what a take got (any thread). */
void vgpu_budget_give(struct vgpu_budget *b, uint32_t slot, enum vgpu_budget_kind kind,
		      uint64_t amount);

/* A ring window of @size bytes (shm: or a device's): one of the VM's
 * windows and @size of its window bytes, both or neither. @count: a
 * refusal is counted (vgpu_budget_take), else not (vgpu_budget_try). */
int vgpu_budget_take_window(struct vgpu_budget *b, uint32_t slot, uint64_t size, bool count);
void vgpu_budget_give_window(struct vgpu_budget *b, uint32_t slot, uint64_t size);

/* New pinned memory: a shared-memory window made, or a request buffer
 * the backend has no pinned block cached for. Under CUDA pinning holds
 * back every VM's GPU work while it runs (tens of ms per GiB), so each VM
 * gets a token bucket: pin_burst bytes at once, then pin_rate a second.
 * VGPU_OK (the tokens are taken) or VGPU_BUSY (counted as a refusal);
 * @now_ns is the caller's clock (vgpu_now_ns()). */
int vgpu_budget_pin(struct vgpu_budget *b, uint32_t slot, uint64_t bytes, uint64_t now_ns);

/* Whether VM slot @slot holds nothing: a removed VM's slot is reused only
 * then, so that late answers and statistics never reach another VM. */
bool vgpu_budget_idle(struct vgpu_budget *b, uint32_t slot);
/* A slot taken by a new VM: its refusal counts start from 0. */
void vgpu_budget_reset(struct vgpu_budget *b, uint32_t slot);

void vgpu_budget_usage(struct vgpu_budget *b, uint32_t slot, struct vgpu_budget_usage *ret);

#endif
