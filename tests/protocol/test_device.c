/* SPDX-License-Identifier: MIT */
/*
 * test_device.c - the messages between the vgpu-stub device and the
 * mediator (protocol/device.c, vgpu_device.h): the bytes of each message
 * at the offsets docs/specs/vgpu-stub-1.1.md gives, round trips, and every
 * way a parser must refuse a message: checksum, reserved bytes, a table
 * not the size its count says, versions, kinds and domids out of range,
 * regions and extents not whole pages, wrapping or overlapping, window
 * sums too small, too large or not what the block says; an IDENTITY's
 * pool and priority out of range or its reserved bytes set. (The CRC32C
 * itself is checked against an independent one in test_protocol.c.)
 * The fuzz seeds of these messages, written by an independent encoder
 * (tests/fuzz/gen_protocol_corpus.py), parse as their names say.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vgpu_device.h"
#include "vgpu_ring.h"

#define MIB ((uint64_t)1 << 20)
#define MSG_MAX (VGPU_PROTO_HEADER_SIZE + VGPU_DEV_MAX_PAYLOAD)

static uint64_t get_le(const uint8_t *p, int bytes)
{
	uint64_t v = 0;

	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Decode the header of @msg and parse it as @type; the parser's status. */
static int parse(uint8_t *msg, void *ret, uint16_t type)
{
	struct vgpu_msg_header h;
	int rc = vgpu_proto_decode_header(msg, &vgpu_proto_default_limits, &h);

	if (rc != VGPU_OK)
		return rc;
	if (type == VGPU_MSG_DEVICE)
		return vgpu_dev_parse_hello(msg, &h, msg + VGPU_PROTO_HEADER_SIZE, ret);
	return vgpu_dev_parse_window(msg, &h, msg + VGPU_PROTO_HEADER_SIZE, ret);
}

/* Re-checksum @msg after a test changed its payload. */
static void reseal(uint8_t *msg)
{
	uint32_t len = (uint32_t)get_le(msg + 24, 4);

	put_le(msg + 28, vgpu_proto_checksum(msg, msg + VGPU_PROTO_HEADER_SIZE, len), 4);
}

static struct vgpu_dev_hello kvm_hello(void)
{
	struct vgpu_dev_hello h = {
		.version = VGPU_DEV_VERSION,
		.memory = VGPU_DEV_MEM_MEMFD,
		.n_regions = 2,
		.regions = { { 0, 3072 * MIB, 0 }, { 4096 * MIB, 1024 * MIB, 3072 * MIB } },
	};
	return h;
}

static void test_hello_layout(void **state)
{
	(void)state;
	uint8_t msg[MSG_MAX];
	struct vgpu_dev_hello h = kvm_hello(), back;
	size_t len = vgpu_dev_encode_hello(9, &h, msg);

	assert_int_equal(len, 32 + 24 + 2 * 24);
	assert_int_equal(get_le(msg + 6, 2), VGPU_MSG_DEVICE);
	assert_int_equal(get_le(msg + 8, 8), 9);
	assert_int_equal(get_le(msg + 24, 4), 24 + 2 * 24);
	assert_int_equal(get_le(msg + 32, 4), 0x00010003);
	assert_int_equal(get_le(msg + 36, 4), 1);
	assert_int_equal(get_le(msg + 40, 4), 0);
	assert_int_equal(get_le(msg + 44, 4), 2);
	assert_int_equal(get_le(msg + 48, 8), 0);
	assert_int_equal(get_le(msg + 56 + 24, 8), 4096 * MIB);
	assert_int_equal(get_le(msg + 56 + 32, 8), 1024 * MIB);
	assert_int_equal(get_le(msg + 56 + 40, 8), 3072 * MIB);
	assert_int_equal(parse(msg, &back, VGPU_MSG_DEVICE), VGPU_OK);
	assert_memory_equal(&back.regions, &h.regions, 2 * sizeof(h.regions[0]));
	assert_int_equal(vgpu_dev_hello_fds(&back), 4);

	struct vgpu_dev_hello xen = { .version = VGPU_DEV_VERSION, .memory = VGPU_DEV_MEM_XEN,
				      .domid = 17 };
	assert_int_equal(vgpu_dev_encode_hello(1, &xen, msg), 32 + 24);
	assert_int_equal(parse(msg, &back, VGPU_MSG_DEVICE), VGPU_OK);
	assert_int_equal(back.domid, 17);
	assert_int_equal(vgpu_dev_hello_fds(&back), 2);
}

