/* SPDX-License-Identifier: MIT */
/*
 * vgpu_config.h - libvgpu-config: the registry of pools and VMs.
 *
 * A small C library over an embedded SQLite database (default
 * /etc/vgpu/vgpu_config.db). vgpu-admin, vgpu-qemu-wrapper and the mediator
 * all read and write the registry through it, at the same time: the database
 * runs in WAL mode with a busy timeout and every write is one IMMEDIATE
 * transaction.
 *
 * Rules for every function below:
 *  - the return value is VGPU_OK or a negative code from vgpu_error.h;
 *  - every input is validated here, not only by the callers;
 *  - ret_... output parameters are written only on success;
 *  - on failure a one-line explanation is kept in the handle and can be read
 *    with vgpu_db_errmsg();
 *  - the library never prints and keeps no global state.
 */
#ifndef VGPU_CONFIG_H
#define VGPU_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "vgpu_error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VGPU_DEFAULT_DB_PATH "/etc/vgpu/vgpu_config.db"
#define VGPU_DB_ENV "VGPU_DB"

#define VGPU_UUID_STRLEN 36       /* canonical 8-4-4-4-12 text form */
#define VGPU_NAME_MAX 255         /* bytes of UTF-8, without the NUL */
#define VGPU_DESCRIPTION_MAX 1023 /* bytes of UTF-8, without the NUL */
#define VGPU_TIMESTAMP_STRLEN 19  /* "YYYY-MM-DD HH:MM:SS", UTC */
#define VGPU_VM_ID_MIN 1
#define VGPU_VM_ID_MAX 2147483647

/* The schema version this build creates and understands (PRAGMA user_version). */
#define VGPU_SCHEMA_VERSION 3

/* The scheduler's settings (docs/scheduler.md). */
#define VGPU_WEIGHT_MIN 1
#define VGPU_WEIGHT_MAX 10000
#define VGPU_WEIGHT_DEFAULT 100
#define VGPU_CAP_PERCENT_MIN 1
#define VGPU_CAP_PERCENT_MAX 100          /* 100: no cap */
#define VGPU_MAX_GPUS 32                  /* a pool's GPUs: bits of a 32-bit mask */
#define VGPU_RATE_LIMIT_MS_MAX 32000      /* GPU-ms per second: 32 GPUs' worth */
#define VGPU_MEM_QUOTA_MIB_MAX 16777216LL /* 16 TiB */

enum vgpu_priority {
	VGPU_PRIORITY_LOW = 0,
	VGPU_PRIORITY_MEDIUM = 1,
	VGPU_PRIORITY_HIGH = 2,
};

#define VGPU_DEFAULT_POOL 'A'
#define VGPU_SECOND_POOL 'B'          /* A and B: made with the schema, never deleted */
#define VGPU_DEFAULT_PRIORITY VGPU_PRIORITY_MEDIUM

/* An open registry. Opaque; one per thread. */
typedef struct vgpu_db vgpu_db;

struct vgpu_pool_info {
	char pool_id;                                  /* 'A' .. 'Z' */
	char pool_name[VGPU_NAME_MAX + 1];             /* "Pool A" by default */
	char description[VGPU_DESCRIPTION_MAX + 1];    /* "" when unset */
	bool enabled;                                  /* pool accepts work */
	int weight;                                    /* its share when pools compete */
	int cap_percent;                               /* most of its GPUs' time; 100: none */
	unsigned gpus;                                 /* GPUs it may use, a mask; 0: all */
	int vm_count;                                  /* VMs assigned to it */
	char created_at[VGPU_TIMESTAMP_STRLEN + 1];
	char updated_at[VGPU_TIMESTAMP_STRLEN + 1];
};

struct vgpu_vm_config {
	int vm_id;                                     /* 1..VGPU_VM_ID_MAX */
	char vm_uuid[VGPU_UUID_STRLEN + 1];            /* lower-case canonical */
	char vm_name[VGPU_NAME_MAX + 1];               /* "" when unset */
	char pool_id;                                  /* 'A' .. 'Z' */
	int priority;                                  /* enum vgpu_priority */
	int weight;                                    /* its share within the pool */
	int rate_limit_ms;                             /* GPU-ms per second; 0: none */
	long long mem_quota_mib;                       /* device memory; 0: none */
	char created_at[VGPU_TIMESTAMP_STRLEN + 1];
	char updated_at[VGPU_TIMESTAMP_STRLEN + 1];
};

