/* SPDX-License-Identifier: MIT */
/*
 * test_cuda_shim.c - the guest libcuda.so.1's parts that need no peer:
 * cuGetProcAddress's choice of entry point (names, versions, per-thread
 * variants, symbolStatus), the integrity check's hash against ZLUDA's
 * test vectors, the description's encoding (round trip and every kind of
 * bad input), module image lengths, error names, and the structure of
 * graphs built node by node (their nodes, edges, clones, instantiation
 * and updates, and every misuse of them a program can make).
 */
#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "graph.h"
#include "vgpu_error.h"
#include "vgpu_protocol.h"

static void test_proc_address(void **state)
{
	CUdriverProcAddressQueryResult st;
	void *fn = (void *)1;

	(void)state;
	/* Implemented: the implementation itself, whichever version fits. */
	assert_int_equal(cuGetProcAddress_v2("cuInit", &fn, 13000, 0, &st), CUDA_SUCCESS);
	assert_ptr_equal(fn, (void *)cuInit);
	assert_int_equal(st, CU_GET_PROC_ADDRESS_SUCCESS);
	assert_int_equal(cuGetProcAddress_v2("cuDeviceTotalMem", &fn, 13000, 0, &st), CUDA_SUCCESS);
	assert_ptr_equal(fn, (void *)cuDeviceTotalMem_v2);
	assert_int_equal(cuGetProcAddress_v2("cuCtxGetDevice", &fn, 12080, 0, &st), CUDA_SUCCESS);
	assert_ptr_equal(fn, (void *)cuCtxGetDevice);
	assert_int_equal(cuGetProcAddress_v2("cuCtxGetDevice", &fn, 13000, 0, &st), CUDA_SUCCESS);
	assert_ptr_equal(fn, (void *)cuCtxGetDevice_v2);
	/* An old version of an entry point implemented only in its new one:
	 * the old one's stub, not the new function with another signature. */
	assert_int_equal(cuGetProcAddress_v2("cuDeviceTotalMem", &fn, 3000, 0, &st), CUDA_SUCCESS);
	assert_ptr_not_equal(fn, (void *)cuDeviceTotalMem_v2);
	assert_int_equal(((CUresult(*)(void))fn)(), CUDA_ERROR_NOT_SUPPORTED);
	/* Known, not implemented: a stub that says so. */
	assert_int_equal(cuGetProcAddress_v2("cuIpcGetMemHandle", &fn, 13000, 0, &st),
			 CUDA_SUCCESS);
	assert_non_null(fn);
	assert_int_equal(((CUresult(*)(void))fn)(), CUDA_ERROR_NOT_SUPPORTED);
	/* Per-thread variants: a different entry where one exists (a stub of
	 * its own for one not implemented)... */
	void *legacy, *ptsz;
	assert_int_equal(cuGetProcAddress_v2("cuMemcpy3DPeerAsync", &legacy, 13000,
					     CU_GET_PROC_ADDRESS_LEGACY_STREAM, &st), CUDA_SUCCESS);
	assert_int_equal(cuGetProcAddress_v2("cuMemcpy3DPeerAsync", &ptsz, 13000,
					     CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &st),
			 CUDA_SUCCESS);
	assert_ptr_not_equal(legacy, ptsz);
	/* ... and the legacy one where none exists. */
	assert_int_equal(cuGetProcAddress_v2("cuInit", &fn, 13000,
					     CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &st),
			 CUDA_SUCCESS);
	assert_ptr_equal(fn, (void *)cuInit);
	/* Not an entry point; newer than asked for; bad arguments. */
	fn = (void *)1;
	assert_int_equal(cuGetProcAddress_v2("cuNoSuchThing", &fn, 13000, 0, &st), CUDA_ERROR_NOT_FOUND);
	assert_null(fn);
	assert_int_equal(st, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
	assert_int_equal(cuGetProcAddress_v2("", &fn, 0, 0, &st), CUDA_ERROR_NOT_FOUND);
	assert_int_equal(cuGetProcAddress_v2("cuCtxGetDevice", &fn, 1000, 0, &st), CUDA_ERROR_NOT_FOUND);
	assert_int_equal(st, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
	assert_int_equal(cuGetProcAddress_v2("cuInit", &fn, 13000, 4, &st), CUDA_ERROR_INVALID_VALUE);
	assert_int_equal(cuGetProcAddress_v2(NULL, &fn, 13000, 0, &st), CUDA_ERROR_INVALID_VALUE);
	assert_int_equal(cuGetProcAddress_v2("cuInit", NULL, 13000, 0, &st), CUDA_ERROR_INVALID_VALUE);
	/* The first version of cuGetProcAddress, as exported. */
	assert_int_equal(cuGetProcAddress_v2("cuGetProcAddress", &fn, 11030, 0, &st), CUDA_SUCCESS);
	assert_ptr_not_equal(fn, (void *)cuGetProcAddress_v2);
	/* The generated table: the whole driver API, sorted by name (the
	 * binary search relies on it). */
	assert_true(vgpu_cuda_n_entries > 600);
	for (size_t i = 1; i < vgpu_cuda_n_entries; i++)
		assert_true(strcmp(vgpu_cuda_entries[i - 1].name, vgpu_cuda_entries[i].name) <= 0);
}

/* ZLUDA's inputs (dark_api/src/lib.rs, tests), its constants for versions
 * ending in 0 and 1, and the end-to-end results its algorithm gives. */
static void test_integrity(void **state)
{
	struct vgpu_cuda_integrity_in in = {
		.driver_version = 0x2f30, .version = 12082, .pid = 0x002fa423, .tid = 0xf79c1000,
		.cudart_table = 0x7ffff6958240ull, .integrity_table = 0x7ffff6958220ull,
		.fn = 0x7ffff2aaf4a0ull, .unix_seconds = 0x682b9cee,
	};
	struct vgpu_cuda_device_hash dev = { .pci_domain = 0, .pci_bus = 2, .pci_device = 0 };
	const uint32_t guid[4] = { 0x8a2bfe9a, 0x382d25ac, 0xc5ae37ea, 0x5f32716d };
	uint64_t out[2];

	(void)state;
	memcpy(dev.uuid, guid, sizeof(guid));
	vgpu_cuda_integrity_hash(&in, &dev, 1, out);
	assert_true(out[0] == 0xf7ce26b071a14844ull && out[1] == 0xdd021b05393e8c6cull);
	vgpu_cuda_integrity_hash(&in, &dev, 0, out);
	assert_true(out[0] == 0xd22dfa4f5eef7907ull && out[1] == 0xfa7b90d103755207ull);
	in.version = 13000;
	vgpu_cuda_integrity_hash(&in, &dev, 1, out);
	assert_true(out[0] == 0x3341181C03CB675Cull && out[1] == 0x8ED383AA1F4CD1E8ull);
	in.version = 13001;
	vgpu_cuda_integrity_hash(&in, &dev, 1, out);
	assert_true(out[0] == 0x1841181C03CB675Cull && out[1] == 0x8ED383AA1F4CD1E8ull);
	/* Any input changes it. */
	in.version = 12082;
	in.tid ^= 1;
	vgpu_cuda_integrity_hash(&in, &dev, 1, out);
	assert_false(out[0] == 0xf7ce26b071a14844ull);
}

static void sample(struct vgpu_cuda_desc *d, uint32_t count)
{
	memset(d, 0, sizeof(*d));
	d->driver_version = 13000;
	d->count = count;
	for (uint32_t i = 0; i < count; i++) {
		snprintf(d->dev[i].name, sizeof(d->dev[i].name), "GPU %u", i);
		snprintf(d->dev[i].pci_bus_id, sizeof(d->dev[i].pci_bus_id), "0000:%02x:00.0", i & 0xff);
		d->dev[i].uuid[0] = (uint8_t)i;
		d->dev[i].total_mem = (uint64_t)(i + 1) << 34;
		d->dev[i].n_attrs = 147;
		for (uint32_t a = 0; a < 147; a++)
			d->dev[i].attr[a] = (int32_t)(a * 7 - 300);
	}
}

static void test_desc(void **state)
{
	static uint8_t buf[VGPU_CUDA_DESC_MAX + 64];
	static struct vgpu_cuda_desc d, e;
	size_t len;

	(void)state;
	for (uint32_t count = 0; count <= VGPU_CUDA_MAX_DEVICES; count++) {
		sample(&d, count);
		len = vgpu_cuda_desc_encode(&d, buf, sizeof(buf));
		assert_int_equal(len, vgpu_cuda_desc_size(&d));
		assert_int_equal(vgpu_cuda_desc_decode(buf, len, &e), VGPU_OK);
		assert_memory_equal(&d, &e, sizeof(d));
	}
	sample(&d, 2);
	len = vgpu_cuda_desc_encode(&d, buf, sizeof(buf));
	/* Every length but the right one. */
	for (size_t cut = 0; cut < len; cut += 97)
		assert_int_equal(vgpu_cuda_desc_decode(buf, cut, &e), VGPU_PROTOCOL);
	assert_int_equal(vgpu_cuda_desc_decode(buf, len + 1, &e), VGPU_PROTOCOL);
	assert_int_equal(vgpu_cuda_desc_decode(NULL, len, &e), VGPU_PROTOCOL);
	/* Bad format, count, n_attrs, unterminated strings. */
	uint8_t bad[sizeof(buf)];
	memcpy(bad, buf, len);
	bad[0] = 2;
	assert_int_equal(vgpu_cuda_desc_decode(bad, len, &e), VGPU_PROTOCOL);
	memcpy(bad, buf, len);
	bad[8] = VGPU_CUDA_MAX_DEVICES + 1;
	assert_int_equal(vgpu_cuda_desc_decode(bad, len, &e), VGPU_PROTOCOL);
	memcpy(bad, buf, len);
	bad[8] = 0xff, bad[11] = 0xff;
	assert_int_equal(vgpu_cuda_desc_decode(bad, len, &e), VGPU_PROTOCOL);
	memcpy(bad, buf, len);
	bad[VGPU_CUDA_DESC_HEAD + VGPU_CUDA_DEV_HEAD - 4] = VGPU_CUDA_ATTRS + 1;
	assert_int_equal(vgpu_cuda_desc_decode(bad, len, &e), VGPU_PROTOCOL);
	memcpy(bad, buf, len);
	memset(bad + VGPU_CUDA_DESC_HEAD, 'x', VGPU_CUDA_NAME_LEN);
	assert_int_equal(vgpu_cuda_desc_decode(bad, len, &e), VGPU_PROTOCOL);
	memcpy(bad, buf, len);
	memset(bad + VGPU_CUDA_DESC_HEAD + VGPU_CUDA_NAME_LEN + 24, 'x', VGPU_CUDA_BUS_ID_LEN);
	assert_int_equal(vgpu_cuda_desc_decode(bad, len, &e), VGPU_PROTOCOL);
	/* A failed decode leaves nothing behind. */
	struct vgpu_cuda_desc zero;
	memset(&zero, 0, sizeof(zero));
	assert_memory_equal(&e, &zero, sizeof(zero));
	/* The encoder refuses what the decoder would. */
	sample(&d, 1);
	d.dev[0].n_attrs = VGPU_CUDA_ATTRS + 1;
	assert_int_equal(vgpu_cuda_desc_encode(&d, buf, sizeof(buf)), 0);
	sample(&d, 1);
	memset(d.dev[0].name, 'x', sizeof(d.dev[0].name));
	assert_int_equal(vgpu_cuda_desc_encode(&d, buf, sizeof(buf)), 0);
	sample(&d, 1);
	assert_int_equal(vgpu_cuda_desc_encode(&d, buf, 100), 0);
}

/* The DESCRIBE exchange's framing: a reply built here parses; a reply to
 * another id, call or with a bad checksum does not. */
static void test_describe_messages(void **state)
{
	static uint8_t buf[VGPU_PROTO_HEADER_SIZE + VGPU_CUDA_DESCRIBED_MAX];
	static struct vgpu_cuda_desc d, e;
	uint8_t req[VGPU_PROTO_HEADER_SIZE];
	struct vgpu_proto_limits lim = { .max_payload = 0 };
	struct vgpu_msg_header h;
	uint32_t len;
	size_t n;

	(void)state;
	vgpu_cuda_build_describe(7, req);
	assert_int_equal(vgpu_proto_decode_header(req, &lim, &h), VGPU_OK);
	assert_int_equal(h.type, VGPU_MSG_CUDA);
	assert_int_equal(h.op, VGPU_CUDA_DESCRIBE);
	sample(&d, 3);
	n = vgpu_cuda_build_described(7, VGPU_OK, &d, buf, sizeof(buf));
	assert_true(n > VGPU_PROTO_HEADER_SIZE);
	assert_int_equal(vgpu_cuda_described_len(buf, 7, &len), VGPU_OK);
	assert_int_equal(len, n - VGPU_PROTO_HEADER_SIZE);
	assert_int_equal(vgpu_cuda_parse_described(buf, buf + VGPU_PROTO_HEADER_SIZE, len, &e), VGPU_OK);
	assert_memory_equal(&d, &e, sizeof(d));
	assert_int_equal(vgpu_cuda_described_len(buf, 8, &len), VGPU_PROTOCOL);
	buf[VGPU_PROTO_HEADER_SIZE + 40] ^= 1;
	assert_int_equal(vgpu_cuda_parse_described(buf, buf + VGPU_PROTO_HEADER_SIZE, len, &e),
			 VGPU_PROTOCOL);
	/* An error status travels alone. */
	n = vgpu_cuda_build_described(9, VGPU_DENIED, NULL, buf, sizeof(buf));
	assert_int_equal(n, VGPU_PROTO_HEADER_SIZE + 4);
	assert_int_equal(vgpu_cuda_described_len(buf, 9, &len), VGPU_OK);
	assert_int_equal(vgpu_cuda_parse_described(buf, buf + VGPU_PROTO_HEADER_SIZE, len, &e),
			 VGPU_DENIED);
	/* A call number out of range is no message at all. */
	req[16] = VGPU_CUDA_CALL_MAX + 1;
	assert_int_equal(vgpu_proto_decode_header(req, &lim, &h), VGPU_PROTOCOL);
}

/* The calls after OPEN: each encodes and decodes to itself; what a call
 * does not use, a wrong data length, a bad checksum or type is refused. */
static void test_call_messages(void **state)
{
	uint8_t head[VGPU_CUDA_MSG_HEAD];
	struct vgpu_cuda_msg m, d;

	(void)state;
	const struct vgpu_cuda_msg good[] = {
		{ .call = VGPU_CUDA_OPEN, .id = 1 },
		{ .call = VGPU_CUDA_MEM_ALLOC, .id = 2, .v = { 1 << 20 } },
		{ .call = VGPU_CUDA_MEM_FREE, .id = 3, .v = { 0x7f0000000000ull } },
		{ .call = VGPU_CUDA_HTOD, .id = 4, .v = { 0x7f0000000000ull }, .data_len = 4096 },
		{ .call = VGPU_CUDA_DTOH, .id = 5, .v = { 0x7f0000000000ull, 4096 } },
		{ .call = VGPU_CUDA_SYNC, .id = 6, .v = { 0, 0, 0, 0, 0, 1 } }, /* device 1 */
		{ .call = VGPU_CUDA_LIB_LOAD, .id = 7, .data_len = 100 },
		{ .call = VGPU_CUDA_LIB_UNLOAD, .id = 8, .v = { 3 } },
		{ .call = VGPU_CUDA_GET_KERNEL, .id = 9, .v = { 3 }, .data_len = VGPU_CUDA_MAX_NAME },
		{ .call = VGPU_CUDA_LAUNCH, .id = 10, .v = { 1, 2, 3, 4, 5 },
		  .data_len = VGPU_CUDA_MAX_PARAM_BYTES },
		{ .call = VGPU_CUDA_LAUNCH, .id = 11, .v = { 1, 2, 3, 4 } }, /* no parameters */
		/* On streams: HTOD's a1, DTOH's a2, LAUNCH's a4 high half. */
		{ .call = VGPU_CUDA_HTOD, .id = 12, .v = { 0x7f0000000000ull, 7 }, .data_len = 8 },
		{ .call = VGPU_CUDA_DTOH, .id = 13, .v = { 0x7f0000000000ull, 8, 7 } },
		{ .call = VGPU_CUDA_LAUNCH, .id = 14, .v = { 1, 2, 3, 4, 5 | 7ull << 32 } },
		{ .call = VGPU_CUDA_STREAM_CREATE, .id = 15, .v = { 1, (uint32_t)-2 } },
		{ .call = VGPU_CUDA_STREAM_DESTROY, .id = 16, .v = { 7 } },
		{ .call = VGPU_CUDA_STREAM_SYNC, .id = 17, .v = { 7 } },
		{ .call = VGPU_CUDA_STREAM_QUERY, .id = 18, .v = { 0 } },
		{ .call = VGPU_CUDA_STREAM_WAIT, .id = 19, .v = { 7, 9 } },
		{ .call = VGPU_CUDA_EVENT_CREATE, .id = 20, .v = { 2 } },
		{ .call = VGPU_CUDA_EVENT_DESTROY, .id = 21, .v = { 9 } },
		{ .call = VGPU_CUDA_EVENT_RECORD, .id = 22, .v = { 9, 7 } },
		{ .call = VGPU_CUDA_EVENT_SYNC, .id = 23, .v = { 9 } },
		{ .call = VGPU_CUDA_EVENT_QUERY, .id = 24, .v = { 9 } },
		{ .call = VGPU_CUDA_EVENT_ELAPSED, .id = 25, .v = { 9, 10 } },
		{ .call = VGPU_CUDA_MEMSET, .id = 26, .v = { 0x7f0000000000ull, 0xff, 64, 4, 7 } },
		{ .call = VGPU_CUDA_DTOD, .id = 27, .v = { 0x7f0000001000ull, 0x7f0000000000ull, 64, 7 } },
		/* Parameters and 16 launch attributes (cuLaunchKernelEx). */
		{ .call = VGPU_CUDA_LAUNCH, .id = 28, .v = { 1, 2, 3, 4, 5 },
		  .data_len = VGPU_CUDA_MAX_PARAM_BYTES +
			      VGPU_CUDA_MAX_LAUNCH_ATTRS * VGPU_CUDA_LAUNCH_ATTR_BYTES },
		{ .call = VGPU_CUDA_FUNC_ATTR, .id = 29, .v = { 1, 8, 1, 1024 } },
		{ .call = VGPU_CUDA_OCCUPANCY, .id = 30, .v = { 1, VGPU_CUDA_OCC_BLOCKS, 256, 0, 1 } },
		{ .call = VGPU_CUDA_OCCUPANCY, .id = 31, .v = { 1, VGPU_CUDA_OCC_CLUSTERS },
		  .data_len = VGPU_CUDA_LAUNCH_CONFIG_BYTES + 2 * VGPU_CUDA_LAUNCH_ATTR_BYTES },
		{ .call = VGPU_CUDA_GLOBAL, .id = 32, .v = { 3 }, .data_len = 2 },
		{ .call = VGPU_CUDA_CTX_INFO, .id = 33, .v = { 1, 2 } },
		{ .call = VGPU_CUDA_WINDOW, .id = 34, .v = { 1 << 28, 1 << 20 } },
		{ .call = VGPU_CUDA_KICK, .id = 37 },
		{ .call = VGPU_CUDA_HTOD_WIN, .id = 35, .v = { 0x7f0000000000ull, 4096, 64, 7, 1 } },
		{ .call = VGPU_CUDA_DTOH_WIN, .id = 36, .v = { 0x7f0000000000ull, 0, 64 } },
		{ .call = VGPU_CUDA_MEM_ALLOC_ASYNC, .id = 38, .v = { 4096, 7, 2 } },
		{ .call = VGPU_CUDA_MEM_FREE_ASYNC, .id = 39, .v = { 0x7f0000000000ull, 7 } },
		{ .call = VGPU_CUDA_POOL, .id = 40, .v = { VGPU_CUDA_POOL_SET, 2, 4, 1 << 20 } },
		{ .call = VGPU_CUDA_VMM, .id = 41,
		  .v = { VGPU_CUDA_VMM_MAP, 0x7f0000000000ull, 2 << 20, 0, 3 } },
		{ .call = VGPU_CUDA_ARRAY, .id = 42, .v = { 0, 64, 16, 0, 0x20 | 1 << 16 } },
		{ .call = VGPU_CUDA_ARRAY_COPY, .id = 43, .v = { 7, VGPU_CUDA_FROM_ARRAY },
		  .data_len = VGPU_CUDA_ARRAY_COPY_BYTES },
		{ .call = VGPU_CUDA_TEX, .id = 44, .v = { VGPU_CUDA_TEX_CREATE, 1 },
		  .data_len = VGPU_CUDA_RES_DESC_BYTES + VGPU_CUDA_TEX_DESC_BYTES +
			      VGPU_CUDA_VIEW_DESC_BYTES },
		{ .call = VGPU_CUDA_TEX, .id = 45, .v = { VGPU_CUDA_TEX_CREATE },
		  .data_len = VGPU_CUDA_RES_DESC_BYTES + VGPU_CUDA_TEX_DESC_BYTES },
		{ .call = VGPU_CUDA_TEX, .id = 46, .v = { VGPU_CUDA_SURF_CREATE },
		  .data_len = VGPU_CUDA_RES_DESC_BYTES },
		{ .call = VGPU_CUDA_TEX, .id = 47, .v = { VGPU_CUDA_TEX_DESTROY, 0x5001 } },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		vgpu_cuda_encode(&good[i], false, head);
		assert_int_equal(vgpu_cuda_decode(head, false, &d), VGPU_OK);
		assert_memory_equal(&d, &good[i], sizeof(d));
		/* Not a reply. */
		assert_int_equal(vgpu_cuda_decode(head, true, &d), VGPU_PROTOCOL);
	}
	/* Replies: results, and data only for a DTOH that succeeded. */
	m = (struct vgpu_cuda_msg){ .call = VGPU_CUDA_MEM_INFO, .id = 7, .v = { 10, 20 } };
	vgpu_cuda_encode(&m, true, head);
	assert_int_equal(vgpu_cuda_decode(head, true, &d), VGPU_OK);
	assert_memory_equal(&d, &m, sizeof(d));
	m = (struct vgpu_cuda_msg){ .call = VGPU_CUDA_DTOH, .id = 8, .data_len = 4096 };
	vgpu_cuda_encode(&m, true, head);
	assert_int_equal(vgpu_cuda_decode(head, true, &d), VGPU_OK);
	m.status = CUDA_ERROR_INVALID_VALUE;
	vgpu_cuda_encode(&m, true, head);
	assert_int_equal(vgpu_cuda_decode(head, true, &d), VGPU_PROTOCOL);
	/* A kernel's layout: 8 bytes per parameter, within the bounds. */
	m = (struct vgpu_cuda_msg){ .call = VGPU_CUDA_GET_KERNEL, .id = 12, .v = { 1, 4, 28 },
				    .data_len = 32 };
	vgpu_cuda_encode(&m, true, head);
	assert_int_equal(vgpu_cuda_decode(head, true, &d), VGPU_OK);
	assert_memory_equal(&d, &m, sizeof(d));
	const struct vgpu_cuda_msg bad_layout[] = {
		{ .call = VGPU_CUDA_GET_KERNEL, .v = { 1, 4, 28 }, .data_len = 24 },
		{ .call = VGPU_CUDA_GET_KERNEL, .v = { 1, VGPU_CUDA_MAX_PARAMS + 1, 28 },
		  .data_len = 8 * (VGPU_CUDA_MAX_PARAMS + 1) },
		{ .call = VGPU_CUDA_GET_KERNEL, .v = { 1, 0, VGPU_CUDA_MAX_PARAM_BYTES + 1 } },
		{ .call = VGPU_CUDA_GET_KERNEL, .v = { 1, 0, 0, 1 } },
		{ .call = VGPU_CUDA_LIB_LOAD, .v = { 1 }, .data_len = 4 }, /* data in a reply */
	};
	for (size_t i = 0; i < sizeof(bad_layout) / sizeof(bad_layout[0]); i++) {
		vgpu_cuda_encode(&bad_layout[i], true, head);
		assert_int_equal(vgpu_cuda_decode(head, true, &d), VGPU_PROTOCOL);
	}
	/* Unused fields, data where none goes, none where some must. */
	const struct vgpu_cuda_msg bad[] = {
		{ .call = VGPU_CUDA_OPEN, .v = { 1 } },
		{ .call = VGPU_CUDA_MEM_ALLOC, .v = { 1, 2, 3 } },
		{ .call = VGPU_CUDA_OPEN, .v = { 0, 0, 0, 0, 0, 1 } }, /* OPEN names no device */
		{ .call = VGPU_CUDA_SYNC, .v = { 0, 0, 0, 0, 1 } },
		{ .call = VGPU_CUDA_MEM_ALLOC, .v = { 1 }, .data_len = 4 },
		{ .call = VGPU_CUDA_HTOD, .v = { 1 } },
		{ .call = VGPU_CUDA_DTOH, .v = { 1, 4 }, .data_len = 4 },
		{ .call = VGPU_CUDA_LIB_LOAD },                            /* no image */
		{ .call = VGPU_CUDA_LIB_LOAD, .v = { 1 }, .data_len = 4 },
		{ .call = VGPU_CUDA_LIB_UNLOAD, .v = { 1 }, .data_len = 4 },
		{ .call = VGPU_CUDA_GET_KERNEL, .v = { 1 } },              /* no name */
		{ .call = VGPU_CUDA_GET_KERNEL, .v = { 1 }, .data_len = VGPU_CUDA_MAX_NAME + 1 },
		{ .call = VGPU_CUDA_GET_KERNEL, .v = { 1, 1 }, .data_len = 2 },
		{ .call = VGPU_CUDA_HTOD, .v = { 1, 2, 3 }, .data_len = 4 },
		{ .call = VGPU_CUDA_DTOH, .v = { 1, 4, 2, 1 } },
		{ .call = VGPU_CUDA_STREAM_CREATE, .v = { 0, 0, 1 } },
		{ .call = VGPU_CUDA_STREAM_SYNC, .v = { 1, 1 } },
		{ .call = VGPU_CUDA_STREAM_WAIT, .v = { 1, 1, 1 } },
		{ .call = VGPU_CUDA_EVENT_CREATE, .v = { 0, 1 } },
		{ .call = VGPU_CUDA_EVENT_RECORD, .v = { 1, 1 }, .data_len = 4 },
		{ .call = VGPU_CUDA_EVENT_QUERY, .v = { 1, 1 } },
		{ .call = VGPU_CUDA_EVENT_ELAPSED, .v = { 1, 2, 3 } },
		{ .call = VGPU_CUDA_MEMSET, .v = { 1, 0, 4, 4 }, .data_len = 16 },
		{ .call = VGPU_CUDA_DTOD, .v = { 1, 2, 4, 0, 1 } },
		{ .call = VGPU_CUDA_LAUNCH, .v = { 1 },
		  .data_len = VGPU_CUDA_MAX_PARAM_BYTES +
			      VGPU_CUDA_MAX_LAUNCH_ATTRS * VGPU_CUDA_LAUNCH_ATTR_BYTES + 1 },
		{ .call = VGPU_CUDA_FUNC_ATTR, .v = { 1, 0, 0, 0, 1 } },
		{ .call = VGPU_CUDA_FUNC_ATTR, .v = { 1 }, .data_len = 4 },
		/* CLUSTERS' configuration: whole attributes after 32 bytes, at
		 * most 16 of them; the other questions carry none. */
		{ .call = VGPU_CUDA_OCCUPANCY, .v = { 1, VGPU_CUDA_OCC_CLUSTERS } },
		{ .call = VGPU_CUDA_OCCUPANCY, .v = { 1, VGPU_CUDA_OCC_CLUSTERS },
		  .data_len = VGPU_CUDA_LAUNCH_CONFIG_BYTES + 15 },
		{ .call = VGPU_CUDA_OCCUPANCY, .v = { 1, VGPU_CUDA_OCC_CLUSTERS },
		  .data_len = VGPU_CUDA_LAUNCH_CONFIG_BYTES + 17 * VGPU_CUDA_LAUNCH_ATTR_BYTES },
		{ .call = VGPU_CUDA_OCCUPANCY, .v = { 1, VGPU_CUDA_OCC_BLOCKS }, .data_len = 32 },
		{ .call = VGPU_CUDA_GLOBAL, .v = { 1 } },                  /* no name */
		{ .call = VGPU_CUDA_GLOBAL, .v = { 1 }, .data_len = VGPU_CUDA_MAX_NAME + 1 },
		{ .call = VGPU_CUDA_CTX_INFO, .v = { 1, 2, 3, 4 } },
		{ .call = VGPU_CUDA_CAPTURE_BEGIN, .v = { 1, 0, 3 } },
		{ .call = VGPU_CUDA_CAPTURE_END, .v = { 1, 2 } },
		{ .call = VGPU_CUDA_GRAPH_INSTANTIATE, .v = { 1, 0, 3 } },
		{ .call = VGPU_CUDA_GRAPH_LAUNCH, .v = { 1, 0, 0, 4 } },
		{ .call = VGPU_CUDA_GRAPH_LAUNCH, .v = { 1 }, .data_len = 4 },
		{ .call = VGPU_CUDA_GRAPH_DESTROY, .v = { 1, 0, 3 } },
		{ .call = VGPU_CUDA_WINDOW, .v = { 1, 2, 3, 4 } },
		{ .call = VGPU_CUDA_KICK, .v = { 1 } },
		{ .call = VGPU_CUDA_KICK, .data_len = 4 },
		{ .call = VGPU_CUDA_WINDOW, .v = { 4096 }, .data_len = 4 },  /* bytes in the call */
		{ .call = VGPU_CUDA_HTOD_WIN, .v = { 1, 0, 4 }, .data_len = 4 },
		{ .call = VGPU_CUDA_MEM_ALLOC_ASYNC, .v = { 1, 0, 0, 4 } },
		{ .call = VGPU_CUDA_MEM_FREE_ASYNC, .v = { 1, 0, 3 } },
		{ .call = VGPU_CUDA_POOL, .v = { 1, 0, 0, 0, 5 } },
		{ .call = VGPU_CUDA_VMM, .v = { 0, 2 << 20 }, .data_len = 4 },
		{ .call = VGPU_CUDA_ARRAY, .v = { 0, 1 }, .data_len = 4 },
		{ .call = VGPU_CUDA_ARRAY_COPY, .v = { 0, 1, 2 },
		  .data_len = VGPU_CUDA_ARRAY_COPY_BYTES },              /* a2 unused */
		{ .call = VGPU_CUDA_ARRAY_COPY, .v = { 0, 1 },
		  .data_len = VGPU_CUDA_ARRAY_COPY_BYTES - 8 },          /* the box cut */
		{ .call = VGPU_CUDA_TEX, .v = { VGPU_CUDA_TEX_CREATE, 1 },
		  .data_len = VGPU_CUDA_RES_DESC_BYTES + VGPU_CUDA_TEX_DESC_BYTES }, /* no view */
		{ .call = VGPU_CUDA_TEX, .v = { VGPU_CUDA_SURF_CREATE },
		  .data_len = VGPU_CUDA_RES_DESC_BYTES + 1 },
		{ .call = VGPU_CUDA_TEX, .v = { VGPU_CUDA_TEX_DESTROY, 1 }, .data_len = 8 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vgpu_cuda_encode(&bad[i], false, head);
		assert_int_equal(vgpu_cuda_decode(head, false, &d), VGPU_PROTOCOL);
	}
	m = (struct vgpu_cuda_msg){ .call = VGPU_CUDA_MEM_INFO, .v = { 0, 0, 1 } };
	vgpu_cuda_encode(&m, true, head);
	assert_int_equal(vgpu_cuda_decode(head, true, &d), VGPU_PROTOCOL);
	/* The handle a create answers, the time ELAPSED does; nothing else. */
	const struct vgpu_cuda_msg replies[] = {
		{ .call = VGPU_CUDA_STREAM_CREATE, .v = { 3 } },
		{ .call = VGPU_CUDA_EVENT_CREATE, .v = { 4 } },
		{ .call = VGPU_CUDA_EVENT_ELAPSED, .v = { 0x3e800000 } },
		{ .call = VGPU_CUDA_STREAM_QUERY, .status = CUDA_ERROR_NOT_READY },
		{ .call = VGPU_CUDA_PRIORITY_RANGE, .v = { 0, 0xfffffffb } },
		{ .call = VGPU_CUDA_FUNC_ATTR, .v = { 1024 } },
		{ .call = VGPU_CUDA_OCCUPANCY, .v = { 16 } },
		{ .call = VGPU_CUDA_GLOBAL, .v = { 0x7f0000000000ull, 16 } },
		{ .call = VGPU_CUDA_CTX_INFO, .v = { 3020 } },
		{ .call = VGPU_CUDA_WINDOW, .v = { 0x7f0000000000ull } },
		{ .call = VGPU_CUDA_MEM_ALLOC_ASYNC, .v = { 0x7f0000000000ull } },
		{ .call = VGPU_CUDA_POOL, .v = { 3 } },
		{ .call = VGPU_CUDA_VMM, .v = { 0, 2 << 20 } },
		{ .call = VGPU_CUDA_ARRAY, .v = { 1, 4096 } },
		{ .call = VGPU_CUDA_TEX, .v = { 0x5001 } },
	};
	for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
		vgpu_cuda_encode(&replies[i], true, head);
		assert_int_equal(vgpu_cuda_decode(head, true, &d), VGPU_OK);
		assert_memory_equal(&d, &replies[i], sizeof(d));
	}
	const struct vgpu_cuda_msg bad_replies[] = {
		{ .call = VGPU_CUDA_STREAM_CREATE, .v = { 3, 1 } },
		{ .call = VGPU_CUDA_STREAM_SYNC, .v = { 1 } },
		{ .call = VGPU_CUDA_EVENT_RECORD, .v = { 1 } },
		{ .call = VGPU_CUDA_EVENT_ELAPSED, .v = { 1 }, .data_len = 4 },
		{ .call = VGPU_CUDA_PRIORITY_RANGE, .v = { 0, 1, 2 } },
		{ .call = VGPU_CUDA_FUNC_ATTR, .v = { 1, 2 } },
		{ .call = VGPU_CUDA_OCCUPANCY, .v = { 1, 2 } },
		{ .call = VGPU_CUDA_GLOBAL, .v = { 1, 2, 3 } },
		{ .call = VGPU_CUDA_CTX_INFO, .v = { 1 }, .data_len = 4 },
		{ .call = VGPU_CUDA_DTOH_WIN, .v = { 1 } },
		{ .call = VGPU_CUDA_MEM_FREE_ASYNC, .v = { 1 } },
		{ .call = VGPU_CUDA_POOL, .v = { 1, 2 } },
		{ .call = VGPU_CUDA_VMM, .v = { 1, 2, 3, 4 } },
		{ .call = VGPU_CUDA_ARRAY, .v = { 1, 2, 3 } },
		{ .call = VGPU_CUDA_ARRAY_COPY, .v = { 1 } },
		{ .call = VGPU_CUDA_TEX, .v = { 1, 2 } },
	};
	for (size_t i = 0; i < sizeof(bad_replies) / sizeof(bad_replies[0]); i++) {
		vgpu_cuda_encode(&bad_replies[i], true, head);
		assert_int_equal(vgpu_cuda_decode(head, true, &d), VGPU_PROTOCOL);
	}
	/* More data than a message carries; a bad checksum; DESCRIBE is no
	 * block call; a call number beyond the last. */
	m = (struct vgpu_cuda_msg){ .call = VGPU_CUDA_HTOD, .v = { 1 },
				    .data_len = VGPU_CUDA_MAX_DATA + 1 };
	vgpu_cuda_encode(&m, false, head);
	assert_int_equal(vgpu_cuda_decode(head, false, &d), VGPU_LIMIT);
	m = (struct vgpu_cuda_msg){ .call = VGPU_CUDA_MEM_ALLOC, .v = { 1 } };
	vgpu_cuda_encode(&m, false, head);
	head[VGPU_PROTO_HEADER_SIZE] ^= 1;
	assert_int_equal(vgpu_cuda_decode(head, false, &d), VGPU_PROTOCOL);
	m = (struct vgpu_cuda_msg){ .call = VGPU_CUDA_DESCRIBE };
	vgpu_cuda_encode(&m, false, head);
	assert_int_equal(vgpu_cuda_decode(head, false, &d), VGPU_PROTOCOL);
	m = (struct vgpu_cuda_msg){ .call = VGPU_CUDA_CALL_MAX + 1 };
	vgpu_cuda_encode(&m, false, head);
	assert_int_equal(vgpu_cuda_decode(head, false, &d), VGPU_PROTOCOL);
}

static void test_images(void **state)
{
	static uint8_t fb[16 + 64 + 100];
	const void *start;
	struct {
		uint32_t magic, version;
		const void *data, *list;
	} wrapper = { 0x466243B1u, 2, fb, NULL };
	const char *ptx = "//\n.version 8.0\n.target sm_90\n";

	(void)state;
	memset(fb, 0, sizeof(fb));
	uint32_t magic = 0xBA55ED50u;
	uint16_t one = 1, head = 16, entry_version = 0x0101;
	uint64_t files = 64 + 100;
	uint32_t entry_head = 64, payload = 100;
	memcpy(fb, &magic, 4);
	memcpy(fb + 4, &one, 2);
	memcpy(fb + 6, &head, 2);
	memcpy(fb + 8, &files, 8);
	memcpy(fb + 16 + 2, &entry_version, 2);
	memcpy(fb + 16 + 4, &entry_head, 4);
	memcpy(fb + 16 + 8, &payload, 4);
	assert_int_equal(vgpu_cuda_image_size(fb, &start), sizeof(fb));
	assert_ptr_equal(start, fb);
	assert_int_equal(vgpu_cuda_image_size(&wrapper, &start), sizeof(fb));
	assert_ptr_equal(start, fb);
	assert_int_equal(vgpu_cuda_image_size(ptx, &start), strlen(ptx) + 1);
	/* An entry running past the fatbin; a fatbin past what may be read;
	 * a bad entry version; a wrapper of an unknown version; garbage. */
	payload = 101;
	memcpy(fb + 16 + 8, &payload, 4);
	assert_int_equal(vgpu_cuda_fatbin_size(fb, sizeof(fb)), 0);
	payload = 100;
	memcpy(fb + 16 + 8, &payload, 4);
	assert_int_equal(vgpu_cuda_fatbin_size(fb, sizeof(fb) - 1), 0);
	fb[16 + 2] = 0;
	assert_int_equal(vgpu_cuda_fatbin_size(fb, sizeof(fb)), 0);
	fb[16 + 2] = 1;
	wrapper.version = 3;
	assert_int_equal(vgpu_cuda_image_size(&wrapper, &start), 0);
	assert_int_equal(vgpu_cuda_image_size("garbage, not an image", &start), 0);
	assert_int_equal(vgpu_cuda_image_size(NULL, &start), 0);
	/* Bounded by the bytes there are: PTX without its NUL within them. */
	assert_int_equal(vgpu_cuda_image_len((const uint8_t *)ptx, strlen(ptx) + 1), strlen(ptx) + 1);
	assert_int_equal(vgpu_cuda_image_len((const uint8_t *)ptx, strlen(ptx)), 0);
}

/* An ELF cubin: its section header table ends it, once every section
 * and segment lies before that end. */
static void test_elf_images(void **state)
{
	static uint8_t elf[sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr) + 64 + 2 * sizeof(Elf64_Shdr)];
	Elf64_Ehdr eh = { .e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64 } };
	Elf64_Phdr ph = { .p_offset = sizeof(eh) + sizeof(ph), .p_filesz = 64 };
	Elf64_Shdr sh[2] = { { .sh_type = SHT_NULL },
			     { .sh_type = SHT_PROGBITS, .sh_offset = sizeof(eh) + sizeof(ph),
			       .sh_size = 64 } };

	(void)state;
	eh.e_phoff = sizeof(eh);
	eh.e_phnum = 1;
	eh.e_phentsize = sizeof(ph);
	eh.e_shoff = sizeof(eh) + sizeof(ph) + 64;
	eh.e_shnum = 2;
	eh.e_shentsize = sizeof(Elf64_Shdr);
#define PUT()                                                            \
	do {                                                             \
		memcpy(elf, &eh, sizeof(eh));                            \
		memcpy(elf + sizeof(eh), &ph, sizeof(ph));               \
		memcpy(elf + eh.e_shoff, sh, sizeof(sh));                \
	} while (0)
	PUT();
	assert_int_equal(vgpu_cuda_image_len(elf, sizeof(elf)), sizeof(elf));
	assert_int_equal(vgpu_cuda_image_len(elf, sizeof(elf) - 1), 0);
	sh[1].sh_size = 64 + 2 * sizeof(Elf64_Shdr) + 1; /* a section past the end */
	PUT();
	assert_int_equal(vgpu_cuda_image_len(elf, sizeof(elf)), 0);
	sh[1].sh_type = SHT_NOBITS; /* which takes no bytes of the file */
	PUT();
	assert_int_equal(vgpu_cuda_image_len(elf, sizeof(elf)), sizeof(elf));
	sh[1].sh_offset = UINT64_MAX - 8; /* no wrapping around */
	sh[1].sh_type = SHT_PROGBITS;
	sh[1].sh_size = 64;
	PUT();
	assert_int_equal(vgpu_cuda_image_len(elf, sizeof(elf)), 0);
	sh[1].sh_offset = sizeof(eh) + sizeof(ph);
	ph.p_filesz = UINT64_MAX; /* a segment past the end */
	PUT();
	assert_int_equal(vgpu_cuda_image_len(elf, sizeof(elf)), 0);
	ph.p_filesz = 64;
	eh.e_phnum = 1000; /* program headers past the end */
	PUT();
	assert_int_equal(vgpu_cuda_image_len(elf, sizeof(elf)), 0);
#undef PUT

	/* cuBLAS Lt's layout: the program headers after the section headers,
	 * which then do not end the image. */
	static uint8_t lt[sizeof(Elf64_Ehdr) + 64 + 2 * sizeof(Elf64_Shdr) + sizeof(Elf64_Phdr)];
	eh.e_shoff = sizeof(eh) + 64;
	eh.e_phoff = eh.e_shoff + sizeof(sh);
	eh.e_phnum = 1;
	ph.p_offset = sizeof(eh);
	sh[1].sh_offset = sizeof(eh);
	memcpy(lt, &eh, sizeof(eh));
	memcpy(lt + eh.e_shoff, sh, sizeof(sh));
	memcpy(lt + eh.e_phoff, &ph, sizeof(ph));
	assert_int_equal(vgpu_cuda_image_len(lt, sizeof(lt)), sizeof(lt));
	assert_int_equal(vgpu_cuda_image_len(lt, sizeof(lt) - 1), 0);
}