static void test_hello_refused(void **state)
{
	(void)state;
	uint8_t msg[MSG_MAX];
	struct vgpu_dev_hello h, back;

	/* Each case: a field changed, then the checksum made right again. */
	static const struct {
		size_t off;
		int bytes;
		uint64_t value;
		int rc;
	} cases[] = {
		{ 32, 4, 0x00010000, VGPU_INVALID_PARAM },   /* version */
		{ 36, 4, 3, VGPU_INVALID_PARAM },            /* memory kind */
		{ 40, 4, 5, VGPU_INVALID_PARAM },            /* domid with memfd */
		{ 44, 4, 3, VGPU_PROTOCOL },                 /* count past the table */
		{ 44, 4, 1, VGPU_PROTOCOL },                 /* table longer than the count */
		{ 48, 8, 1, VGPU_PROTOCOL },                 /* reserved */
		{ 56, 8, 0x800, VGPU_INVALID_PARAM },        /* gpa not page aligned */
		{ 64, 8, 0, VGPU_INVALID_PARAM },            /* empty region */
		{ 64, 8, 0x1001, VGPU_INVALID_PARAM },       /* size not whole pages */
		{ 72, 8, 0x10, VGPU_INVALID_PARAM },         /* fd offset not aligned */
		{ 80, 8, 0x1000, VGPU_INVALID_PARAM },       /* second region overlaps the first */
		{ 80, 8, UINT64_MAX - 0xfff, VGPU_INVALID_PARAM }, /* wraps */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		h = kvm_hello();
		vgpu_dev_encode_hello(1, &h, msg);
		put_le(msg + cases[i].off, cases[i].value, cases[i].bytes);
		reseal(msg);
		memset(&back, 0x5a, sizeof(back));
		assert_int_equal(parse(msg, &back, VGPU_MSG_DEVICE), cases[i].rc);
		assert_int_equal(back.n_regions, 0x5a5a5a5a); /* untouched */
	}
	/* A bad checksum. */
	h = kvm_hello();
	vgpu_dev_encode_hello(1, &h, msg);
	msg[60] ^= 1;
	assert_int_equal(parse(msg, &back, VGPU_MSG_DEVICE), VGPU_PROTOCOL);
	/* Xen: dom0, a reserved domid, regions. */
	static const uint32_t domids[] = { 0, 0x7ff0, 0xffffffffu };
	for (int i = 0; i < 3; i++) {
		struct vgpu_dev_hello x = { .version = VGPU_DEV_VERSION,
					    .memory = VGPU_DEV_MEM_XEN, .domid = domids[i] };
		vgpu_dev_encode_hello(1, &x, msg);
		assert_int_equal(parse(msg, &back, VGPU_MSG_DEVICE), VGPU_INVALID_PARAM);
	}
	struct vgpu_dev_hello x = kvm_hello();
	x.memory = VGPU_DEV_MEM_XEN;
	x.domid = 3;
	vgpu_dev_encode_hello(1, &x, msg);
	assert_int_equal(parse(msg, &back, VGPU_MSG_DEVICE), VGPU_INVALID_PARAM);
	/* No regions under memfd. */
	x = kvm_hello();
	x.n_regions = 0;
	vgpu_dev_encode_hello(1, &x, msg);
	assert_int_equal(parse(msg, &back, VGPU_MSG_DEVICE), VGPU_INVALID_PARAM);
}

/* A window of @n extents of @each bytes, from gpa 1 GiB, every other page
 * range (not contiguous). */
static struct vgpu_dev_window window(uint32_t n, uint64_t each)
{
	struct vgpu_dev_window w = { .action = VGPU_DEV_REGISTER, .n_extents = n };

