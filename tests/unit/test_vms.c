/* SPDX-License-Identifier: MIT */
/*
 * test_vms.c - libvgpu-config's VM functions against a real registry file:
 * register (defaults, explicit values, automatic vm_id with gap filling,
 * every rejected UUID, pool, priority, vm_id and name), lookups by UUID and
 * by name, the set_* calls, vgpu_update_vm's all-or-nothing rule, remove,
 * list with filters, next free id and id-in-use.
 *
 * Every failing call is checked with TH_ASSERT_FAILS: right code, a message
 * in the handle, and a registry byte-for-byte unchanged (timestamps too).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

#define FAILS(code, substr, call) TH_ASSERT_FAILS(t, code, substr, call)

/* Register VM number @n (UUID th_uuid(n)) with the given values; must succeed. */
static struct vgpu_vm_config reg(struct th_db *t, unsigned n, const char *name, char pool,
				 int priority, int vm_id)
{
	struct vgpu_vm_config cfg;
	char uuid[37];

	th_uuid(uuid, n);
	memset(&cfg, 0x5a, sizeof(cfg));
	assert_int_equal(vgpu_register_vm(t->db, uuid, name, pool, priority, vm_id, &cfg), VGPU_OK);
	return cfg;
}

static struct vgpu_vm_config get(struct th_db *t, unsigned n)
{
	struct vgpu_vm_config cfg;
	char uuid[37];

	th_uuid(uuid, n);
	assert_int_equal(vgpu_get_vm_config(t->db, uuid, &cfg), VGPU_OK);
	return cfg;
}

static long long count_vms(struct th_db *t)
{
	sqlite3 *sql = th_sql_open(t->path);
	long long n = th_sql_int(sql, "SELECT COUNT(*) FROM vms");

	sqlite3_close(sql);
	return n;
}

static void assert_same_vm(const struct vgpu_vm_config *a, const struct vgpu_vm_config *b)
{
	assert_int_equal(a->vm_id, b->vm_id);
	assert_string_equal(a->vm_uuid, b->vm_uuid);
	assert_string_equal(a->vm_name, b->vm_name);
	assert_int_equal(a->pool_id, b->pool_id);
	assert_int_equal(a->priority, b->priority);
	assert_string_equal(a->created_at, b->created_at);
	assert_string_equal(a->updated_at, b->updated_at);
}

/* ---- register ------------------------------------------------------------ */

static void register_defaults(void **state)
{
	struct th_db *t = *state;
	struct vgpu_vm_config cfg = reg(t, 1, NULL, 0, -1, 0), again;
	char uuid[37];

	th_uuid(uuid, 1);
	assert_int_equal(cfg.vm_id, 1);
	assert_string_equal(cfg.vm_uuid, uuid);
	assert_string_equal(cfg.vm_name, "");
	assert_int_equal(cfg.pool_id, 'A');
	assert_int_equal(cfg.priority, VGPU_PRIORITY_MEDIUM);
	assert_int_equal(strlen(cfg.created_at), VGPU_TIMESTAMP_STRLEN);
	assert_int_equal(strlen(cfg.updated_at), VGPU_TIMESTAMP_STRLEN);

	again = get(t, 1);
	assert_same_vm(&cfg, &again);
	/* An empty name is the same as none: stored as NULL. */
	reg(t, 2, "", 0, -1, 0);
	sqlite3 *sql = th_sql_open(t->path);
	assert_int_equal(th_sql_int(sql, "SELECT COUNT(*) FROM vms WHERE vm_name IS NULL"), 2);
	sqlite3_close(sql);
}

static void register_explicit_values(void **state)
{
	struct th_db *t = *state;
	struct vgpu_vm_config cfg = reg(t, 7, "i-2-33-VM", 'b', VGPU_PRIORITY_HIGH, 42);

	assert_int_equal(cfg.vm_id, 42);
	assert_string_equal(cfg.vm_name, "i-2-33-VM");
	assert_int_equal(cfg.pool_id, 'B');
	assert_int_equal(cfg.priority, VGPU_PRIORITY_HIGH);

	cfg = reg(t, 8, NULL, 'A', VGPU_PRIORITY_LOW, VGPU_VM_ID_MAX);
	assert_int_equal(cfg.vm_id, VGPU_VM_ID_MAX);
	assert_int_equal(cfg.priority, VGPU_PRIORITY_LOW);
	/* Automatic ids still start at 1. */
	assert_int_equal(reg(t, 9, NULL, 0, -1, 0).vm_id, 1);

	/* ret_config may be NULL. */
	char uuid[37];
	th_uuid(uuid, 10);
	assert_int_equal(vgpu_register_vm(t->db, uuid, NULL, 0, -1, 0, NULL), VGPU_OK);
	assert_int_equal(get(t, 10).vm_id, 2);
}