/* The fields vgpu_update_vm() changes; the others keep their values. */
struct vgpu_vm_update {
	const char *vm_name;  /* NULL: unchanged; "": clear the name */
	char pool_id;         /* 0: unchanged */
	int priority;         /* -1: unchanged */
	int vm_id;            /* 0: unchanged */
	int weight;           /* 0: unchanged */
	int rate_limit_ms;    /* -1: unchanged */
	long long mem_quota_mib; /* -1: unchanged */
};
#define VGPU_VM_UPDATE_INIT                                                        \
	{ .vm_name = NULL, .pool_id = 0, .priority = -1, .vm_id = 0, .weight = 0,  \
	  .rate_limit_ms = -1, .mem_quota_mib = -1 }

/* A pool's settings for vgpu_create_pool() (unchanged fields take their
 * defaults there) and vgpu_update_pool() (unchanged fields keep their
 * values). */
struct vgpu_pool_settings {
	const char *pool_name;   /* NULL: unchanged ("Pool X" when created) */
	const char *description; /* NULL: unchanged; "": clear */
	int weight;              /* 0: unchanged (VGPU_WEIGHT_DEFAULT) */
	int cap_percent;         /* 0: unchanged (100: no cap) */
	long long gpus;          /* -1: unchanged (0: all GPUs) */
};
#define VGPU_POOL_SETTINGS_INIT                                                     \
	{ .pool_name = NULL, .description = NULL, .weight = 0, .cap_percent = 0, .gpus = -1 }

/* ---- database ---------------------------------------------------------- */

/* Flags for vgpu_db_init(). */
#define VGPU_DB_NO_CREATE (1u << 0) /* missing file: VGPU_NOT_FOUND, create nothing */

/*
 * The registry path by the rules of every tool's --db option: @explicit_path
 * when not NULL, else $VGPU_DB when set and not empty, else
 * VGPU_DEFAULT_DB_PATH. The result is @explicit_path, getenv()'s string or a
 * static string: do not free it.
 */
const char *vgpu_db_path(const char *explicit_path);

/*
 * Open the registry at @path, creating its directory (mode 0755) and the
 * file when missing unless @flags has VGPU_DB_NO_CREATE, switch it to WAL,
 * set a busy timeout, enforce foreign keys and bring the schema to
 * VGPU_SCHEMA_VERSION (vgpu_db_init_schema). A database whose schema is newer
 * than this build gives VGPU_UNSUPPORTED and is left untouched.
 * On success *ret_db owns the connection: release it with vgpu_db_close().
 * Failure messages cannot be read from a handle that was never made, so
 * @ret_errmsg (may be NULL; @errmsg_size bytes) receives one instead.
 */
int vgpu_db_init(const char *path, unsigned flags, vgpu_db **ret_db,
		 char *ret_errmsg, size_t errmsg_size);

/* Close @db. Accepts NULL. */
void vgpu_db_close(vgpu_db *db);

/*
 * Create the tables, indexes and pools A and B, or migrate an older schema
 * forward, in one transaction. Idempotent; vgpu_db_init() calls it.
 */
int vgpu_db_init_schema(vgpu_db *db);

/* The schema version stored in @db. */
int vgpu_db_schema_version(vgpu_db *db, int *ret_version);

/* The explanation of the last failure on @db; "" when none. Never NULL. */
const char *vgpu_db_errmsg(const vgpu_db *db);

/* ---- pools ------------------------------------------------------------- */

/* Pool @pool_id ('A' .. 'Z', either case) with its VM count. */
int vgpu_get_pool_info(vgpu_db *db, char pool_id, struct vgpu_pool_info *ret_info);

/*
 * Every pool, ordered by id. *ret_pools is a malloc()ed array of *ret_count
 * entries that the caller frees with free().
 */
int vgpu_list_pools(vgpu_db *db, struct vgpu_pool_info **ret_pools, size_t *ret_count);

/* Create pool @pool_id (a letter A .. Z, either case) with @settings (may
 * be NULL: every default). VGPU_EXISTS when it exists. */
int vgpu_create_pool(vgpu_db *db, char pool_id, const struct vgpu_pool_settings *settings);
/* Change the fields of @settings, all or none. */
int vgpu_update_pool(vgpu_db *db, char pool_id, const struct vgpu_pool_settings *settings);
/* Delete pool @pool_id: VGPU_BUSY while VMs are in it, VGPU_INVALID_PARAM
 * for the default pools A and B. */
int vgpu_delete_pool(vgpu_db *db, char pool_id);

/* ---- VMs --------------------------------------------------------------- */

/* The VM registered under @vm_uuid (any case). */
int vgpu_get_vm_config(vgpu_db *db, const char *vm_uuid, struct vgpu_vm_config *ret_config);