	for (uint32_t i = 0; i < n; i++) {
		w.extents[i].gpa = 1024 * MIB + 2 * i * each;
		w.extents[i].len = each;
		w.bytes += each;
	}
	return w;
}

static void test_window_layout(void **state)
{
	(void)state;
	uint8_t msg[MSG_MAX];
	/* The rings and 1 MiB of data in 256 extents: the most a list holds. */
	uint64_t total = VGPU_RING_DATA_OFFSET + MIB;
	struct vgpu_dev_window w = window(1, total), back;

	assert_int_equal(vgpu_dev_encode_window(4, &w, msg), 32 + 24 + 16);
	assert_int_equal(get_le(msg + 6, 2), VGPU_MSG_WINDOW);
	assert_int_equal(get_le(msg + 32, 4), 1);
	assert_int_equal(get_le(msg + 36, 4), 1);
	assert_int_equal(get_le(msg + 40, 8), total);
	assert_int_equal(get_le(msg + 56, 8), 1024 * MIB);
	assert_int_equal(get_le(msg + 64, 8), total);
	assert_int_equal(parse(msg, &back, VGPU_MSG_WINDOW), VGPU_OK);
	assert_int_equal(back.bytes, total);

	w = window(256, 2 * MIB);
	assert_int_equal(vgpu_dev_encode_window(5, &w, msg), 32 + 24 + 256 * 16);
	assert_int_equal(parse(msg, &back, VGPU_MSG_WINDOW), VGPU_OK);
	assert_int_equal(back.n_extents, 256);
	assert_memory_equal(back.extents, w.extents, 256 * sizeof(w.extents[0]));

	struct vgpu_dev_window un = { .action = VGPU_DEV_UNREGISTER };
	assert_int_equal(vgpu_dev_encode_window(6, &un, msg), 32 + 24);
	assert_int_equal(parse(msg, &back, VGPU_MSG_WINDOW), VGPU_OK);
	assert_int_equal(back.action, VGPU_DEV_UNREGISTER);
}

static void test_window_refused(void **state)
{
	(void)state;
	uint8_t msg[MSG_MAX];
	struct vgpu_dev_window w, back;
	uint64_t each = 4 * MIB;

	static const struct {
		size_t off;
		int bytes;
		uint64_t value;
		int rc;
	} cases[] = {
		{ 32, 4, 3, VGPU_INVALID_PARAM },                 /* action */
		{ 36, 4, 3, VGPU_PROTOCOL },                      /* count past the table */
		{ 36, 4, 257, VGPU_PROTOCOL },                    /* more than a page of extents */
		{ 40, 8, 1, VGPU_INVALID_PARAM },                 /* bytes not the sum */
		{ 48, 8, 1, VGPU_PROTOCOL },                      /* reserved */
		{ 56, 8, 0x1234, VGPU_INVALID_PARAM },            /* gpa not aligned */
		{ 64, 8, 0, VGPU_INVALID_PARAM },                 /* empty extent */
		{ 64, 8, 4 * MIB + 512, VGPU_INVALID_PARAM },     /* not whole pages */
		{ 72, 8, UINT64_MAX & ~0xfffull, VGPU_INVALID_PARAM }, /* wraps */
		{ 72, 8, 1024 * MIB + 4096, VGPU_INVALID_PARAM }, /* overlaps the first extent */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		w = window(2, each);
		vgpu_dev_encode_window(1, &w, msg);
		put_le(msg + cases[i].off, cases[i].value, cases[i].bytes);
		reseal(msg);
		memset(&back, 0x5a, sizeof(back));
		assert_int_equal(parse(msg, &back, VGPU_MSG_WINDOW), cases[i].rc);
		assert_int_equal(back.n_extents, 0x5a5a5a5a);
	}
	/* Too small: the rings and less than 1 MiB of data. */
	w = window(1, VGPU_RING_DATA_OFFSET + MIB - 4096);
	vgpu_dev_encode_window(1, &w, msg);
	assert_int_equal(parse(msg, &back, VGPU_MSG_WINDOW), VGPU_INVALID_PARAM);
	/* Too large: more than 2 GiB of data. */
	w = window(3, 1024 * MIB);
	vgpu_dev_encode_window(1, &w, msg);
	assert_int_equal(parse(msg, &back, VGPU_MSG_WINDOW), VGPU_INVALID_PARAM);
	/* No extents; an unregister with some. */
	w = window(0, 0);
	vgpu_dev_encode_window(1, &w, msg);
	assert_int_equal(parse(msg, &back, VGPU_MSG_WINDOW), VGPU_INVALID_PARAM);
	w = window(2, each);
	w.action = VGPU_DEV_UNREGISTER;
	vgpu_dev_encode_window(1, &w, msg);
	assert_int_equal(parse(msg, &back, VGPU_MSG_WINDOW), VGPU_INVALID_PARAM);
	/* A bad checksum. */
	w = window(2, each);
	vgpu_dev_encode_window(1, &w, msg);
	msg[70] ^= 0x10;
	assert_int_equal(parse(msg, &back, VGPU_MSG_WINDOW), VGPU_PROTOCOL);
}

