/* SPDX-License-Identifier: MIT */
/*
 * mediator.c - vgpu-admin stats: the mediator's statistics document
 * (control_client.c) as tables.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

static void print_series_row(const char *label, json_t *o)
{
	printf("  %-38s %9lld %9lld %7lld %8lld %10.1f %10.1f %10.1f %10.1f\n", label,
	       (long long)json_integer_value(json_object_get(o, "submitted")),
	       (long long)json_integer_value(json_object_get(o, "completed")),
	       (long long)json_integer_value(json_object_get(o, "failed")),
	       (long long)json_integer_value(json_object_get(o, "rejected")),
	       json_number_value(json_object_get(json_object_get(o, "queue_wait_us"), "p50")),
	       json_number_value(json_object_get(json_object_get(o, "queue_wait_us"), "p99")),
	       json_number_value(json_object_get(json_object_get(o, "exec_us"), "p50")),
	       json_number_value(json_object_get(json_object_get(o, "exec_us"), "p99")));
}

/* "held/limit" of budget kind @kind of VM @o, in MiB when @mib. */
static void budget_cell(json_t *o, const char *kind, bool mib, char *out, size_t size)
{
	json_t *k = json_object_get(json_object_get(o, "budget"), kind);
	double held = (double)json_integer_value(json_object_get(k, "held"));
	double limit = (double)json_integer_value(json_object_get(k, "limit"));

	if (mib)
		snprintf(out, size, "%.1f/%.0f", held / 1048576.0, limit / 1048576.0);
	else
		snprintf(out, size, "%.0f/%.0f", held, limit);
}

static void print_budgets(json_t *doc)
{
	static const char *const kinds[] = { "bytes", "requests", "connections", "windows",
					     "window_bytes" };
	json_t *o;
	size_t i;

	printf("  %-38s %14s %11s %7s %7s %13s %7s %7s %5s %8s\n", "BUDGETS (held/limit)",
	       "BUFFERS_MIB", "REQUESTS", "CONNS", "WINDOWS", "WINDOWS_MIB", "DEV_DMA", "DEV_STG",
	       "KEPT", "REFUSED");
	json_array_foreach(json_object_get(doc, "vms"), i, o) {
		char cell[5][32];

		/* Refusals: past a budget, and new pinned memory past its rate. */
		long long refused = (long long)json_integer_value(json_object_get(
			json_object_get(json_object_get(o, "budget"), "new_pinned"), "refused"));

		for (int k = 0; k < 5; k++) {
			budget_cell(o, kinds[k], k == 0 || k == 4, cell[k], sizeof(cell[k]));
			refused += (long long)json_integer_value(json_object_get(
				json_object_get(json_object_get(o, "budget"), kinds[k]), "refused"));
		}
		json_t *win = json_object_get(o, "windows");

		printf("  %-38.36s %14s %11s %7s %7s %13s %7lld %7lld %5lld %8lld\n",
		       json_string_value(json_object_get(o, "vm_uuid")) ?: "?", cell[0], cell[1],
		       cell[2], cell[3], cell[4],
		       (long long)json_integer_value(json_object_get(win, "device_direct")),
		       (long long)json_integer_value(json_object_get(win, "device_staged")),
		       (long long)json_integer_value(json_object_get(win, "kept")), refused);
	}
}

/* The VMs' CUDA workers (their programs' own CUDA calls), for the VMs
 * that ever had one. */
static void print_cuda(json_t *doc)
{
	bool header = false;
	json_t *o;
	size_t i;

	json_array_foreach(json_object_get(doc, "vms"), i, o) {
		json_t *c = json_object_get(o, "cuda");
		long long pid = (long long)json_integer_value(json_object_get(c, "worker_pid"));
		long long quota = (long long)json_integer_value(json_object_get(c, "mem_quota"));
		char state[32], mem_s[48];

		if (!json_integer_value(json_object_get(c, "starts")))
			continue;
		if (!header)
			printf("\n  %-38s %-14s %6s %6s %5s %16s %10s %8s %10s %10s\n",
			       "CUDA WORKER (VM)", "STATE", "STARTS", "DEATHS", "PROCS", "MEM_MIB",
			       "LAUNCHES", "STREAMS", "GPU_MS", "PACED_MS");
		header = true;
		snprintf(state, sizeof(state), pid ? "pid %lld" : "none", pid);
		snprintf(mem_s, sizeof(mem_s), quota ? "%.1f/%.0f" : "%.1f/-",
			 (double)json_integer_value(json_object_get(c, "mem_held")) / 1048576.0,
			 (double)quota / 1048576.0);
		printf("  %-38.36s %-14s %6lld %6lld %5lld %16s %10lld %8lld %10.0f %10.0f\n",
		       json_string_value(json_object_get(o, "vm_uuid")) ?: "?", state,
		       (long long)json_integer_value(json_object_get(c, "starts")),
		       (long long)json_integer_value(json_object_get(c, "deaths")),
		       (long long)json_integer_value(json_object_get(c, "processes")), mem_s,
		       (long long)json_integer_value(json_object_get(c, "launches")),
		       (long long)json_integer_value(json_object_get(c, "streams")),
		       json_number_value(json_object_get(c, "gpu_ms")),
		       json_number_value(json_object_get(c, "paced_ms")));
	}
}

