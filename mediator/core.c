/* SPDX-License-Identifier: MIT */
/*
 * core.c - a mediator's life without its command line (mediator.h, "core.c"):
 * what main.c runs, and what the core's unit tests run with a transport of
 * their own (tests/mediator/test_core.c).
 *
 * Transports are registered, not numbered: each finds its state through
 * its own struct (vgpu_transport_ctx(), vgpu_vm_state()), and adding one
 * is one vgpu_mediator_add_transport() call.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "mediator.h"
#include "transport/ring.h"
#include "vgpu_mutex.h"
#include "vgpu_spin.h"

/* @t's place among the registered transports; -1 if it is not one. */
static int transport_index(const struct mediator *m, const struct vgpu_transport *t)
{
	for (int i = 0; i < m->n_transports; i++)
		if (m->transports[i] == t)
			return i;
	return -1;
}

void *vgpu_transport_ctx(struct mediator *m, const struct vgpu_transport *t)
{
	int i = transport_index(m, t);

	return i >= 0 ? m->transport_ctx[i] : NULL;
}

void vgpu_transport_set_ctx(struct mediator *m, const struct vgpu_transport *t, void *ctx)
{
	int i = transport_index(m, t);

	if (i >= 0)
		m->transport_ctx[i] = ctx;
}

void *vgpu_vm_state(struct mediator *m, long long slot, const struct vgpu_transport *t)
{
	int i = transport_index(m, t);

	return i >= 0 && m->vms[slot].in_use ? m->vms[slot].transport_state[i] : NULL;
}

void vgpu_vm_set_state(struct mediator *m, struct vgpu_vm *vm, const struct vgpu_transport *t,
		       void *state)
{
	int i = transport_index(m, t);

	if (i >= 0)
		vm->transport_state[i] = state;
}

int vgpu_mediator_add_transport(struct mediator *m, const struct vgpu_transport *t)
{
	if (transport_index(m, t) >= 0)
		return VGPU_EXISTS;
	if (m->n_transports >= VGPU_MAX_TRANSPORTS)
		return VGPU_LIMIT;
	m->transports[m->n_transports++] = t;
	return VGPU_OK;
}

/* The backend the settings name (or the one the caller set), one instance
 * per GPU: the `gpus` setting, or every device the backend has. */
static int start_backend(struct mediator *m)
{
	char why[512] = "", err[512];
	int have, want = (int)m->set.gpus;

	if (!m->backend)
		m->backend = vgpu_backend_select(m->set.backend, why, sizeof(why));
	if (!m->backend) {
		vgpu_log(LOG_ERR, "backend %s: %s", m->set.backend, why);
		return VGPU_NOT_FOUND;
	}
	have = m->backend->devices ? m->backend->devices() : want ? want : 1;
	if (want == 0)
		want = have < VGPU_MAX_GPUS ? have : VGPU_MAX_GPUS;
	if (want < 1 || want > have) {
		vgpu_log(LOG_ERR, "backend %s: gpus=%d, but it has %d GPU%s", m->backend->name,
			 (int)m->set.gpus, have, have == 1 ? "" : "s");
		return VGPU_NOT_FOUND;
	}
	for (int i = 0; i < want; i++) {
		struct vgpu_backend_config bc = {
			.threads = (int)m->set.cpu_threads,
			.device = i,
			.max_inflight = (int)m->set.max_inflight,
			.max_device_bytes = 0,
			.copy_slice_bytes = (size_t)m->set.copy_slice_kib << 10,
			.hold_ns = (uint64_t)m->set.gpu_hold_us * 1000u,
		};
		struct vgpu_gpu *g = &m->gpu[i];
		int rc = m->backend->init(&bc, &g->ctx, err, sizeof(err));

		if (rc != VGPU_OK) {
			vgpu_log(LOG_ERR, "backend %s, GPU %d: %s", m->backend->name, i, err);
			return rc;
		}
		g->m = m;
		g->index = (uint32_t)i;
		pthread_cond_init(&g->room_cond, NULL);
		m->n_gpus = (uint32_t)i + 1;
	}
	m->backend_ctx = m->gpu[0].ctx;
	vgpu_log(LOG_NOTICE, "backend %s, %u GPU%s%s%s%s", m->backend->name, m->n_gpus,
		 m->n_gpus == 1 ? "" : "s", why[0] ? " (auto: " : "", why, why[0] ? ")" : "");
	return VGPU_OK;
}