static void test_header_and_reply(void **state)
{
	(void)state;
	uint8_t msg[VGPU_DEV_REPLY_MSG];
	struct vgpu_msg_header h;
	uint16_t answered;
	int32_t status;
	uint64_t win;

	vgpu_dev_encode_reply(11, VGPU_MSG_WINDOW, VGPU_OK, 9 * MIB, msg);
	assert_int_equal(vgpu_proto_decode_header(msg, &vgpu_proto_default_limits, &h), VGPU_OK);
	assert_true(vgpu_dev_header_ok(&h, VGPU_MSG_DEVICE_REPLY));
	assert_false(vgpu_dev_header_ok(&h, VGPU_MSG_WINDOW));
	assert_int_equal(h.request_id, 11);
	assert_int_equal(vgpu_dev_parse_reply(msg, &h, msg + 32, &answered, &status, &win), VGPU_OK);
	assert_int_equal(answered, VGPU_MSG_WINDOW);
	assert_int_equal(status, VGPU_OK);
	assert_int_equal(win, 9 * MIB);
	vgpu_dev_encode_reply(12, VGPU_MSG_DEVICE, VGPU_BUSY, 5, msg);
	vgpu_proto_decode_header(msg, &vgpu_proto_default_limits, &h);
	assert_int_equal(vgpu_dev_parse_reply(msg, &h, msg + 32, &answered, &status, &win), VGPU_OK);
	assert_int_equal(status, VGPU_BUSY);
	assert_int_equal(win, 0); /* not sent with an error */
	put_le(msg + 32, 3, 4);    /* a positive status */
	reseal(msg);
	assert_int_equal(vgpu_dev_parse_reply(msg, &h, msg + 32, &answered, &status, &win),
			 VGPU_PROTOCOL);

	/* Headers: a device message with an op, or larger than any can be. */
	struct vgpu_msg_header big = { .type = VGPU_MSG_WINDOW,
				       .payload_len = VGPU_DEV_MAX_PAYLOAD + 1 };
	assert_false(vgpu_dev_header_ok(&big, VGPU_MSG_WINDOW));
	big.payload_len = VGPU_DEV_MAX_PAYLOAD;
	assert_true(vgpu_dev_header_ok(&big, VGPU_MSG_WINDOW));
	big.op = 1;
	assert_false(vgpu_dev_header_ok(&big, VGPU_MSG_WINDOW));
	struct vgpu_msg_header tiny = { .type = VGPU_MSG_DEVICE, .payload_len = 8 };
	assert_false(vgpu_dev_header_ok(&tiny, VGPU_MSG_DEVICE));
}

/* Decode the header of @msg and parse it as an IDENTITY; the status. */
static int parse_identity(const uint8_t *msg, struct vgpu_dev_identity *ret)
{
	struct vgpu_msg_header h;
	int rc = vgpu_proto_decode_header(msg, &vgpu_proto_default_limits, &h);

	return rc != VGPU_OK ? rc : vgpu_dev_parse_identity(msg, &h, msg + 32, ret);
}