/* The scheduler: GPU time per pool since the start, each GPU's load, each
 * VM's share of the GPU time, its settings and the GPUs its work ran on. */
static void print_sched(json_t *doc)
{
	double total = 0;
	json_t *o;
	size_t i;

	json_array_foreach(json_object_get(doc, "pools"), i, o)
		total += json_number_value(json_object_get(o, "gpu_ms"));
	printf("\n  %-38s %6s %5s %-8s %12s %6s\n", "POOL", "WEIGHT", "CAP", "GPUS", "GPU_MS",
	       "SHARE");
	json_array_foreach(json_object_get(doc, "pools"), i, o) {
		double ms = json_number_value(json_object_get(o, "gpu_ms"));

		printf("  %-38s %6lld %4lld%% %-8s %12.1f %5.1f%%\n",
		       json_string_value(json_object_get(o, "pool_id")) ?: "?",
		       (long long)json_integer_value(json_object_get(o, "weight")),
		       (long long)json_integer_value(json_object_get(o, "cap_percent")),
		       json_string_value(json_object_get(o, "gpus")) ?: "?", ms,
		       total > 0 ? 100 * ms / total : 0.0);
	}
	printf("  %-38s %12s %6s %8s\n", "GPU", "BUSY_MS", "LOAD", "INFLIGHT");
	json_array_foreach(json_object_get(doc, "gpus"), i, o)
		printf("  %-38lld %12.1f %6.2f %8lld\n",
		       (long long)json_integer_value(json_object_get(o, "gpu")),
		       json_number_value(json_object_get(o, "busy_ms")),
		       json_number_value(json_object_get(o, "load")),
		       (long long)json_integer_value(json_object_get(o, "inflight")));
	printf("  %-38s %6s %4s %-8s %12s %6s %10s %-8s\n", "VM", "WEIGHT", "POOL", "RATE_MS",
	       "GPU_MS", "SHARE", "MEM_MIB", "RAN_ON");
	json_array_foreach(json_object_get(doc, "vms"), i, o) {
		json_t *sc = json_object_get(o, "sched");
		double ms = json_number_value(json_object_get(sc, "gpu_ms"));
		long long rate = (long long)json_integer_value(json_object_get(sc, "rate_limit_ms"));
		long long quota = (long long)json_integer_value(json_object_get(sc, "mem_quota"));
		char rate_s[24], mem_s[48];

		snprintf(rate_s, sizeof(rate_s), rate ? "%lld" : "-", rate);
		snprintf(mem_s, sizeof(mem_s), quota ? "%.1f/%.0f" : "%.1f/-",
			 (double)json_integer_value(json_object_get(sc, "mem_held")) / 1048576.0,
			 (double)quota / 1048576.0);
		printf("  %-38.36s %6lld %4s %-8s %12.1f %5.1f%% %10s %-8s\n",
		       json_string_value(json_object_get(o, "vm_uuid")) ?: "?",
		       (long long)json_integer_value(json_object_get(sc, "weight")),
		       json_string_value(json_object_get(o, "pool_id")) ?: "?", rate_s, ms,
		       total > 0 ? 100 * ms / total : 0.0, mem_s,
		       json_string_value(json_object_get(sc, "ran_on")) ?: "-");
	}
}

void print_mediator_stats(json_t *doc)
{
	json_t *med = json_object_get(doc, "mediator"), *o;
	size_t i;
	char label[64];

	printf("Mediator %s: backend %s, up %lld s, %lld queued, %lld in flight\n",
	       json_string_value(json_object_get(med, "version")) ?: "?",
	       json_string_value(json_object_get(med, "backend")) ?: "?",
	       (long long)json_integer_value(json_object_get(med, "uptime_s")),
	       (long long)json_integer_value(json_object_get(med, "queued")),
	       (long long)json_integer_value(json_object_get(med, "inflight")));
	printf("  %-38s %9s %9s %7s %8s %10s %10s %10s %10s\n", "", "SUBMITTED", "COMPLETED",
	       "FAILED", "REJECTED", "QWAIT_P50", "QWAIT_P99", "EXEC_P50", "EXEC_P99");
	json_array_foreach(json_object_get(doc, "priorities"), i, o) {
		snprintf(label, sizeof(label), "priority %s",
			 json_string_value(json_object_get(o, "priority_name")) ?: "?");
		print_series_row(label, o);
	}
	json_array_foreach(json_object_get(doc, "vms"), i, o) {
		snprintf(label, sizeof(label), "%.36s",
			 json_string_value(json_object_get(o, "vm_uuid")) ?: "?");
		print_series_row(label, o);
	}
	printf("  (times in microseconds)\n");
	print_budgets(doc);
	print_sched(doc);
	print_cuda(doc);
}

int cmd_stats(struct cli *cli)
{
	json_t *doc;
	char err[512];
	int rc = mediator_stats(cli->run_dir, &doc, err, sizeof(err));

	if (rc != VGPU_OK) {
		print_error("%s", err);
		return EXIT_ERROR;
	}
	if (cli->json)
		return print_json(doc);
	print_mediator_stats(doc);
	json_decref(doc);
	return EXIT_OK;
}
