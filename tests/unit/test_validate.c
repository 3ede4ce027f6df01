/* SPDX-License-Identifier: MIT */
/*
 * test_validate.c - the pure functions of libvgpu-config and the error
 * table: UUID, pool, priority, vm_id and name validity; the parsers the tools
 * use for command-line values (accepted forms, every rejected form, output
 * untouched on failure); vgpu_priority_name; vgpu_strerror for every code
 * and for unknown ones.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

static void uuid_valid_and_normalize(void **state)
{
	char out[VGPU_UUID_STRLEN + 1];
	(void)state;

	assert_true(vgpu_uuid_valid("00000000-0000-0000-0000-000000000000"));
	assert_true(vgpu_uuid_valid("ABCDEF01-2345-6789-abcd-EF0123456789"));
	assert_false(vgpu_uuid_valid(NULL));
	assert_false(vgpu_uuid_valid(""));
	assert_false(vgpu_uuid_valid("ABCDEF01-2345-6789-abcd-EF012345678"));
	assert_false(vgpu_uuid_valid("ABCDEF01-2345-6789-abcd-EF01234567890"));
	assert_false(vgpu_uuid_valid("ABCDEF0123456789abcdEF0123456789"));
	assert_false(vgpu_uuid_valid("ABCDEF01-2345-6789-abcd-EF012345678g"));
	assert_false(vgpu_uuid_valid("ABCDEF01-2345-6789-abcd-EF0123456789 "));
	assert_false(vgpu_uuid_valid("ABCDEF01-2345-6789-abcd+EF0123456789"));

	assert_int_equal(vgpu_uuid_normalize("ABCDEF01-2345-6789-abcd-EF0123456789", out), VGPU_OK);
	assert_string_equal(out, "abcdef01-2345-6789-abcd-ef0123456789");
	strcpy(out, "untouched");
	assert_int_equal(vgpu_uuid_normalize("not-a-uuid", out), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_uuid_normalize(NULL, out), VGPU_INVALID_PARAM);
	assert_string_equal(out, "untouched");
	assert_int_equal(vgpu_uuid_normalize("abcdef01-2345-6789-abcd-ef0123456789", NULL),
			 VGPU_INVALID_PARAM);
}

static void simple_predicates(void **state)
{
	(void)state;
	assert_true(vgpu_pool_id_valid('A'));
	assert_true(vgpu_pool_id_valid('B'));
	/* The predicate takes the stored form only; parsers accept lower case. */
	assert_false(vgpu_pool_id_valid('a'));
	assert_true(vgpu_pool_id_valid('C'));
	assert_true(vgpu_pool_id_valid('Z'));
	assert_false(vgpu_pool_id_valid('@'));
	assert_false(vgpu_pool_id_valid('['));
	assert_false(vgpu_pool_id_valid(0));

	assert_true(vgpu_priority_valid(0));
	assert_true(vgpu_priority_valid(2));
	assert_false(vgpu_priority_valid(3));
	assert_false(vgpu_priority_valid(-1));
	assert_false(vgpu_priority_valid(-2));
	assert_false(vgpu_priority_valid(INT_MIN));

	assert_true(vgpu_vm_id_valid(1));
	assert_true(vgpu_vm_id_valid(2147483647LL));
	assert_false(vgpu_vm_id_valid(0));
	assert_false(vgpu_vm_id_valid(-1));
	assert_false(vgpu_vm_id_valid(2147483648LL));
	assert_false(vgpu_vm_id_valid(4294967297LL)); /* 1 after truncation to 32 bits */
	assert_false(vgpu_vm_id_valid(-2147483648LL));
	assert_false(vgpu_vm_id_valid(LLONG_MIN));
	assert_false(vgpu_vm_id_valid(LLONG_MAX));
}

static void name_valid(void **state)
{
	char name[VGPU_NAME_MAX + 2];
	(void)state;

	assert_false(vgpu_name_valid(NULL));
	assert_true(vgpu_name_valid(""));
	assert_true(vgpu_name_valid("x'); DROP TABLE vms;--"));
	memset(name, 'a', sizeof(name) - 1);
	name[VGPU_NAME_MAX + 1] = '\0';
	assert_false(vgpu_name_valid(name));
	name[VGPU_NAME_MAX] = '\0';
	assert_true(vgpu_name_valid(name));
	/* A multibyte character may not straddle the limit. */
	name[VGPU_NAME_MAX - 1] = '\xc3';
	assert_false(vgpu_name_valid(name));
	assert_false(vgpu_name_valid("\t"));
	assert_false(vgpu_name_valid("\x7f"));
	assert_false(vgpu_name_valid("\x80"));
	assert_false(vgpu_name_valid("\xc0\x80"));
	assert_false(vgpu_name_valid("\xed\xa0\x80"));
	assert_false(vgpu_name_valid("\xc2\x85"));
	assert_true(vgpu_name_valid("\xc2\xa0"));
	assert_true(vgpu_name_valid("\xf0\x9f\x98\x80"));
}