static void register_auto_id_fills_gaps(void **state)
{
	struct th_db *t = *state;
	int next = 0;

	reg(t, 1, NULL, 0, -1, 1);
	reg(t, 2, NULL, 0, -1, 2);
	reg(t, 4, NULL, 0, -1, 4);
	assert_int_equal(vgpu_get_next_vm_id(t->db, &next), VGPU_OK);
	assert_int_equal(next, 3);
	assert_int_equal(reg(t, 3, NULL, 0, -1, 0).vm_id, 3);
	assert_int_equal(reg(t, 5, NULL, 0, -1, 0).vm_id, 5);

	/* Removing id 1 makes it the lowest free one again. */
	char uuid[37];
	th_uuid(uuid, 1);
	assert_int_equal(vgpu_remove_vm(t->db, uuid), VGPU_OK);
	assert_int_equal(vgpu_get_next_vm_id(t->db, &next), VGPU_OK);
	assert_int_equal(next, 1);
	assert_int_equal(reg(t, 6, NULL, 0, -1, 0).vm_id, 1);

	/* A gap far out: 1..6 taken, 10 taken -> 7. */
	reg(t, 10, NULL, 0, -1, 10);
	assert_int_equal(reg(t, 11, NULL, 0, -1, 0).vm_id, 6);
	assert_int_equal(reg(t, 12, NULL, 0, -1, 0).vm_id, 7);
}

static void register_taken_vm_id(void **state)
{
	struct th_db *t = *state;
	char uuid[37];

	reg(t, 1, "one", 'B', 2, 5);
	th_uuid(uuid, 2);
	FAILS(VGPU_EXISTS, "vm_id 5", vgpu_register_vm(t->db, uuid, "two", 0, -1, 5, NULL));
	assert_int_equal(count_vms(t), 1);
}

static void register_duplicate_uuid(void **state)
{
	struct th_db *t = *state;
	struct vgpu_vm_config cfg;
	char upper[37];

	reg(t, 0xabc, "first", 0, -1, 0);
	th_uuid(upper, 0xabc);
	for (char *p = upper; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	assert_string_not_equal(upper, get(t, 0xabc).vm_uuid);
	FAILS(VGPU_EXISTS, "already registered",
	      vgpu_register_vm(t->db, upper, "second", 'B', 0, 0, &cfg));
	th_uuid(upper, 0xabc);
	FAILS(VGPU_EXISTS, "already registered",
	      vgpu_register_vm(t->db, upper, NULL, 0, -1, 9, NULL));
	assert_int_equal(count_vms(t), 1);
}

static void register_stores_uuid_lower_case(void **state)
{
	struct th_db *t = *state;
	struct vgpu_vm_config cfg;
	const char *mixed = "ABCDEF01-2345-6789-aBcD-EF0123456789";

	assert_int_equal(vgpu_register_vm(t->db, mixed, NULL, 0, -1, 0, &cfg), VGPU_OK);
	assert_string_equal(cfg.vm_uuid, "abcdef01-2345-6789-abcd-ef0123456789");
	sqlite3 *sql = th_sql_open(t->path);
	char *stored = th_sql_text(sql, "SELECT vm_uuid FROM vms");
	assert_string_equal(stored, "abcdef01-2345-6789-abcd-ef0123456789");
	free(stored);
	sqlite3_close(sql);
	/* Found in any case. */
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(vgpu_get_vm_config(t->db, mixed, &cfg), VGPU_OK);
	assert_int_equal(cfg.vm_id, 1);
	assert_int_equal(vgpu_get_vm_config(t->db, "abcdef01-2345-6789-ABCD-ef0123456789", &cfg),
			 VGPU_OK);
}

static const char *const bad_uuids[] = {
	"",
	"12345678-1234-1234-1234-12345678901",     /* short */
	"12345678-1234-1234-1234-1234567890123",   /* long */
	"123456781234123412341234567890ab",        /* no dashes */
	"1234567-81234-1234-1234-123456789012",    /* dash misplaced */
	"12345678-1234-1234-1234-12345678901g",    /* non-hex */
	"1234567z-1234-1234-1234-123456789012",    /* non-hex */
	"12345678-1234-1234-1234-123456789012 ",   /* trailing space */
	" 12345678-1234-1234-1234-123456789012",   /* leading space */
	"12345678-1234-1234-1234-123456789012\n",  /* trailing newline */
	"{12345678-1234-1234-1234-123456789012}",  /* braces */
	"12345678_1234_1234_1234_123456789012",    /* other separator */
	"x'); DROP TABLE vms;--",
};

static void register_invalid_uuid(void **state)
{
	struct th_db *t = *state;

	reg(t, 1, NULL, 0, -1, 0);
	for (size_t i = 0; i < sizeof(bad_uuids) / sizeof(bad_uuids[0]); i++)
		FAILS(VGPU_INVALID_PARAM, "UUID",
		      vgpu_register_vm(t->db, bad_uuids[i], NULL, 0, -1, 0, NULL));
	FAILS(VGPU_INVALID_PARAM, "UUID", vgpu_register_vm(t->db, NULL, NULL, 0, -1, 0, NULL));
	assert_int_equal(count_vms(t), 1);
	/* No handle: no crash, no message to keep. */
	assert_int_equal(vgpu_register_vm(NULL, "12345678-1234-1234-1234-123456789012", NULL, 0,
					  -1, 0, NULL),
			 VGPU_INVALID_PARAM);
}

static void register_invalid_pool_priority_vm_id(void **state)
{
	struct th_db *t = *state;
	static const char bad_pools[] = { '@', '[', '`', '1', ' ', '\n', (char)0xc1 };
	static const int bad_priorities[] = { 3, -2, 100, INT_MIN, INT_MAX };
	static const int bad_ids[] = { -1, -2, INT_MIN };
	char uuid[37];

	th_uuid(uuid, 1);
	for (size_t i = 0; i < sizeof(bad_pools); i++)
		FAILS(VGPU_INVALID_PARAM, "pool",
		      vgpu_register_vm(t->db, uuid, NULL, bad_pools[i], -1, 0, NULL));
	for (size_t i = 0; i < sizeof(bad_priorities) / sizeof(bad_priorities[0]); i++)
		FAILS(VGPU_INVALID_PARAM, "priority",
		      vgpu_register_vm(t->db, uuid, NULL, 0, bad_priorities[i], 0, NULL));
	for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++)
		FAILS(VGPU_INVALID_PARAM, "vm_id",
		      vgpu_register_vm(t->db, uuid, NULL, 0, -1, bad_ids[i], NULL));
	assert_int_equal(count_vms(t), 0);

	/* The boundaries that are valid: pool 'a', priority 0 and 2, vm_id 0 = auto. */
	struct vgpu_vm_config cfg = reg(t, 1, NULL, 'a', 0, 0);
	assert_int_equal(cfg.pool_id, 'A');
	assert_int_equal(cfg.priority, 0);
	assert_int_equal(cfg.vm_id, 1);
	assert_int_equal(reg(t, 2, NULL, 'B', 2, 0).priority, 2);
}