/*
 * The VM registered under the name @vm_name. CloudStack recreates its XAPI
 * VMs on every start, so their UUIDs change while their names stay.
 * VGPU_AMBIGUOUS when several VMs carry that name.
 */
int vgpu_get_vm_config_by_name(vgpu_db *db, const char *vm_name,
			       struct vgpu_vm_config *ret_config);

/*
 * Register a VM. @vm_name may be NULL or "" (no name); @pool_id 0 means
 * VGPU_DEFAULT_POOL; @priority -1 means VGPU_DEFAULT_PRIORITY; @vm_id 0 means
 * the lowest free id from 1. VGPU_EXISTS when the UUID is registered or the
 * vm_id is taken, VGPU_NOT_FOUND when the pool does not exist. The
 * scheduler's settings start at their defaults (weight 100, no rate limit,
 * no quota; vgpu_update_vm changes them). @ret_config may be NULL; else it
 * receives the stored row.
 */
int vgpu_register_vm(vgpu_db *db, const char *vm_uuid, const char *vm_name, char pool_id,
		     int priority, int vm_id, struct vgpu_vm_config *ret_config);

int vgpu_set_vm_pool(vgpu_db *db, const char *vm_uuid, char pool_id);
int vgpu_set_vm_priority(vgpu_db *db, const char *vm_uuid, int priority);
/* VGPU_EXISTS when another VM holds @vm_id. */
int vgpu_set_vm_id(vgpu_db *db, const char *vm_uuid, int vm_id);

/* Change the fields of @update in one transaction: all of them or none. */
int vgpu_update_vm(vgpu_db *db, const char *vm_uuid, const struct vgpu_vm_update *update);

int vgpu_remove_vm(vgpu_db *db, const char *vm_uuid);

/*
 * Registered VMs ordered by vm_id, only those in pool @pool_filter (0: any)
 * and of priority @priority_filter (-1: any). *ret_vms is a malloc()ed array
 * of *ret_count entries (NULL when 0) that the caller frees with free().
 */
int vgpu_list_vms(vgpu_db *db, char pool_filter, int priority_filter,
		  struct vgpu_vm_config **ret_vms, size_t *ret_count);

/* The lowest vm_id from 1 that no VM holds; VGPU_LIMIT when none is left. */
int vgpu_get_next_vm_id(vgpu_db *db, int *ret_vm_id);

/* Whether a VM holds @vm_id. */
int vgpu_vm_id_in_use(vgpu_db *db, int vm_id, bool *ret_in_use);

/* ---- validation and parsing (shared with the tools) -------------------- */

/* 8-4-4-4-12 hexadecimal digits, either case. */
bool vgpu_uuid_valid(const char *s);
/* Copy a valid UUID into @ret_uuid in lower case. */
int vgpu_uuid_normalize(const char *s, char ret_uuid[VGPU_UUID_STRLEN + 1]);
/* One upper-case letter A .. Z. */
bool vgpu_pool_id_valid(char pool_id);
bool vgpu_priority_valid(int priority);
bool vgpu_vm_id_valid(long long vm_id);
/* At most VGPU_NAME_MAX bytes of valid UTF-8 without control characters. */
bool vgpu_name_valid(const char *s);
/* The same, at most @max bytes (descriptions: VGPU_DESCRIPTION_MAX). */
bool vgpu_text_valid(const char *s, size_t max);

/* One letter A .. Z (either case), into upper case. */
int vgpu_pool_id_parse(const char *s, char *ret_pool_id);
/* "all" (0), or GPU indexes below VGPU_MAX_GPUS, comma-separated ("0,2"),
 * into a mask. */
int vgpu_gpus_parse(const char *s, unsigned *ret_mask);
/* @mask as vgpu_gpus_parse() reads it: "all", "0,2". @out holds 96 bytes. */
void vgpu_gpus_format(unsigned mask, char out[96]);
/* A decimal integer in @min..@max, nothing else around it. */
int vgpu_int_parse(const char *s, long long min, long long max, long long *ret);
/* "low", "medium", "high" (either case) or "0", "1", "2". */
int vgpu_priority_parse(const char *s, int *ret_priority);
/* A decimal vm_id in 1..VGPU_VM_ID_MAX, nothing else around it. */
int vgpu_vm_id_parse(const char *s, int *ret_vm_id);
/* "low", "medium" or "high"; "invalid" for anything else. */
const char *vgpu_priority_name(int priority);

#ifdef __cplusplus
}
#endif

#endif