static void pool_id_parse(void **state)
{
	static const char *const bad[] = { "@", "[", "", "AB", " A", "A ", "1", "\xc1" };
	char pool = 'x';
	(void)state;

	assert_int_equal(vgpu_pool_id_parse("A", &pool), VGPU_OK);
	assert_int_equal(pool, 'A');
	assert_int_equal(vgpu_pool_id_parse("b", &pool), VGPU_OK);
	assert_int_equal(pool, 'B');
	assert_int_equal(vgpu_pool_id_parse("a", &pool), VGPU_OK);
	assert_int_equal(pool, 'A');
	pool = 'x';
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(vgpu_pool_id_parse(bad[i], &pool), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_pool_id_parse(NULL, &pool), VGPU_INVALID_PARAM);
	assert_int_equal(pool, 'x');
}

static void gpus_parse_format(void **state)
{
	static const char *const bad[] = { "", ",", "0,", ",0", "0,,1", "1,1", "32", "-1", "0x1",
					   " 0", "0 ", "1000", "al", "0;1", "00000" };
	unsigned mask = 77;
	char out[96];
	long long v = 5;

	(void)state;
	assert_int_equal(vgpu_gpus_parse("all", &mask), VGPU_OK);
	assert_int_equal(mask, 0);
	assert_int_equal(vgpu_gpus_parse("ALL", &mask), VGPU_OK);
	assert_int_equal(vgpu_gpus_parse("0", &mask), VGPU_OK);
	assert_int_equal(mask, 1);
	assert_int_equal(vgpu_gpus_parse("3,0,31", &mask), VGPU_OK);
	assert_int_equal(mask, 0x80000009u);
	vgpu_gpus_format(mask, out);
	assert_string_equal(out, "0,3,31");
	vgpu_gpus_format(0, out);
	assert_string_equal(out, "all");
	vgpu_gpus_format(0xffffffffu, out);
	assert_true(strlen(out) < sizeof(out));
	assert_int_equal(vgpu_gpus_parse(out, &mask), VGPU_OK);
	assert_int_equal(mask, 0xffffffffu);
	mask = 77;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(vgpu_gpus_parse(bad[i], &mask), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_gpus_parse(NULL, &mask), VGPU_INVALID_PARAM);
	assert_int_equal(mask, 77);

	assert_int_equal(vgpu_int_parse("250", 0, 32000, &v), VGPU_OK);
	assert_int_equal(v, 250);
	assert_int_equal(vgpu_int_parse("32001", 0, 32000, &v), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_int_parse("+1", 0, 9, &v), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_int_parse("1x", 0, 9, &v), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_int_parse("99999999999999999999", 0, 9, &v), VGPU_INVALID_PARAM);
	assert_int_equal(v, 250);
}

static void priority_parse(void **state)
{
	static const struct {
		const char *text;
		int value;
	} good[] = {
		{ "low", 0 }, { "LOW", 0 }, { "medium", 1 }, { "MEDIUM", 1 }, { "Medium", 1 },
		{ "high", 2 }, { "HiGh", 2 }, { "0", 0 }, { "1", 1 }, { "2", 2 },
	};
	static const char *const bad[] = {
		"3", "", "lowx", "xlow", " low", "low ", "-1", "01", "1 ", "+1", "med", "highest",
		"2\n", "0x1",
	};
	int priority = 77;
	(void)state;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		priority = 77;
		assert_int_equal(vgpu_priority_parse(good[i].text, &priority), VGPU_OK);
		assert_int_equal(priority, good[i].value);
	}
	priority = 77;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (vgpu_priority_parse(bad[i], &priority) != VGPU_INVALID_PARAM) {
			print_error("priority \"%s\" was accepted\n", bad[i]);
			fail();
		}
	}
	assert_int_equal(vgpu_priority_parse(NULL, &priority), VGPU_INVALID_PARAM);
	assert_int_equal(priority, 77);
}