/* ---- names --------------------------------------------------------------- */

static void name_length_limit(void **state)
{
	struct th_db *t = *state;
	char name[VGPU_NAME_MAX + 2];
	char uuid[37];

	memset(name, 'n', VGPU_NAME_MAX);
	name[VGPU_NAME_MAX] = '\0';
	assert_string_equal(reg(t, 1, name, 0, -1, 0).vm_name, name);

	memset(name, 'm', VGPU_NAME_MAX + 1);
	name[VGPU_NAME_MAX + 1] = '\0';
	th_uuid(uuid, 2);
	FAILS(VGPU_INVALID_PARAM, "name", vgpu_register_vm(t->db, uuid, name, 0, -1, 0, NULL));

	/* The limit counts bytes, not characters: 85 x 3 bytes fits, 128 x 2 does not. */
	name[0] = '\0';
	for (int i = 0; i < 85; i++)
		strcat(name, "\xe2\x82\xac"); /* U+20AC EURO SIGN */
	assert_int_equal(strlen(name), 255);
	assert_string_equal(reg(t, 3, name, 0, -1, 0).vm_name, name);
	name[0] = '\0';
	for (int i = 0; i < 128; i++)
		strcat(name, "\xc3\xa9"); /* U+00E9 */
	th_uuid(uuid, 4);
	FAILS(VGPU_INVALID_PARAM, "name", vgpu_register_vm(t->db, uuid, name, 0, -1, 0, NULL));
	assert_int_equal(count_vms(t), 2);
}