static void test_identity(void **state)
{
	(void)state;
	uint8_t msg[VGPU_DEV_IDENTITY_MSG];
	struct vgpu_msg_header h;
	struct vgpu_dev_identity id = { .pool = 'C', .priority = 1 }, back;

	/* The bytes: header (type 8, op 0), then u32 pool, u32 priority, 16 zero bytes. */
	memset(msg, 0xa5, sizeof(msg));
	vgpu_dev_encode_identity(21, &id, msg);
	assert_int_equal(get_le(msg + 6, 2), VGPU_MSG_IDENTITY);
	assert_int_equal(get_le(msg + 8, 8), 21);
	assert_int_equal(get_le(msg + 16, 2), 0);
	assert_int_equal(get_le(msg + 24, 4), VGPU_DEV_BLOCK);
	assert_int_equal(get_le(msg + 32, 4), 'C');
	assert_int_equal(get_le(msg + 36, 4), 1);
	assert_int_equal(get_le(msg + 40, 8), 0);
	assert_int_equal(get_le(msg + 48, 8), 0);
	assert_int_equal(VGPU_DEV_IDENTITY_MSG, VGPU_DEV_REPLY_MSG); /* one size to the device */
	assert_int_equal(vgpu_proto_decode_header(msg, &vgpu_proto_default_limits, &h), VGPU_OK);
	assert_true(vgpu_dev_header_ok(&h, VGPU_MSG_IDENTITY));
	assert_false(vgpu_dev_header_ok(&h, VGPU_MSG_DEVICE_REPLY));
	assert_int_equal(parse_identity(msg, &back), VGPU_OK);
	assert_int_equal(back.pool, 'C');
	assert_int_equal(back.priority, 1);

	/* Every pool letter and priority round-trips; nothing else parses. */
	for (uint32_t pool = 0; pool < 256; pool++) {
		for (uint32_t prio = 0; prio < 5; prio++) {
			int want = pool >= 'A' && pool <= 'Z' && prio <= 2 ? VGPU_OK
									   : VGPU_INVALID_PARAM;

			id = (struct vgpu_dev_identity){ .pool = pool, .priority = prio };
			vgpu_dev_encode_identity(1, &id, msg);
			memset(&back, 0x5a, sizeof(back));
			assert_int_equal(parse_identity(msg, &back), want);
			if (want == VGPU_OK)
				assert_true(back.pool == pool && back.priority == prio);
			else
				assert_int_equal(back.pool, 0x5a5a5a5a); /* not written */
		}
	}
	id = (struct vgpu_dev_identity){ .pool = 'A', .priority = 0xffffffffu };
	vgpu_dev_encode_identity(1, &id, msg);
	assert_int_equal(parse_identity(msg, &back), VGPU_INVALID_PARAM);

	/* Reserved bytes, each of them, and the checksum. */
	id = (struct vgpu_dev_identity){ .pool = 'B', .priority = 2 };
	for (int i = 40; i < 56; i++) {
		vgpu_dev_encode_identity(1, &id, msg);
		msg[i] = 1;
		reseal(msg);
		assert_int_equal(parse_identity(msg, &back), VGPU_PROTOCOL);
	}
	vgpu_dev_encode_identity(1, &id, msg);
	msg[33] ^= 0x01;
	assert_int_equal(parse_identity(msg, &back), VGPU_PROTOCOL);

	/* Headers: longer or shorter than the block, another type, an op. */
	struct vgpu_msg_header bad = { .type = VGPU_MSG_IDENTITY, .payload_len = VGPU_DEV_BLOCK + 8 };
	assert_false(vgpu_dev_header_ok(&bad, VGPU_MSG_IDENTITY));
	bad.payload_len = VGPU_DEV_BLOCK - 8;
	assert_false(vgpu_dev_header_ok(&bad, VGPU_MSG_IDENTITY));
	bad.payload_len = VGPU_DEV_BLOCK;
	bad.op = 1;
	assert_false(vgpu_dev_header_ok(&bad, VGPU_MSG_IDENTITY));
	vgpu_dev_encode_reply(3, VGPU_MSG_WINDOW, VGPU_OK, 0, msg); /* a reply is no identity */
	assert_int_equal(parse_identity(msg, &back), VGPU_PROTOCOL);
}