static void vm_id_parse(void **state)
{
	static const struct {
		const char *text;
		int value;
	} good[] = {
		{ "1", 1 }, { "42", 42 }, { "2147483647", 2147483647 },
	};
	static const char *const bad[] = {
		"0", "-1", "2147483648", "+5", " 5", "5 ", "0x5", "", "99999999999999999999",
		"4294967297", "-0", "5x", "1.0", "1e3", "\n5", "5\n", "--1", "-2147483648",
	};
	int vm_id = 77;
	(void)state;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(vgpu_vm_id_parse(good[i].text, &vm_id), VGPU_OK);
		assert_int_equal(vm_id, good[i].value);
	}
	vm_id = 77;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (vgpu_vm_id_parse(bad[i], &vm_id) != VGPU_INVALID_PARAM) {
			print_error("vm_id \"%s\" was accepted\n", bad[i]);
			fail();
		}
	}
	assert_int_equal(vgpu_vm_id_parse(NULL, &vm_id), VGPU_INVALID_PARAM);
	assert_int_equal(vm_id, 77);
}

static void priority_name(void **state)
{
	(void)state;
	assert_string_equal(vgpu_priority_name(VGPU_PRIORITY_LOW), "low");
	assert_string_equal(vgpu_priority_name(VGPU_PRIORITY_MEDIUM), "medium");
	assert_string_equal(vgpu_priority_name(VGPU_PRIORITY_HIGH), "high");
	assert_string_equal(vgpu_priority_name(3), "invalid");
	assert_string_equal(vgpu_priority_name(-1), "invalid");
	assert_string_equal(vgpu_priority_name(INT_MIN), "invalid");
	/* Names and parser agree. */
	for (int p = 0; p <= 2; p++) {
		int back = -1;

		assert_int_equal(vgpu_priority_parse(vgpu_priority_name(p), &back), VGPU_OK);
		assert_int_equal(back, p);
	}
}

static void strerror_table(void **state)
{
	static const struct {
		int code;
		const char *text;
	} codes[] = {
		{ VGPU_OK, "success" },
		{ VGPU_ERROR, "error" },
		{ VGPU_NOT_FOUND, "not found" },
		{ VGPU_INVALID_PARAM, "invalid parameter" },
		{ VGPU_DB_ERROR, "database error" },
		{ VGPU_EXISTS, "already exists" },
		{ VGPU_NO_MEMORY, "out of memory" },
		{ VGPU_IO_ERROR, "input/output error" },
		{ VGPU_TIMEOUT, "timed out" },
		{ VGPU_BUSY, "busy" },
		{ VGPU_DENIED, "permission denied" },
		{ VGPU_AMBIGUOUS, "ambiguous" },
		{ VGPU_UNSUPPORTED, "not supported" },
		{ VGPU_LIMIT, "limit reached" },
		{ VGPU_PROTOCOL, "protocol error" },
		{ VGPU_BACKEND, "backend failure" },
		{ VGPU_SHUTDOWN, "shutting down" },
	};
	const size_t n = sizeof(codes) / sizeof(codes[0]);
	(void)state;

	/* The seed's values are public API and never change. */
	assert_int_equal(VGPU_OK, 0);
	assert_int_equal(VGPU_ERROR, -1);
	assert_int_equal(VGPU_NOT_FOUND, -2);
	assert_int_equal(VGPU_INVALID_PARAM, -3);
	assert_int_equal(VGPU_DB_ERROR, -4);
	for (size_t i = 0; i < n; i++) {
		/* Codes are contiguous from 0 down, so this table misses none. */
		assert_int_equal(codes[i].code, -(int)i);
		assert_string_equal(vgpu_strerror(codes[i].code), codes[i].text);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(codes[i].text, codes[j].text);
	}
	assert_string_equal(vgpu_strerror(-(int)n), "unknown error");
	assert_string_equal(vgpu_strerror(1), "unknown error");
	assert_string_equal(vgpu_strerror(INT_MIN), "unknown error");
	assert_string_equal(vgpu_strerror(INT_MAX), "unknown error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(uuid_valid_and_normalize),
		cmocka_unit_test(simple_predicates),
		cmocka_unit_test(name_valid),
		cmocka_unit_test(pool_id_parse),
		cmocka_unit_test(gpus_parse_format),
		cmocka_unit_test(priority_parse),
		cmocka_unit_test(vm_id_parse),
		cmocka_unit_test(priority_name),
		cmocka_unit_test(strerror_table),
	};

	return cmocka_run_group_tests_name("validate", tests, NULL, NULL);
}