static void name_sql_text_stored_verbatim(void **state)
{
	struct th_db *t = *state;
	static const char *const names[] = {
		"x'); DROP TABLE vms;--",
		"Robert'); DELETE FROM pools; --",
		"it's \"quoted\" `twice`",
		"%s%n%x \\ ; -- /* */",
		"' OR '1'='1",
	};
	const size_t n = sizeof(names) / sizeof(names[0]);
	sqlite3 *sql;

	for (size_t i = 0; i < n; i++)
		assert_string_equal(reg(t, (unsigned)i + 1, names[i], 0, -1, 0).vm_name, names[i]);
	for (size_t i = 0; i < n; i++) {
		struct vgpu_vm_config cfg;

		assert_int_equal(vgpu_get_vm_config_by_name(t->db, names[i], &cfg), VGPU_OK);
		assert_string_equal(cfg.vm_name, names[i]);
		assert_int_equal(cfg.vm_id, (int)i + 1);
	}
	sql = th_sql_open(t->path);
	assert_int_equal(th_sql_int(sql, "SELECT COUNT(*) FROM vms"), (long long)n);
	assert_int_equal(th_sql_int(sql, "SELECT COUNT(*) FROM pools"), 2);
	assert_int_equal(th_sql_int(sql, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'vms'"), 1);
	char *stored = th_sql_text(sql, "SELECT vm_name FROM vms WHERE vm_id = 1");
	assert_string_equal(stored, names[0]);
	free(stored);
	sqlite3_close(sql);
}

static void name_rejects_controls_and_bad_utf8(void **state)
{
	struct th_db *t = *state;
	static const char *const bad[] = {
		"tab\there", "new\nline", "cr\rhere", "del\x7f", "esc\x1b[31m", "bell\x07",
		"\x01",
		"lone \x80 continuation", "overlong \xc0\x80", "overlong \xc1\xbf",
		"overlong \xe0\x80\xaf", "overlong \xf0\x80\x80\xaf",
		"surrogate \xed\xa0\x80", "surrogate \xed\xbf\xbf",
		"C1 \xc2\x85", "C1 \xc2\x80", "C1 \xc2\x9f",
		"truncated \xc3", "truncated \xe2\x82", "truncated \xf0\x9f\x98",
		"too big \xf4\x90\x80\x80", "bad lead \xf5\x80\x80\x80", "\xfe", "\xff",
		"continuation missing \xc3(",
	};
	char uuid[37];

	reg(t, 1, "ok", 0, -1, 0);
	th_uuid(uuid, 2);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vgpu_vm_config cfg;

		FAILS(VGPU_INVALID_PARAM, "name", vgpu_register_vm(t->db, uuid, bad[i], 0, -1, 0, NULL));
		FAILS(VGPU_INVALID_PARAM, "name", vgpu_get_vm_config_by_name(t->db, bad[i], &cfg));
	}
	assert_int_equal(count_vms(t), 1);
}

static void name_accepts_multibyte_utf8(void **state)
{
	struct th_db *t = *state;
	static const char *const good[] = {
		"caf\xc3\xa9",                        /* U+00E9 */
		"\xc2\xa0nbsp",                       /* U+00A0, first after C1 */
		"\xe6\x97\xa5\xe6\x9c\xac",           /* CJK */
		"\xf0\x9f\x98\x80 grin",              /* U+1F600 */
		"\xf4\x8f\xbf\xbf",                   /* U+10FFFF, the last */
		"\xee\x80\x80",                       /* U+E000, after surrogates */
		"~ !#$%&()*+,-./:;<=>?@[]^_{|}",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct vgpu_vm_config cfg;

		assert_true(vgpu_name_valid(good[i]));
		assert_string_equal(reg(t, (unsigned)i + 1, good[i], 0, -1, 0).vm_name, good[i]);
		assert_int_equal(vgpu_get_vm_config_by_name(t->db, good[i], &cfg), VGPU_OK);
		assert_int_equal(cfg.vm_id, (int)i + 1);
	}
}

/* ---- lookups ------------------------------------------------------------- */

static void get_by_uuid(void **state)
{
	struct th_db *t = *state;
	struct vgpu_vm_config cfg = { .vm_id = -77 };
	char uuid[37];

	reg(t, 1, "a", 'B', 0, 9);
	cfg = get(t, 1);
	assert_int_equal(cfg.vm_id, 9);
	assert_string_equal(cfg.vm_name, "a");

	th_uuid(uuid, 2);
	memset(&cfg, 0x33, sizeof(cfg));
	FAILS(VGPU_NOT_FOUND, "no VM", vgpu_get_vm_config(t->db, uuid, &cfg));
	assert_int_equal(cfg.vm_id, 0x33333333); /* output untouched on failure */
	FAILS(VGPU_INVALID_PARAM, "UUID", vgpu_get_vm_config(t->db, "nope", &cfg));
	FAILS(VGPU_INVALID_PARAM, "UUID", vgpu_get_vm_config(t->db, NULL, &cfg));
	assert_int_equal(vgpu_get_vm_config(t->db, uuid, NULL), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_get_vm_config(NULL, uuid, &cfg), VGPU_INVALID_PARAM);
}

static void get_by_name(void **state)
{
	struct th_db *t = *state;
	struct vgpu_vm_config cfg;

	reg(t, 1, "i-2-33-VM", 'B', 2, 0);
	reg(t, 2, "twin", 0, -1, 0);
	reg(t, 3, "twin", 0, -1, 0);
	reg(t, 4, NULL, 0, -1, 0);

	assert_int_equal(vgpu_get_vm_config_by_name(t->db, "i-2-33-VM", &cfg), VGPU_OK);
	assert_int_equal(cfg.vm_id, 1);
	assert_int_equal(cfg.pool_id, 'B');
	assert_int_equal(cfg.priority, 2);

	memset(&cfg, 0x44, sizeof(cfg));
	FAILS(VGPU_AMBIGUOUS, "twin", vgpu_get_vm_config_by_name(t->db, "twin", &cfg));
	assert_int_equal(cfg.vm_id, 0x44444444);
	/* Names compare exactly: other case is another name. */
	FAILS(VGPU_NOT_FOUND, "no VM", vgpu_get_vm_config_by_name(t->db, "I-2-33-vm", &cfg));
	FAILS(VGPU_NOT_FOUND, "no VM", vgpu_get_vm_config_by_name(t->db, "i-2-33", &cfg));
	FAILS(VGPU_INVALID_PARAM, NULL, vgpu_get_vm_config_by_name(t->db, "", &cfg));
	FAILS(VGPU_INVALID_PARAM, NULL, vgpu_get_vm_config_by_name(t->db, NULL, &cfg));
	assert_int_equal(vgpu_get_vm_config_by_name(t->db, "twin", NULL), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_get_vm_config_by_name(NULL, "twin", &cfg), VGPU_INVALID_PARAM);

	/* Renaming one twin resolves the ambiguity. */
	char uuid[37];
	th_uuid(uuid, 3);
	struct vgpu_vm_update up = VGPU_VM_UPDATE_INIT;
	up.vm_name = "twin-2";
	assert_int_equal(vgpu_update_vm(t->db, uuid, &up), VGPU_OK);
	assert_int_equal(vgpu_get_vm_config_by_name(t->db, "twin", &cfg), VGPU_OK);
	assert_int_equal(cfg.vm_id, 2);
}

/* ---- set_* --------------------------------------------------------------- */

static void set_pool(void **state)
{
	struct th_db *t = *state;
	char uuid[37], missing[37];

	reg(t, 1, NULL, 0, -1, 0);
	th_uuid(uuid, 1);
	th_uuid(missing, 2);
	assert_int_equal(vgpu_set_vm_pool(t->db, uuid, 'B'), VGPU_OK);
	assert_int_equal(get(t, 1).pool_id, 'B');
	assert_int_equal(vgpu_set_vm_pool(t->db, uuid, 'a'), VGPU_OK);
	assert_int_equal(get(t, 1).pool_id, 'A');

	FAILS(VGPU_NOT_FOUND, "no VM", vgpu_set_vm_pool(t->db, missing, 'B'));
	FAILS(VGPU_INVALID_PARAM, "pool", vgpu_set_vm_pool(t->db, uuid, '1'));
	FAILS(VGPU_NOT_FOUND, "does not exist", vgpu_set_vm_pool(t->db, uuid, 'C'));
	assert_int_equal(get(t, 1).pool_id, 'A');
	FAILS(VGPU_INVALID_PARAM, "pool", vgpu_set_vm_pool(t->db, uuid, 0));
	FAILS(VGPU_INVALID_PARAM, "UUID", vgpu_set_vm_pool(t->db, "bad", 'B'));
	assert_int_equal(vgpu_set_vm_pool(NULL, uuid, 'B'), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_set_vm_pool(NULL, uuid, 0), VGPU_INVALID_PARAM);
	assert_int_equal(get(t, 1).pool_id, 'A');
}

static void set_priority(void **state)
{
	struct th_db *t = *state;
	char uuid[37], missing[37];

	reg(t, 1, NULL, 0, -1, 0);
	th_uuid(uuid, 1);
	th_uuid(missing, 2);
	for (int p = 0; p <= 2; p++) {
		assert_int_equal(vgpu_set_vm_priority(t->db, uuid, p), VGPU_OK);
		assert_int_equal(get(t, 1).priority, p);
	}
	FAILS(VGPU_NOT_FOUND, "no VM", vgpu_set_vm_priority(t->db, missing, 0));
	FAILS(VGPU_INVALID_PARAM, "priority", vgpu_set_vm_priority(t->db, uuid, 3));
	FAILS(VGPU_INVALID_PARAM, "priority", vgpu_set_vm_priority(t->db, uuid, -1));
	FAILS(VGPU_INVALID_PARAM, "priority", vgpu_set_vm_priority(t->db, uuid, -2));
	FAILS(VGPU_INVALID_PARAM, "UUID", vgpu_set_vm_priority(t->db, NULL, 1));
	assert_int_equal(vgpu_set_vm_priority(NULL, uuid, 1), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_set_vm_priority(NULL, uuid, -1), VGPU_INVALID_PARAM);
	assert_int_equal(get(t, 1).priority, 2);
}

static void set_id(void **state)
{
	struct th_db *t = *state;
	char one[37], two[37], missing[37];

	reg(t, 1, NULL, 0, -1, 0);
	reg(t, 2, NULL, 0, -1, 0);
	th_uuid(one, 1);
	th_uuid(two, 2);
	th_uuid(missing, 3);
	assert_int_equal(vgpu_set_vm_id(t->db, one, 100), VGPU_OK);
	assert_int_equal(get(t, 1).vm_id, 100);
	/* Its own id is not "taken". */
	assert_int_equal(vgpu_set_vm_id(t->db, one, 100), VGPU_OK);
	assert_int_equal(vgpu_set_vm_id(t->db, one, VGPU_VM_ID_MAX), VGPU_OK);
	assert_int_equal(get(t, 1).vm_id, VGPU_VM_ID_MAX);

	FAILS(VGPU_EXISTS, "vm_id 2", vgpu_set_vm_id(t->db, one, 2));
	FAILS(VGPU_NOT_FOUND, "no VM", vgpu_set_vm_id(t->db, missing, 50));
	FAILS(VGPU_INVALID_PARAM, "vm_id", vgpu_set_vm_id(t->db, one, 0));
	FAILS(VGPU_INVALID_PARAM, "vm_id", vgpu_set_vm_id(t->db, one, -1));
	FAILS(VGPU_INVALID_PARAM, "vm_id", vgpu_set_vm_id(t->db, one, INT_MIN));
	FAILS(VGPU_INVALID_PARAM, "UUID", vgpu_set_vm_id(t->db, "", 7));
	assert_int_equal(vgpu_set_vm_id(NULL, one, 7), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_set_vm_id(NULL, one, 0), VGPU_INVALID_PARAM);
	assert_int_equal(get(t, 1).vm_id, VGPU_VM_ID_MAX);
	assert_int_equal(get(t, 2).vm_id, 2);
}

/* ---- update -------------------------------------------------------------- */

static void update_several_fields(void **state)
{
	struct th_db *t = *state;
	struct vgpu_vm_update up = VGPU_VM_UPDATE_INIT;
	struct vgpu_vm_config before, after;
	char uuid[37];
	sqlite3 *sql;

	before = reg(t, 1, "old", 'A', 0, 0);
	reg(t, 2, "other", 'A', 0, 0);
	th_uuid(uuid, 1);
	/* Age the row so that a new updated_at is visible. */
	sql = th_sql_open(t->path);
	th_sql_exec(sql, "UPDATE vms SET created_at = '2001-02-03 04:05:06',"
			 " updated_at = '2001-02-03 04:05:06'");

	up.vm_name = "new";
	up.pool_id = 'b';
	up.priority = 2;
	up.vm_id = 77;
	assert_int_equal(vgpu_update_vm(t->db, uuid, &up), VGPU_OK);
	after = get(t, 1);
	assert_string_equal(after.vm_uuid, before.vm_uuid);
	assert_string_equal(after.vm_name, "new");
	assert_int_equal(after.pool_id, 'B');
	assert_int_equal(after.priority, 2);
	assert_int_equal(after.vm_id, 77);
	assert_string_equal(after.created_at, "2001-02-03 04:05:06");
	assert_string_not_equal(after.updated_at, "2001-02-03 04:05:06");
	assert_true(th_sql_int(sql, "SELECT strftime('%%s', 'now') - strftime('%%s', updated_at)"
				    " FROM vms WHERE vm_id = 77") < 120);
	/* The other VM is untouched. */
	struct vgpu_vm_config other = get(t, 2);
	assert_string_equal(other.vm_name, "other");
	assert_string_equal(other.updated_at, "2001-02-03 04:05:06");

	/* An empty update changes nothing but updated_at. */
	th_sql_exec(sql, "UPDATE vms SET updated_at = '2001-02-03 04:05:06'");
	struct vgpu_vm_update none = VGPU_VM_UPDATE_INIT;
	assert_int_equal(vgpu_update_vm(t->db, uuid, &none), VGPU_OK);
	before = after;
	after = get(t, 1);
	assert_string_equal(after.vm_name, before.vm_name);
	assert_int_equal(after.vm_id, before.vm_id);
	assert_int_equal(after.pool_id, before.pool_id);
	assert_int_equal(after.priority, before.priority);
	assert_string_not_equal(after.updated_at, "2001-02-03 04:05:06");
	sqlite3_close(sql);
}

static void update_name_null_keeps_empty_clears(void **state)
{
	struct th_db *t = *state;
	struct vgpu_vm_update up = VGPU_VM_UPDATE_INIT;
	char uuid[37];
	sqlite3 *sql;

	reg(t, 1, "keep-me", 0, -1, 0);
	th_uuid(uuid, 1);
	up.priority = 0;
	assert_int_equal(vgpu_update_vm(t->db, uuid, &up), VGPU_OK);
	assert_string_equal(get(t, 1).vm_name, "keep-me");
	assert_int_equal(get(t, 1).priority, 0);

	up = (struct vgpu_vm_update)VGPU_VM_UPDATE_INIT;
	up.vm_name = "";
	assert_int_equal(vgpu_update_vm(t->db, uuid, &up), VGPU_OK);
	assert_string_equal(get(t, 1).vm_name, "");
	assert_int_equal(get(t, 1).priority, 0);
	sql = th_sql_open(t->path);
	assert_int_equal(th_sql_int(sql, "SELECT vm_name IS NULL FROM vms"), 1);
	sqlite3_close(sql);
}

/* The scheduler's settings: defaults at registration, changed one by one
 * or together, bad values refused without changing anything. */
static void scheduler_settings(void **state)
{
	struct th_db *t = *state;
	struct vgpu_vm_update up = VGPU_VM_UPDATE_INIT;
	struct vgpu_vm_config cfg;
	char uuid[37];

	th_uuid(uuid, 1);
	assert_int_equal(vgpu_register_vm(t->db, uuid, NULL, 0, -1, 0, &cfg), VGPU_OK);
	assert_int_equal(cfg.weight, VGPU_WEIGHT_DEFAULT);
	assert_int_equal(cfg.rate_limit_ms, 0);
	assert_int_equal(cfg.mem_quota_mib, 0);

	up.weight = 400;
	assert_int_equal(vgpu_update_vm(t->db, uuid, &up), VGPU_OK);
	up = (struct vgpu_vm_update)VGPU_VM_UPDATE_INIT;
	up.rate_limit_ms = 250;
	up.mem_quota_mib = 8192;
	assert_int_equal(vgpu_update_vm(t->db, uuid, &up), VGPU_OK);
	cfg = get(t, 1);
	assert_int_equal(cfg.weight, 400);
	assert_int_equal(cfg.rate_limit_ms, 250);
	assert_int_equal(cfg.mem_quota_mib, 8192);
	assert_int_equal(cfg.priority, VGPU_DEFAULT_PRIORITY);

	/* 0 lifts a limit or a quota; the weight has no "none". */
	up.rate_limit_ms = 0;
	up.mem_quota_mib = 0;
	assert_int_equal(vgpu_update_vm(t->db, uuid, &up), VGPU_OK);
	cfg = get(t, 1);
	assert_int_equal(cfg.rate_limit_ms, 0);
	assert_int_equal(cfg.mem_quota_mib, 0);
	assert_int_equal(cfg.weight, 400);

	const struct vgpu_vm_update bads[] = {
		{ .pool_id = 0, .priority = -1, .weight = 10001, .rate_limit_ms = 5, .mem_quota_mib = -1 },
		{ .pool_id = 0, .priority = -1, .weight = -1, .rate_limit_ms = -1, .mem_quota_mib = -1 },
		{ .pool_id = 0, .priority = -1, .weight = 9, .rate_limit_ms = 32001, .mem_quota_mib = -1 },
		{ .pool_id = 0, .priority = -1, .weight = 9, .rate_limit_ms = -2, .mem_quota_mib = -1 },
		{ .pool_id = 0, .priority = -1, .weight = 9, .rate_limit_ms = -1,
		  .mem_quota_mib = VGPU_MEM_QUOTA_MIB_MAX + 1 },
		{ .pool_id = 0, .priority = -1, .weight = 9, .rate_limit_ms = -1, .mem_quota_mib = -2 },
	};
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++)
		FAILS(VGPU_INVALID_PARAM, "invalid", vgpu_update_vm(t->db, uuid, &bads[i]));
	cfg = get(t, 1);
	assert_int_equal(cfg.weight, 400);
}

