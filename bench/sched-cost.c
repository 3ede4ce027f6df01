/* SPDX-License-Identifier: MIT */
/*
 * sched-cost - what one scheduling decision costs (issue 11: at most 10 us
 * p99 at 64 VMs with work queued). The mediator's scheduler
 * (mediator/scheduler.c) with VMS VMs in 8 pools at the three priority
 * levels, some rate-limited, each with DEPTH works queued; then ROUNDS of
 * pick + done + push again (the queue stays full), each pick timed with
 * CLOCK_MONOTONIC. Prints p50, p99, p99.9 and max in nanoseconds, as one
 * JSON line with --json.
 *
 *   sched-cost [--vms N] [--depth D] [--rounds R] [--json]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scheduler.h"
#include "vgpu_error.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vms", required_argument, NULL, 'v' }, { "depth", required_argument, NULL, 'd' },
		{ "rounds", required_argument, NULL, 'r' }, { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	unsigned vms = 64, depth = 8, rounds = 200000;
	struct vgpu_sched_params prm;
	struct vgpu_sched_item *items;
	struct vgpu_sched *s = NULL;
	uint64_t *took, now;
	int json = 0, c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'v': vms = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'd': depth = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'r': rounds = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'j': json = 1; break;
		default:
			fprintf(c == 'h' ? stdout : stderr,
				"usage: sched-cost [--vms 1..4096] [--depth 1..1024] [--rounds N] [--json]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (vms < 1 || vms > 4096 || depth < 1 || depth > 1024 || rounds < 1 || rounds > 100000000) {
		fprintf(stderr, "sched-cost: value out of range (see --help)\n");
		return 2;
	}
	vgpu_sched_params_default(&prm);
	items = calloc((size_t)vms * depth, sizeof(*items));
	took = calloc(rounds, sizeof(*took));
	if (!items || !took || vgpu_sched_new(vms, 8, 1, &prm, &s) != VGPU_OK) {
		fprintf(stderr, "sched-cost: out of memory\n");
		return 1;
	}
	now = 1000000;
	for (uint32_t p = 0; p < 8; p++)
		vgpu_sched_set_pool(s, p, 1 + p * 50, p == 7 ? 500 : 1000, 1, now);
	for (uint32_t v = 0; v < vms; v++) {
		/* Every fourth VM rate-limited (never held back for long). */
		vgpu_sched_set_vm(s, v, v % 8, (int)(v % 3), 1 + v % 5, v % 4 == 0 ? 800000000u : 0,
				  now);
		for (unsigned d = 0; d < depth; d++) {
			struct vgpu_sched_item *it = &items[v * depth + d];

			it->vm_slot = v;
			it->cost_ns = 20000 + 1000 * (v % 7);
			vgpu_sched_push(s, it, now);
		}
	}
	for (unsigned r = 0; r < rounds; r++) {
		struct vgpu_sched_item *it;
		uint64_t t0 = now_ns(), retry = 0;

		it = vgpu_sched_pick(s, 0, now, &retry);
		took[r] = now_ns() - t0;
		if (!it) {
			now = retry ? retry : now + 1000;
			r--;
			continue;
		}
		now += it->cost_ns; /* the virtual GPU ran it */
		vgpu_sched_done(s, it, it->cost_ns + (r % 11) * 100);
		vgpu_sched_push(s, it, now);
	}
	qsort(took, rounds, sizeof(*took), cmp_u64);
	uint64_t p50 = took[rounds / 2], p99 = took[(size_t)(rounds * 0.99)],
		 p999 = took[(size_t)(rounds * 0.999)], max = took[rounds - 1];
	if (json)
		printf("{\"vms\":%u,\"depth\":%u,\"rounds\":%u,\"pick_ns\":{\"p50\":%llu,\"p99\":%llu,"
		       "\"p999\":%llu,\"max\":%llu}}\n",
		       vms, depth, rounds, (unsigned long long)p50, (unsigned long long)p99,
		       (unsigned long long)p999, (unsigned long long)max);
	else
		printf("sched-cost: %u VMs, %u queued each, %u decisions: p50 %llu ns, p99 %llu ns, "
		       "p99.9 %llu ns, max %llu ns\n",
		       vms, depth, rounds, (unsigned long long)p50, (unsigned long long)p99,
		       (unsigned long long)p999, (unsigned long long)max);
	vgpu_sched_free(s);
	free(items);
	free(took);
	return 0;
}