/* Corpus file @name, parsed as its type; the parser's status. */
static int parse_seed(const char *name, uint16_t type)
{
	static uint8_t msg[MSG_MAX];
	char path[4096];
	struct vgpu_msg_header h;
	struct vgpu_dev_window w;
	struct vgpu_dev_identity id;
	uint16_t answered;
	int32_t status;
	uint64_t win;

	snprintf(path, sizeof(path), "%s/%s", PROTOCOL_CORPUS, name);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	size_t n = fread(msg, 1, sizeof(msg), f);
	fclose(f);
	assert_true(n >= VGPU_PROTO_HEADER_SIZE);
	assert_int_equal(vgpu_proto_decode_header(msg, &vgpu_proto_default_limits, &h), VGPU_OK);
	assert_int_equal(n, VGPU_PROTO_HEADER_SIZE + h.payload_len);
	assert_true(vgpu_dev_header_ok(&h, type));
	if (type == VGPU_MSG_DEVICE_REPLY)
		return vgpu_dev_parse_reply(msg, &h, msg + 32, &answered, &status, &win);
	if (type == VGPU_MSG_IDENTITY) {
		int rc = vgpu_dev_parse_identity(msg, &h, msg + 32, &id);

		if (rc == VGPU_OK)
			assert_true(id.pool >= 'A' && id.pool <= 'Z' && id.priority <= 2);
		return rc;
	}
	return parse(msg, &w, type);
}

static void test_independent_seeds(void **state)
{
	(void)state;
	assert_int_equal(parse_seed("device-kvm", VGPU_MSG_DEVICE), VGPU_OK);
	assert_int_equal(parse_seed("device-xen", VGPU_MSG_DEVICE), VGPU_OK);
	assert_int_equal(parse_seed("device-overlap", VGPU_MSG_DEVICE), VGPU_INVALID_PARAM);
	assert_int_equal(parse_seed("device-old-version", VGPU_MSG_DEVICE), VGPU_INVALID_PARAM);
	assert_int_equal(parse_seed("device-version-2", VGPU_MSG_DEVICE), VGPU_INVALID_PARAM);
	assert_int_equal(parse_seed("window-one", VGPU_MSG_WINDOW), VGPU_OK);
	assert_int_equal(parse_seed("window-two", VGPU_MSG_WINDOW), VGPU_OK);
	assert_int_equal(parse_seed("window-unregister", VGPU_MSG_WINDOW), VGPU_OK);
	assert_int_equal(parse_seed("window-bad-sum", VGPU_MSG_WINDOW), VGPU_INVALID_PARAM);
	assert_int_equal(parse_seed("window-overlap", VGPU_MSG_WINDOW), VGPU_INVALID_PARAM);
	assert_int_equal(parse_seed("device-reply", VGPU_MSG_DEVICE_REPLY), VGPU_OK);
	assert_int_equal(parse_seed("identity", VGPU_MSG_IDENTITY), VGPU_OK);
	assert_int_equal(parse_seed("identity-z-low", VGPU_MSG_IDENTITY), VGPU_OK);
	assert_int_equal(parse_seed("identity-lower-case", VGPU_MSG_IDENTITY), VGPU_INVALID_PARAM);
	assert_int_equal(parse_seed("identity-bad-priority", VGPU_MSG_IDENTITY), VGPU_INVALID_PARAM);
	assert_int_equal(parse_seed("identity-reserved", VGPU_MSG_IDENTITY), VGPU_PROTOCOL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_layout),
		cmocka_unit_test(test_hello_refused),
		cmocka_unit_test(test_window_layout),
		cmocka_unit_test(test_window_refused),
		cmocka_unit_test(test_header_and_reply),
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_independent_seeds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