static void update_all_or_nothing(void **state)
{
	struct th_db *t = *state;
	struct vgpu_vm_update up = VGPU_VM_UPDATE_INIT;
	char uuid[37], missing[37], bad_name[] = "bad\nname";

	reg(t, 1, "one", 'A', 0, 0);
	reg(t, 2, "two", 'A', 0, 0);
	th_uuid(uuid, 1);
	th_uuid(missing, 3);

	/* vm_id taken: the name, pool and priority must not change either. */
	up.vm_name = "renamed";
	up.pool_id = 'B';
	up.priority = 2;
	up.vm_id = 2;
	FAILS(VGPU_EXISTS, "vm_id 2", vgpu_update_vm(t->db, uuid, &up));
	/* One invalid field spoils the others. */
	up.vm_id = 50;
	up.priority = 3;
	FAILS(VGPU_INVALID_PARAM, "priority", vgpu_update_vm(t->db, uuid, &up));
	up.priority = 2;
	up.pool_id = '1';
	FAILS(VGPU_INVALID_PARAM, "pool", vgpu_update_vm(t->db, uuid, &up));
	up.pool_id = 'C';
	FAILS(VGPU_NOT_FOUND, "does not exist", vgpu_update_vm(t->db, uuid, &up));
	up.pool_id = 'B';
	up.vm_id = -5;
	FAILS(VGPU_INVALID_PARAM, "vm_id", vgpu_update_vm(t->db, uuid, &up));
	up.vm_id = 50;
	up.vm_name = bad_name;
	FAILS(VGPU_INVALID_PARAM, "name", vgpu_update_vm(t->db, uuid, &up));
	up.vm_name = "renamed";
	FAILS(VGPU_NOT_FOUND, "no VM", vgpu_update_vm(t->db, missing, &up));
	FAILS(VGPU_INVALID_PARAM, "UUID", vgpu_update_vm(t->db, "1-2-3-4-5", &up));
	assert_int_equal(vgpu_update_vm(t->db, uuid, NULL), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_update_vm(NULL, uuid, &up), VGPU_INVALID_PARAM);

	struct vgpu_vm_config cfg = get(t, 1);
	assert_string_equal(cfg.vm_name, "one");
	assert_int_equal(cfg.vm_id, 1);

	/* The same update with a free id succeeds completely. */
	assert_int_equal(vgpu_update_vm(t->db, uuid, &up), VGPU_OK);
	cfg = get(t, 1);
	assert_string_equal(cfg.vm_name, "renamed");
	assert_int_equal(cfg.pool_id, 'B');
	assert_int_equal(cfg.priority, 2);
	assert_int_equal(cfg.vm_id, 50);
}