static void test_errors(void **state)
{
	const char *s = NULL;

	(void)state;
	assert_int_equal(cuGetErrorName(CUDA_ERROR_NOT_SUPPORTED, &s), CUDA_SUCCESS);
	assert_string_equal(s, "CUDA_ERROR_NOT_SUPPORTED");
	assert_int_equal(cuGetErrorString(CUDA_ERROR_NO_DEVICE, &s), CUDA_SUCCESS);
	assert_non_null(strstr(s, "no CUDA-capable devices"));
	assert_int_equal(cuGetErrorName((CUresult)12345, &s), CUDA_ERROR_INVALID_VALUE);
	assert_null(s);
	/* Before cuInit, queries say so. */
	int n;
	assert_int_equal(cuDeviceGetCount(&n), CUDA_ERROR_NOT_INITIALIZED);
}

static void host_fn(void *arg)
{
	(void)arg;
}

/* Graphs built node by node: what needs no host (launches are the e2e
 * tests'). */
static void test_graphs(void **state)
{
	CUDA_HOST_NODE_PARAMS hp = { .fn = host_fn };
	CUDA_MEMSET_NODE_PARAMS mp = { .dst = 0x1000, .value = 7, .elementSize = 4, .width = 16,
				       .height = 1 };
	CUgraph g, other, clone;
	CUgraphNode a, b, c, x, found, list[5];
	CUgraphExec e, e2;
	CUgraphNodeType type;
	CUgraphExecUpdateResultInfo info;
	size_t n;

	(void)state;
	assert_int_equal(cuGraphCreate(&g, 1), CUDA_ERROR_INVALID_VALUE); /* flags are 0 */
	assert_int_equal(cuGraphCreate(&g, 0), CUDA_SUCCESS);
	assert_int_equal(cuGraphCreate(&other, 0), CUDA_SUCCESS);
	/* a -> b -> c, a -> c */
	assert_int_equal(cuGraphAddHostNode(&a, g, NULL, 0, &hp), CUDA_SUCCESS);
	assert_int_equal(cuGraphAddMemsetNode(&b, g, &a, 1, &mp, NULL), CUDA_SUCCESS);
	CUgraphNode ab[2] = { a, b };
	assert_int_equal(cuGraphAddEmptyNode(&c, g, ab, 2), CUDA_SUCCESS);
	/* Bad nodes: none, NULL dependencies, another graph's, the same twice,
	 * more than the graph has, a bad memset, no host function. */
	assert_int_equal(cuGraphAddEmptyNode(NULL, g, NULL, 0), CUDA_ERROR_INVALID_VALUE);
	assert_int_equal(cuGraphAddEmptyNode(&x, g, NULL, 1), CUDA_ERROR_INVALID_VALUE);
	assert_int_equal(cuGraphAddEmptyNode(&x, other, &a, 1), CUDA_ERROR_INVALID_VALUE);
	CUgraphNode twice[2] = { a, a };
	assert_int_equal(cuGraphAddEmptyNode(&x, g, twice, 2), CUDA_ERROR_INVALID_VALUE);
	assert_int_equal(cuGraphAddEmptyNode(&x, g, ab, (size_t)1 << 40), CUDA_ERROR_INVALID_VALUE);
	CUgraphNode junk = (CUgraphNode)&mp;
	assert_int_equal(cuGraphAddEmptyNode(&x, g, &junk, 1), CUDA_ERROR_INVALID_HANDLE);
	assert_int_equal(cuGraphAddEmptyNode(&x, (CUgraph)&mp, NULL, 0), CUDA_ERROR_INVALID_HANDLE);
	/* A misaligned handle (as cudart passes a host function for a kernel
	 * once the host is gone): refused before anything is read through it
	 * (UBSan, in the sanitized build, would stop on a read). */
	char bytes[64] = { 0 };
	void *odd = bytes + 1;
	assert_int_equal(cuGraphDestroy((CUgraph)odd), CUDA_ERROR_INVALID_HANDLE);
	assert_int_equal(cuGraphNodeGetType((CUgraphNode)odd, &type), CUDA_ERROR_INVALID_HANDLE);
	assert_int_equal(cuGraphExecDestroy((CUgraphExec)odd), CUDA_ERROR_INVALID_HANDLE);
	assert_int_equal(cuStreamDestroy((CUstream)odd), CUDA_ERROR_INVALID_HANDLE);
	CUDA_MEMSET_NODE_PARAMS bad = mp;
	bad.elementSize = 3;
	assert_int_equal(cuGraphAddMemsetNode(&x, g, NULL, 0, &bad, NULL), CUDA_ERROR_INVALID_VALUE);
	bad = mp;
	bad.height = 2;
	bad.pitch = 8; /* narrower than a row */
	assert_int_equal(cuGraphAddMemsetNode(&x, g, NULL, 0, &bad, NULL), CUDA_ERROR_INVALID_VALUE);
	bad = mp;
	bad.width = SIZE_MAX;
	bad.height = 2;
	bad.pitch = SIZE_MAX; /* a row's bytes overflow */
	assert_int_equal(cuGraphAddMemsetNode(&x, g, NULL, 0, &bad, NULL), CUDA_ERROR_INVALID_VALUE);
	CUDA_HOST_NODE_PARAMS nofn = { 0 };
	assert_int_equal(cuGraphAddHostNode(&x, g, NULL, 0, &nofn), CUDA_ERROR_INVALID_VALUE);
	/* Not served, through the generic call; reserved fields must be 0. */
	CUgraphNodeParams np = { .type = CU_GRAPH_NODE_TYPE_EXT_SEMAS_SIGNAL };
	assert_int_equal(cuGraphAddNode(&x, g, NULL, NULL, 0, &np), CUDA_ERROR_NOT_SUPPORTED);
	/* Memory nodes: an allocation of nothing, or of no parameters; a free
	 * of memory no allocation node made (directly and generically). */
	np = (CUgraphNodeParams){ .type = CU_GRAPH_NODE_TYPE_MEM_ALLOC };
	assert_int_equal(cuGraphAddNode(&x, g, NULL, NULL, 0, &np), CUDA_ERROR_INVALID_VALUE);
	assert_int_equal(cuGraphAddMemAllocNode(&x, g, NULL, 0, NULL), CUDA_ERROR_INVALID_VALUE);
	assert_int_equal(cuGraphAddMemFreeNode(&x, g, NULL, 0, 0x1000), CUDA_ERROR_INVALID_VALUE);
	np = (CUgraphNodeParams){ .type = CU_GRAPH_NODE_TYPE_MEM_FREE, .free = { 0x1000 } };
	assert_int_equal(cuGraphAddNode(&x, g, NULL, NULL, 0, &np), CUDA_ERROR_INVALID_VALUE);
	assert_int_equal(cuGraphAddMemFreeNode(&x, (CUgraph)&mp, NULL, 0, 0x1000),
			 CUDA_ERROR_INVALID_HANDLE);
	np = (CUgraphNodeParams){ .type = CU_GRAPH_NODE_TYPE_EMPTY, .reserved2 = 1 };
	assert_int_equal(cuGraphAddNode(&x, g, NULL, NULL, 0, &np), CUDA_ERROR_INVALID_VALUE);
	/* A programmatic edge is not served. */
	CUgraphEdgeData early = { .type = CU_GRAPH_DEPENDENCY_TYPE_PROGRAMMATIC };
	np = (CUgraphNodeParams){ .type = CU_GRAPH_NODE_TYPE_EMPTY };
	assert_int_equal(cuGraphAddNode(&x, g, &a, &early, 1, &np), CUDA_ERROR_NOT_SUPPORTED);
	/* The queries: a count, then entries (NULL past the end). */
	assert_int_equal(cuGraphGetNodes(g, NULL, &n), CUDA_SUCCESS);
	assert_int_equal(n, 3);
	n = 5;
	assert_int_equal(cuGraphGetNodes(g, list, &n), CUDA_SUCCESS);
	assert_int_equal(n, 3);
	assert_ptr_equal(list[0], a);
	assert_null(list[3]);
	n = 2;
	assert_int_equal(cuGraphGetNodes(g, list, &n), CUDA_SUCCESS);
	assert_int_equal(n, 2);
	assert_int_equal(cuGraphGetRootNodes(g, NULL, &n), CUDA_SUCCESS);
	assert_int_equal(n, 1);
	assert_int_equal(cuGraphGetEdges(g, NULL, NULL, NULL, &n), CUDA_SUCCESS);
	assert_int_equal(n, 3);
	assert_int_equal(cuGraphNodeGetDependentNodes(a, NULL, NULL, &n), CUDA_SUCCESS);
	assert_int_equal(n, 2);
	assert_int_equal(cuGraphNodeGetDependencies(c, NULL, NULL, &n), CUDA_SUCCESS);
	assert_int_equal(n, 2);
	assert_int_equal(cuGraphNodeGetType(b, &type), CUDA_SUCCESS);
	assert_int_equal(type, CU_GRAPH_NODE_TYPE_MEMSET);
	/* A node's parameters, of its own type only. */
	CUDA_MEMSET_NODE_PARAMS mback;
	assert_int_equal(cuGraphMemsetNodeGetParams(b, &mback), CUDA_SUCCESS);
	assert_int_equal(mback.value, 7);
	CUDA_HOST_NODE_PARAMS hback;
	assert_int_equal(cuGraphHostNodeGetParams(b, &hback), CUDA_ERROR_INVALID_VALUE);
	/* Edges: one there already, one to itself, one of another graph. */
	assert_int_equal(cuGraphAddDependencies(g, &a, &b, NULL, 1), CUDA_ERROR_INVALID_VALUE);
	assert_int_equal(cuGraphAddDependencies(g, &a, &a, NULL, 1), CUDA_ERROR_INVALID_VALUE);
	CUgraphNode elsewhere;
	assert_int_equal(cuGraphAddEmptyNode(&elsewhere, other, NULL, 0), CUDA_SUCCESS);
	assert_int_equal(cuGraphAddDependencies(g, &a, &elsewhere, NULL, 1), CUDA_ERROR_INVALID_VALUE);
	assert_int_equal(cuGraphRemoveDependencies(g, &c, &a, NULL, 1), CUDA_ERROR_INVALID_VALUE);
	/* Instantiated; a cycle (c -> a) is refused; removed, it goes again. */
	assert_int_equal(cuGraphInstantiateWithFlags(&e, g, 0), CUDA_SUCCESS);
	assert_int_equal(cuGraphAddDependencies(g, &c, &a, NULL, 1), CUDA_SUCCESS);
	assert_int_equal(cuGraphInstantiateWithFlags(&e2, g, 0), CUDA_ERROR_INVALID_VALUE);
	assert_int_equal(cuGraphRemoveDependencies(g, &c, &a, NULL, 1), CUDA_SUCCESS);
	assert_int_equal(cuGraphInstantiateWithFlags(&e2, g, CUDA_GRAPH_INSTANTIATE_FLAG_DEVICE_LAUNCH),
			 CUDA_ERROR_NOT_SUPPORTED);
	/* Turned off and on: a memset may be, a host node may not. */
	unsigned int on = 0;
	assert_int_equal(cuGraphNodeSetEnabled(e, b, 0), CUDA_SUCCESS);
	assert_int_equal(cuGraphNodeGetEnabled(e, b, &on), CUDA_SUCCESS);
	assert_int_equal(on, 0);
	assert_int_equal(cuGraphNodeSetEnabled(e, a, 0), CUDA_ERROR_INVALID_VALUE);
	/* Changed in the executable graph: a node of the graph only. */
	mp.value = 9;
	assert_int_equal(cuGraphExecMemsetNodeSetParams(e, b, &mp, NULL), CUDA_SUCCESS);
	assert_int_equal(cuGraphExecHostNodeSetParams(e, b, &hp), CUDA_ERROR_INVALID_VALUE);
	CUgraphNode stray;
	assert_int_equal(cuGraphAddEmptyNode(&stray, other, NULL, 0), CUDA_SUCCESS);
	assert_int_equal(cuGraphExecMemsetNodeSetParams(e, stray, &mp, NULL), CUDA_ERROR_INVALID_VALUE);
	/* A clone: its nodes found from the original's, the same structure. */
	assert_int_equal(cuGraphClone(&clone, g), CUDA_SUCCESS);
	assert_int_equal(cuGraphNodeFindInClone(&found, c, clone), CUDA_SUCCESS);
	assert_ptr_not_equal(found, c);
	assert_int_equal(cuGraphNodeGetDependencies(found, NULL, NULL, &n), CUDA_SUCCESS);
	assert_int_equal(n, 2);
	assert_int_equal(cuGraphNodeFindInClone(&found, stray, clone), CUDA_ERROR_INVALID_VALUE);
	/* Updates: the clone has the same topology; the graph with a node
	 * more does not (nothing changes then). */
	assert_int_equal(cuGraphExecUpdate(e, clone, &info), CUDA_SUCCESS);
	assert_int_equal(info.result, CU_GRAPH_EXEC_UPDATE_SUCCESS);
	/* Its steps still run for the instantiated graph's nodes, and the
	 * memset turned off stays off. */
	assert_int_equal(cuGraphNodeGetEnabled(e, b, &on), CUDA_SUCCESS);
	assert_int_equal(on, 0);
	mp.value = 11;
	assert_int_equal(cuGraphExecMemsetNodeSetParams(e, b, &mp, NULL), CUDA_SUCCESS);
	bool found11 = false;
	for (size_t i = 0; i < e->n_steps; i++)
		found11 = found11 || (e->steps[i].node == b && e->steps[i].op.memset.value == 11);
	assert_true(found11);
	assert_int_equal(cuGraphAddEmptyNode(&x, g, &c, 1), CUDA_SUCCESS);
	assert_int_equal(cuGraphExecUpdate(e, g, &info), CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE);
	assert_int_equal(info.result, CU_GRAPH_EXEC_UPDATE_ERROR_TOPOLOGY_CHANGED);
	/* A child graph, a clone of it: the child's changes are its own. */
	CUgraph parent, inner;
	assert_int_equal(cuGraphCreate(&parent, 0), CUDA_SUCCESS);
	assert_int_equal(cuGraphAddChildGraphNode(&x, parent, NULL, 0, g), CUDA_SUCCESS);
	assert_int_equal(cuGraphChildGraphNodeGetGraph(x, &inner), CUDA_SUCCESS);
	assert_ptr_not_equal(inner, g);
	assert_int_equal(cuGraphGetNodes(inner, NULL, &n), CUDA_SUCCESS);
	assert_int_equal(n, 4);
	assert_int_equal(cuGraphInstantiateWithFlags(&e2, parent, 0), CUDA_SUCCESS);
	assert_int_equal(e2->n_steps, 2); /* the host node and the memset (empty nodes run nothing) */
	/* A node destroyed takes its edges with it. */
	assert_int_equal(cuGraphDestroyNode(b), CUDA_SUCCESS);
	assert_int_equal(cuGraphGetEdges(g, NULL, NULL, NULL, &n), CUDA_SUCCESS);
	assert_int_equal(n, 2); /* a -> c, c -> x */
	/* A graph made by capture (the host's) cannot be read node by node. */
	CUgraph captured;
	assert_int_equal(vgpu_cuda_graph_new(5, &captured), CUDA_SUCCESS);
	assert_int_equal(cuGraphGetNodes(captured, NULL, &n), CUDA_ERROR_NOT_SUPPORTED);
	assert_int_equal(cuGraphAddEmptyNode(&x, captured, NULL, 0), CUDA_ERROR_NOT_SUPPORTED);
	assert_int_equal(cuGraphAddChildGraphNode(&x, g, NULL, 0, captured), CUDA_ERROR_NOT_SUPPORTED);
	/* Updating from it: the failure that has programs instantiate anew. */
	assert_int_equal(cuGraphExecUpdate(e, captured, &info), CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE);
	assert_int_equal(info.result, CU_GRAPH_EXEC_UPDATE_ERROR_NOT_SUPPORTED);
	assert_int_equal(cuGraphExecDestroy(e2), CUDA_SUCCESS);
	assert_int_equal(cuGraphExecDestroy(e), CUDA_SUCCESS);
	assert_int_equal(cuGraphDestroy(parent), CUDA_SUCCESS);
	assert_int_equal(cuGraphDestroy(clone), CUDA_SUCCESS);
	assert_int_equal(cuGraphDestroy(other), CUDA_SUCCESS);
	assert_int_equal(cuGraphDestroy(g), CUDA_SUCCESS);
	free(captured); /* its host is the (absent) peer's */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proc_address),
		cmocka_unit_test(test_integrity),
		cmocka_unit_test(test_desc),
		cmocka_unit_test(test_describe_messages),
		cmocka_unit_test(test_call_messages),
		cmocka_unit_test(test_images),
		cmocka_unit_test(test_elf_images),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_graphs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