int vgpu_mediator_init(struct mediator *m)
{
	m->done_efd = -1;
	m->cuda_tick_fd = -1;
	m->limits.max_payload = (uint32_t)(m->set.max_request_mib << 20);
	m->limits.max_elems = (uint32_t)(m->set.max_elems_mi << 20);
	m->limits.max_dim = (uint32_t)m->set.max_dim;
	int rc = start_backend(m);
	if (rc != VGPU_OK)
		return rc;
	struct vgpu_budget_limits bl = {
		.vm = {
			[VGPU_BUDGET_BYTES] = (uint64_t)m->set.vm_buffer_mib << 20,
			[VGPU_BUDGET_REQUESTS] = (uint64_t)m->set.vm_requests,
			[VGPU_BUDGET_CONNS] = (uint64_t)m->set.max_conns_per_vm,
			[VGPU_BUDGET_WINDOWS] = (uint64_t)m->set.vm_windows,
			[VGPU_BUDGET_WINDOW_BYTES] = (uint64_t)m->set.vm_window_mib << 20,
		},
		.total = {
			[VGPU_BUDGET_BYTES] = (uint64_t)m->set.buffer_total_mib << 20,
			[VGPU_BUDGET_REQUESTS] = UINT64_MAX,
			[VGPU_BUDGET_CONNS] = UINT64_MAX,
			[VGPU_BUDGET_WINDOWS] = UINT64_MAX,
			[VGPU_BUDGET_WINDOW_BYTES] = (uint64_t)m->set.shm_total_mib << 20,
		},
		.pin_rate = (uint64_t)m->set.pin_rate_mib_s << 20,
		.pin_burst = ((uint64_t)m->set.vm_window_mib + (uint64_t)m->set.vm_buffer_mib) << 20,
	};
	struct vgpu_sched_params sp;

	vgpu_sched_params_default(&sp);
	sp.aging_ns = (uint64_t)m->set.sched_aging_ms * 1000000u;
	sp.floor_permille = (uint32_t)m->set.sched_floor_permille;
	sp.inflight_ns = (uint64_t)m->set.sched_inflight_us * 1000u;
	sp.guard_ns = (uint64_t)m->set.sched_guard_us * 1000u;
	if (m->backend->concurrency)
		sp.inflight_min = m->backend->concurrency(m->backend_ctx);
	if (vgpu_loop_new(&m->loop) != VGPU_OK ||
	    vgpu_queue_new((uint32_t)m->set.max_vms, VGPU_POOLS, m->n_gpus,
			   (uint32_t)m->set.queue_per_vm,
			   (uint32_t)m->set.queue_total, &sp, &m->queue) != VGPU_OK ||
	    vgpu_stats_new((uint32_t)m->set.max_vms, &m->stats) != VGPU_OK ||
	    vgpu_budget_new((uint32_t)m->set.max_vms, &bl, &m->budget) != VGPU_OK ||
	    vgpu_workers_new(m->loop, (int)m->set.workers, (uint32_t)m->set.max_vms,
			     &m->workers) != VGPU_OK)
		return VGPU_NO_MEMORY;
	m->vms = calloc((size_t)m->set.max_vms, sizeof(*m->vms));
	if (!m->vms)
		return VGPU_NO_MEMORY;
	vgpu_mutex_init(&m->done_lock);
	m->done_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	m->done_watch = (struct vgpu_loop_watch){ .fd = m->done_efd, .fn = vgpu_deliver_done, .ctx = m };
	if (m->done_efd < 0 || vgpu_loop_add(m->loop, &m->done_watch, EPOLLIN) != VGPU_OK)
		return VGPU_IO_ERROR;
	m->cuda_tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	m->cuda_tick = (struct vgpu_loop_watch){ .fd = m->cuda_tick_fd, .fn = vgpu_cuda_tick, .ctx = m };
	if (m->cuda_tick_fd < 0 || vgpu_loop_add(m->loop, &m->cuda_tick, EPOLLIN) != VGPU_OK)
		return VGPU_IO_ERROR;
	return VGPU_OK;
}

int vgpu_mediator_start(struct mediator *m)
{
	int rc;

	for (int t = 0; t < m->n_transports; t++)
		if ((rc = m->transports[t]->start(m)) != VGPU_OK)
			return rc;
	if ((rc = vgpu_vms_reload(m)) != VGPU_OK)
		return rc;
	if ((rc = vgpu_dispatcher_start(m)) != VGPU_OK)
		return rc;
	m->started_ns = vgpu_now_ns();
	return VGPU_OK;
}

void vgpu_mediator_stop_accepting(struct mediator *m)
{
	for (int t = 0; t < m->n_transports; t++)
		m->transports[t]->stop_accepting(m);
	vgpu_queue_close(m->queue);
}

int vgpu_mediator_turn(struct mediator *m, uint64_t *poll_until)
{
	bool polling = vgpu_now_ns() < *poll_until;
	/* The rings first: a descriptor published without a doorbell is seen
	 * here, not in the loop. Before a sleep, every ring rings again. */
	bool took = polling ? vgpu_rings_watch(m) : vgpu_rings_unwatch(m);
	int n = vgpu_loop_run_once(m->loop, polling || took ? 0 : 200);

	if (n > 0 || took)
		/* From now: the turn may have slept, or worked, for long. */
		*poll_until = vgpu_now_ns() + (uint64_t)m->set.poll_us * 1000u;
	else if (polling)
		vgpu_cpu_relax();
	return n;
}

bool vgpu_mediator_drained(struct mediator *m)
{
	uint64_t pending = 0;

	for (int t = 0; t < m->n_transports; t++)
		pending += m->transports[t]->pending(m);
	return vgpu_dispatcher_drained(m) && pending == 0 && vgpu_workers_pending(m->workers) == 0;
}

void vgpu_mediator_fini(struct mediator *m)
{
	vgpu_cuda_release(m, NULL);
	for (long long i = 0; m->vms && i < m->set.max_vms; i++)
		for (int t = 0; t < m->n_transports && m->vms[i].in_use; t++)
			m->transports[t]->vm_removed(m, &m->vms[i]);
	/* Windows of the connections just closed are released on the workers,
	 * with the backend still there to unpin them. */
	vgpu_workers_free(m->workers);
	for (int t = 0; t < m->n_transports; t++)
		m->transports[t]->stop(m);
	/* GPU 0's last: its host memory is what the others' works used. */
	for (uint32_t i = m->n_gpus; i-- > 0;) {
		m->backend->fini(m->gpu[i].ctx);
		pthread_cond_destroy(&m->gpu[i].room_cond);
	}
	vgpu_db_close(m->db);
	vgpu_stats_free(m->stats);
	vgpu_budget_free(m->budget);
	vgpu_queue_free(m->queue);
	vgpu_loop_free(m->loop);
	if (m->done_efd >= 0)
		close(m->done_efd);
	if (m->cuda_tick_fd >= 0)
		close(m->cuda_tick_fd);
	free(m->vms);
}