/* ---- remove, list, ids ----------------------------------------------------- */

static void remove_vm(void **state)
{
	struct th_db *t = *state;
	struct vgpu_vm_config cfg;
	char uuid[37];

	reg(t, 1, NULL, 0, -1, 0);
	reg(t, 2, NULL, 0, -1, 0);
	th_uuid(uuid, 1);
	assert_int_equal(vgpu_remove_vm(t->db, uuid), VGPU_OK);
	assert_int_equal(vgpu_get_vm_config(t->db, uuid, &cfg), VGPU_NOT_FOUND);
	FAILS(VGPU_NOT_FOUND, "no VM", vgpu_remove_vm(t->db, uuid));
	FAILS(VGPU_INVALID_PARAM, "UUID", vgpu_remove_vm(t->db, "zz"));
	FAILS(VGPU_INVALID_PARAM, "UUID", vgpu_remove_vm(t->db, NULL));
	assert_int_equal(vgpu_remove_vm(NULL, uuid), VGPU_INVALID_PARAM);
	assert_int_equal(count_vms(t), 1);
	/* Upper case finds it too. */
	assert_int_equal(vgpu_remove_vm(t->db, "00000002-0000-4000-8000-000000000002"), VGPU_OK);
	assert_int_equal(count_vms(t), 0);
}

