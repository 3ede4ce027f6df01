/* SPDX-License-Identifier: MIT */
/*
 * metrics.c - the mediator's figures in Prometheus' text format (0.0.4),
 * for the control socket's "metrics" command (control.c), which the host
 * agent serves as /metrics (docs/metrics.md lists every metric).
 *
 * Series are keyed by what does not change: a VM by its UUID, a pool by
 * its letter, a GPU by its number; what an operator may change (a VM's
 * name, pool, priority) is in vgpu_vm_info, to join on (Prometheus'
 * "info" pattern), so that a VM moved to another pool keeps its counters.
 * Times are in seconds and sizes in bytes, as Prometheus' conventions say.
 * Histograms have real buckets: each power of two of microseconds from
 * 1 us to 4.19 s, bounds of the mediator's own buckets, so every count is
 * exact (stats.h).
 *
 * Label values are escaped (backslash, double quote, newline); VM names
 * are the registry's (printable UTF-8), but escaped all the same.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mediator.h"
#include "prom.h"

#define LE_MAX_POW 22 /* buckets up to 2^22 us = 4.19 s, then +Inf */

static void head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample of @name for VM @uuid (the @suffix of a histogram's). */
static void vm_sample(FILE *f, const char *name, const char *uuid, double v)
{
	fprintf(f, "%s{vm_uuid=", name);
	vgpu_prom_label(f, uuid);
	fprintf(f, "} %.17g\n", v);
}

static void histogram(FILE *f, const char *name, const char *uuid, const struct vgpu_hist *h)
{
	for (int k = 0; k <= LE_MAX_POW; k++) {
		uint64_t bound_ns = (uint64_t)1000 << k;

		fprintf(f, "%s_bucket{vm_uuid=", name);
		vgpu_prom_label(f, uuid);
		fprintf(f, ",le=\"%.9g\"} %llu\n", (double)bound_ns / 1e9,
			(unsigned long long)vgpu_hist_count_below(h, bound_ns));
	}
	fprintf(f, "%s_bucket{vm_uuid=", name);
	vgpu_prom_label(f, uuid);
	fprintf(f, ",le=\"+Inf\"} %llu\n", (unsigned long long)h->count);
	fprintf(f, "%s_sum{vm_uuid=", name);
	vgpu_prom_label(f, uuid);
	fprintf(f, "} %.17g\n", (double)h->sum_ns / 1e9);
	fprintf(f, "%s_count{vm_uuid=", name);
	vgpu_prom_label(f, uuid);
	fprintf(f, "} %llu\n", (unsigned long long)h->count);
}

/* What each VM metric is: its name, type, help and value. */
struct vm_figures {
	const struct vgpu_vm *vm;
	struct vgpu_series s;
	struct vgpu_sched_usage su;
	struct vgpu_budget_usage bu;
	struct vgpu_cuda_usage cu;
};

typedef double (*vm_value)(const struct vm_figures *v);

static double submitted(const struct vm_figures *v) { return (double)v->s.submitted; }
static double completed(const struct vm_figures *v) { return (double)v->s.completed; }
static double failed(const struct vm_figures *v) { return (double)v->s.failed; }
static double rejected(const struct vm_figures *v) { return (double)v->s.rejected; }
static double bytes_in(const struct vm_figures *v) { return (double)v->s.bytes_in; }
static double bytes_out(const struct vm_figures *v) { return (double)v->s.bytes_out; }
static double gpu_s(const struct vm_figures *v) { return (double)v->su.vm_ns / 1e9; }
static double paced_s(const struct vm_figures *v) { return (double)v->cu.paced_ns / 1e9; }
static double launches(const struct vm_figures *v) { return (double)v->cu.launches; }
static double deaths(const struct vm_figures *v) { return (double)v->cu.deaths; }
static double mem_held(const struct vm_figures *v)
{
	return (double)(v->su.mem_held + v->cu.mem_held);
}
static double mem_quota(const struct vm_figures *v)
{
	return v->vm->mem_quota_mib > 0 ? (double)((uint64_t)v->vm->mem_quota_mib << 20) : 0;
}
static double rate_limit(const struct vm_figures *v) { return v->vm->rate_limit_ms / 1e3; }
static double weight(const struct vm_figures *v) { return v->vm->weight; }

static const struct {
	const char *name, *type, *help;
	vm_value value;
} vm_metrics[] = {
	{ "vgpu_vm_requests_submitted_total", "counter", "Requests accepted into the queue.", submitted },
	{ "vgpu_vm_requests_completed_total", "counter", "Requests answered with success.", completed },
	{ "vgpu_vm_requests_failed_total", "counter", "Requests accepted, then answered with an error.", failed },
	{ "vgpu_vm_requests_rejected_total", "counter", "Requests refused at admission (busy, malformed, over a budget).", rejected },
	{ "vgpu_vm_received_bytes_total", "counter", "Bytes of the VM's requests' inputs.", bytes_in },
	{ "vgpu_vm_sent_bytes_total", "counter", "Bytes of the answers' outputs.", bytes_out },
	{ "vgpu_vm_gpu_seconds_total", "counter", "GPU time used: requests' execution and the CUDA workers' charged time.", gpu_s },
	{ "vgpu_vm_cuda_paced_seconds_total", "counter", "Time the VM's CUDA workers' launches were held by its limits or share.", paced_s },
	{ "vgpu_vm_cuda_launches_total", "counter", "Kernels the VM's CUDA workers launched.", launches },
	{ "vgpu_vm_cuda_worker_deaths_total", "counter", "CUDA workers of the VM that died (killed or failed).", deaths },
	{ "vgpu_vm_memory_held_bytes", "gauge", "Device memory held by the VM's running requests and CUDA workers.", mem_held },
	{ "vgpu_vm_memory_quota_bytes", "gauge", "The VM's device memory quota (0: none).", mem_quota },
	{ "vgpu_vm_rate_limit_gpu_seconds_per_second", "gauge", "The VM's rate limit (0: none).", rate_limit },
	{ "vgpu_vm_weight", "gauge", "The VM's weight within its pool.", weight },
};

#define N_VM_METRICS (sizeof(vm_metrics) / sizeof(vm_metrics[0]))

char *vgpu_metrics_document(struct mediator *m)
{
	struct vm_figures *figs;
	size_t n = 0, size = 0;
	char *text = NULL;
	FILE *f;

	figs = calloc((size_t)m->set.max_vms ? (size_t)m->set.max_vms : 1, sizeof(*figs));
	f = figs ? open_memstream(&text, &size) : NULL;
	if (!f) {
		free(figs);
		return NULL;
	}
	for (long long i = 0; i < m->set.max_vms; i++) {
		const struct vgpu_vm *vm = &m->vms[i];
		struct vm_figures *v = &figs[n];

		if (!vm->in_use)
			continue;
		v->vm = vm;
		vgpu_stats_vm(m->stats, vm->slot, &v->s);
		vgpu_queue_usage(m->queue, vm->slot, UINT32_MAX, UINT32_MAX, &v->su);
		vgpu_budget_usage(m->budget, vm->slot, &v->bu);
		vgpu_cuda_vm_usage(m, vm, &v->cu);
		n++;
	}
	head(f, "vgpu_mediator_info", "gauge", "The mediator: its version and backend (always 1).");
	fputs("vgpu_mediator_info{version=", f);
	vgpu_prom_label(f, VGPU_VERSION);
	fputs(",backend=", f);
	vgpu_prom_label(f, m->backend->name);
	fputs("} 1\n", f);
	head(f, "vgpu_mediator_uptime_seconds", "gauge", "Time since the mediator started.");
	fprintf(f, "vgpu_mediator_uptime_seconds %.3f\n",
		(double)(vgpu_now_ns() - m->started_ns) / 1e9);
	head(f, "vgpu_mediator_queued_requests", "gauge", "Requests waiting in the queue.");
	fprintf(f, "vgpu_mediator_queued_requests %d\n", (int)vgpu_queue_depth(m->queue, -1));

	head(f, "vgpu_vm_info", "gauge",
	     "A registered VM's name, vm_id, pool and priority (always 1; join on vm_uuid).");
	for (size_t i = 0; i < n; i++) {
		const struct vgpu_vm *vm = figs[i].vm;
		char pool[2] = { vm->pool, '\0' };

		fputs("vgpu_vm_info{vm_uuid=", f);
		vgpu_prom_label(f, vm->uuid);
		fputs(",vm_name=", f);
		vgpu_prom_label(f, vm->name);
		fprintf(f, ",vm_id=\"%d\",pool=", vm->vm_id);
		vgpu_prom_label(f, pool);
		fputs(",priority=", f);
		vgpu_prom_label(f, vgpu_priority_name(vm->priority));
		fputs("} 1\n", f);
	}
	for (size_t k = 0; k < N_VM_METRICS; k++) {
		head(f, vm_metrics[k].name, vm_metrics[k].type, vm_metrics[k].help);
		for (size_t i = 0; i < n; i++)
			vm_sample(f, vm_metrics[k].name, figs[i].vm->uuid, vm_metrics[k].value(&figs[i]));
	}
	head(f, "vgpu_vm_budget_refusals_total", "counter",
	     "Takes of a per-VM budget refused, by budget (bytes, requests, connections, ...).");
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < VGPU_BUDGET_KINDS; k++) {
			fputs("vgpu_vm_budget_refusals_total{vm_uuid=", f);
			vgpu_prom_label(f, figs[i].vm->uuid);
			fputs(",budget=", f);
			vgpu_prom_label(f, vgpu_budget_kind_name(k));
			fprintf(f, "} %llu\n", (unsigned long long)figs[i].bu.refused[k]);
		}
	head(f, "vgpu_vm_queue_wait_seconds", "histogram",
	     "Time requests waited in the queue (completed and failed ones).");
	for (size_t i = 0; i < n; i++)
		histogram(f, "vgpu_vm_queue_wait_seconds", figs[i].vm->uuid, &figs[i].s.queue_wait);
	head(f, "vgpu_vm_exec_seconds", "histogram", "Requests' execution time on the GPU.");
	for (size_t i = 0; i < n; i++)
		histogram(f, "vgpu_vm_exec_seconds", figs[i].vm->uuid, &figs[i].s.exec);

	head(f, "vgpu_pool_gpu_seconds_total", "counter", "GPU time the pool's VMs used.");
	for (uint32_t p = 0; p < VGPU_POOLS; p++) {
		struct vgpu_sched_usage su;

		if (!m->pools[p].defined)
			continue;
		vgpu_queue_usage(m->queue, UINT32_MAX, p, UINT32_MAX, &su);
		fprintf(f, "vgpu_pool_gpu_seconds_total{pool=\"%c\"} %.9f\n", 'A' + p,
			(double)su.pool_ns / 1e9);
	}
	head(f, "vgpu_pool_weight", "gauge", "The pool's weight.");
	for (uint32_t p = 0; p < VGPU_POOLS; p++)
		if (m->pools[p].defined)
			fprintf(f, "vgpu_pool_weight{pool=\"%c\"} %d\n", 'A' + p, m->pools[p].weight);
	head(f, "vgpu_pool_cap_ratio", "gauge", "The most of the GPU time the pool may use (1: no cap).");
	for (uint32_t p = 0; p < VGPU_POOLS; p++)
		if (m->pools[p].defined)
			fprintf(f, "vgpu_pool_cap_ratio{pool=\"%c\"} %.2f\n", 'A' + p,
				m->pools[p].cap_percent / 100.0);

	head(f, "vgpu_gpu_busy_seconds_total", "counter",
	     "The GPU's busy time: its works' execution times, overlapping works each counted.");
	for (uint32_t g = 0; g < m->n_gpus; g++) {
		struct vgpu_sched_usage su;

		vgpu_queue_usage(m->queue, UINT32_MAX, UINT32_MAX, g, &su);
		fprintf(f, "vgpu_gpu_busy_seconds_total{gpu=\"%u\"} %.9f\n", g, (double)su.gpu_ns / 1e9);
	}
	head(f, "vgpu_gpu_inflight_requests", "gauge", "Requests the GPU was given, not done.");
	for (uint32_t g = 0; g < m->n_gpus; g++)
		fprintf(f, "vgpu_gpu_inflight_requests{gpu=\"%u\"} %u\n", g,
			vgpu_dispatcher_inflight(m, g));
	free(figs);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}
