/* SPDX-License-Identifier: MIT */
/*
 * head-cost - what framing one CUDA call costs: a call's head (header and
 * 48-byte block, its CRC32C) encoded and decoded ROUNDS times, as the
 * guest library and the worker do for every call, reply and ring entry;
 * then the CRC32C of the same 80 bytes alone, with the CPU's instruction
 * and with the table. Prints nanoseconds per round, one JSON line.
 *
 *   head-cost [ROUNDS]      (default 1000000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cuda_call.h"

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv)
{
	long rounds = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_LAUNCH, .v = { 1, 2, 3, 4, 5, 0 } }, r;
	uint8_t head[VGPU_CUDA_MSG_HEAD];
	volatile uint32_t sink = 0;
	double t0, t1, t2, t3;

	if (rounds <= 0 || rounds > 1000000000L) {
		fprintf(stderr, "usage: head-cost [ROUNDS] (1 to 10^9)\n");
		return 2;
	}
	t0 = now_ns();
	for (long i = 0; i < rounds; i++) {
		m.id = (uint64_t)i;
		vgpu_cuda_encode(&m, false, head);
		if (vgpu_cuda_decode(head, false, &r) != VGPU_OK || r.id != m.id) {
			fprintf(stderr, "head-cost: round %ld did not decode\n", i);
			return 1;
		}
	}
	t1 = now_ns();
	for (long i = 0; i < rounds; i++)
		sink += vgpu_proto_crc32c((uint32_t)i, head, sizeof(head), true);
	t2 = now_ns();
	for (long i = 0; i < rounds; i++)
		sink += vgpu_proto_crc32c((uint32_t)i, head, sizeof(head), false);
	t3 = now_ns();
	printf("{\"rounds\":%ld,\"encode_decode_ns\":%.1f,\"crc80_hw_ns\":%.1f,"
	       "\"crc80_table_ns\":%.1f}\n",
	       rounds, (t1 - t0) / rounds, (t2 - t1) / rounds, (t3 - t2) / rounds);
	(void)sink; /* volatile: the loops are kept */
	return 0;
}