static void list_vms_filters_and_order(void **state)
{
	struct th_db *t = *state;
	struct vgpu_vm_config *vms = (void *)1;
	size_t count = 99;

	/* Empty registry: NULL array, count 0. */
	assert_int_equal(vgpu_list_vms(t->db, 0, -1, &vms, &count), VGPU_OK);
	assert_null(vms);
	assert_int_equal(count, 0);

	/* Registered out of vm_id order. */
	reg(t, 1, "a", 'A', 0, 30);
	reg(t, 2, "b", 'B', 2, 10);
	reg(t, 3, "c", 'A', 2, 20);
	reg(t, 4, "d", 'B', 0, 5);
	reg(t, 5, "e", 'A', 1, 0); /* gets 1 */

	static const struct {
		char pool;
		int priority;
		int ids[5];
		size_t n;
	} cases[] = {
		{ 0, -1, { 1, 5, 10, 20, 30 }, 5 },
		{ 'A', -1, { 1, 20, 30 }, 3 },
		{ 'b', -1, { 5, 10 }, 2 },
		{ 0, 2, { 10, 20 }, 2 },
		{ 0, 0, { 5, 30 }, 2 },
		{ 'A', 2, { 20 }, 1 },
		{ 'B', 1, { 0 }, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(vgpu_list_vms(t->db, cases[i].pool, cases[i].priority, &vms, &count),
				 VGPU_OK);
		assert_int_equal(count, cases[i].n);
		for (size_t j = 0; j < count; j++) {
			assert_int_equal(vms[j].vm_id, cases[i].ids[j]);
			if (cases[i].pool)
				assert_int_equal(vms[j].pool_id, cases[i].pool & ~0x20);
			if (cases[i].priority != -1)
				assert_int_equal(vms[j].priority, cases[i].priority);
		}
		free(vms);
	}
	/* Whole rows come back. */
	assert_int_equal(vgpu_list_vms(t->db, 0, -1, &vms, &count), VGPU_OK);
	struct vgpu_vm_config third = get(t, 2);
	assert_same_vm(&vms[2], &third);
	free(vms);

	vms = NULL;
	count = 42;
	FAILS(VGPU_INVALID_PARAM, "pool", vgpu_list_vms(t->db, '1', -1, &vms, &count));
	FAILS(VGPU_INVALID_PARAM, "priority", vgpu_list_vms(t->db, 0, 3, &vms, &count));
	FAILS(VGPU_INVALID_PARAM, "priority", vgpu_list_vms(t->db, 0, -2, &vms, &count));
	assert_null(vms);
	assert_int_equal(count, 42);
	assert_int_equal(vgpu_list_vms(t->db, 0, -1, NULL, &count), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_list_vms(t->db, 0, -1, &vms, NULL), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_list_vms(NULL, 0, -1, &vms, &count), VGPU_INVALID_PARAM);
}

static void next_id_and_in_use(void **state)
{
	struct th_db *t = *state;
	bool in_use = true;
	int next = 0;

	assert_int_equal(vgpu_get_next_vm_id(t->db, &next), VGPU_OK);
	assert_int_equal(next, 1);
	assert_int_equal(vgpu_vm_id_in_use(t->db, 1, &in_use), VGPU_OK);
	assert_false(in_use);

	reg(t, 1, NULL, 0, -1, 0);
	reg(t, 2, NULL, 0, -1, VGPU_VM_ID_MAX);
	assert_int_equal(vgpu_vm_id_in_use(t->db, 1, &in_use), VGPU_OK);
	assert_true(in_use);
	assert_int_equal(vgpu_vm_id_in_use(t->db, VGPU_VM_ID_MAX, &in_use), VGPU_OK);
	assert_true(in_use);
	assert_int_equal(vgpu_vm_id_in_use(t->db, 2, &in_use), VGPU_OK);
	assert_false(in_use);
	assert_int_equal(vgpu_get_next_vm_id(t->db, &next), VGPU_OK);
	assert_int_equal(next, 2);
	/* in_use does not leave a message behind: it is not a failure. */
	assert_string_equal(vgpu_db_errmsg(t->db), "");

	in_use = true;
	FAILS(VGPU_INVALID_PARAM, "vm_id", vgpu_vm_id_in_use(t->db, 0, &in_use));
	FAILS(VGPU_INVALID_PARAM, "vm_id", vgpu_vm_id_in_use(t->db, -1, &in_use));
	assert_true(in_use);
	assert_int_equal(vgpu_vm_id_in_use(t->db, 1, NULL), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_vm_id_in_use(NULL, 1, &in_use), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_get_next_vm_id(t->db, NULL), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_get_next_vm_id(NULL, &next), VGPU_INVALID_PARAM);
}

#define T(f) cmocka_unit_test_setup_teardown(f, th_db_setup, th_db_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(register_defaults),
		T(register_explicit_values),
		T(register_auto_id_fills_gaps),
		T(register_taken_vm_id),
		T(register_duplicate_uuid),
		T(register_stores_uuid_lower_case),
		T(register_invalid_uuid),
		T(register_invalid_pool_priority_vm_id),
		T(name_length_limit),
		T(name_sql_text_stored_verbatim),
		T(name_rejects_controls_and_bad_utf8),
		T(name_accepts_multibyte_utf8),
		T(get_by_uuid),
		T(get_by_name),
		T(set_pool),
		T(set_priority),
		T(set_id),
		T(update_several_fields),
		T(update_name_null_keeps_empty_clears),
		T(scheduler_settings),
		T(update_all_or_nothing),
		T(remove_vm),
		T(list_vms_filters_and_order),
		T(next_id_and_in_use),
	};

	return cmocka_run_group_tests_name("vms", tests, NULL, NULL);
}
