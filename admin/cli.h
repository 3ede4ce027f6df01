/* SPDX-License-Identifier: MIT */
/*
 * cli.h - what the files of vgpu-admin share: the parsed command line, the
 * command table entry, exit codes and output helpers.
 *
 * vgpu-admin is laid out like wireguard-tools' wg: main.c holds the table of
 * commands and generates the usage text from it; each cmd_*.c file holds one
 * group of commands.
 */
#ifndef VGPU_ADMIN_CLI_H
#define VGPU_ADMIN_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "admin_shared.h"
#include "vgpu_config.h"

/* Exit codes, documented in vgpu-admin(8). */
enum exit_code {
	EXIT_OK = 0,
	EXIT_ERROR = 1,        /* database, I/O or xe failure */
	EXIT_USAGE = 2,        /* unknown command or option, malformed value */
	EXIT_NOT_FOUND = 3,    /* VM or pool not registered */
	EXIT_CONFLICT = 4,     /* UUID or pool exists, vm_id taken, ambiguous, pool has VMs */
	EXIT_NOT_CONFIRMED = 5,/* answered no, or no terminal and no --yes */
	EXIT_VM_STATE = 6,     /* change undone but VM not returned to its power state */
};

/* Options a command may accept; bits of struct command's masks. */
enum option_bit {
	OPT_DB = 1u << 0,
	OPT_JSON = 1u << 1,
	OPT_YES = 1u << 2,
	OPT_VM_UUID = 1u << 3,
	OPT_VM_NAME = 1u << 4,
	OPT_POOL = 1u << 5,
	OPT_PRIORITY = 1u << 6,
	OPT_VM_ID = 1u << 7,
	OPT_NO_RESTART = 1u << 8,
	OPT_TIMEOUT = 1u << 9,
	OPT_EXPORT = 1u << 10,
	OPT_HELP = 1u << 11,
	OPT_VERSION = 1u << 12,
	OPT_RUN_DIR = 1u << 13,
	OPT_NAME = 1u << 14,        /* a pool's name */
	OPT_DESCRIPTION = 1u << 15,
	OPT_WEIGHT = 1u << 16,
	OPT_CAP = 1u << 17,
	OPT_GPUS = 1u << 18,
	OPT_RATE_LIMIT = 1u << 19,
	OPT_MEM_QUOTA = 1u << 20,
	OPT_ONCE = 1u << 21,
	OPT_SORT = 1u << 22,
};

#define DEFAULT_RUN_DIR "/run/vgpu"
#define RUN_DIR_ENV "VGPU_RUN_DIR"
#define DEFAULT_XE_TIMEOUT_S 120
#define MAX_XE_TIMEOUT_S 3600

/* The command line after parsing and validation. */
struct cli {
	const struct command *cmd;
	const char *db_path;        /* resolved registry path */
	const char *run_dir;        /* the mediator's run directory (--run-dir) */
	unsigned given;             /* OPT_* bits seen */
	bool json, yes, no_restart, export_env;
	char vm_uuid[VGPU_UUID_STRLEN + 1]; /* normalized, when OPT_VM_UUID */
	const char *vm_name;        /* validated, when OPT_VM_NAME */
	char pool;                  /* 'A'..'Z', when OPT_POOL */
	int priority;               /* 0..2, when OPT_PRIORITY */
	int vm_id;                  /* 1..max, when OPT_VM_ID */
	int timeout_s;              /* per xe step */
	const char *pool_name;      /* validated, when OPT_NAME */
	const char *description;    /* validated, when OPT_DESCRIPTION */
	int weight;                 /* VGPU_WEIGHT_MIN.., when OPT_WEIGHT */
	int cap_percent;            /* 1..100, when OPT_CAP */
	unsigned gpus;              /* mask (0: all), when OPT_GPUS */
	int rate_limit_ms;          /* 0..VGPU_RATE_LIMIT_MS_MAX, when OPT_RATE_LIMIT */
	long long mem_quota_mib;    /* 0..VGPU_MEM_QUOTA_MIB_MAX, when OPT_MEM_QUOTA */
	bool once;                  /* top: one frame */
	int sort;                   /* top: a column (cmd_top.c), when OPT_SORT */
};

struct command {
	const char *name;
	int (*fn)(struct cli *cli);
	unsigned accepts;           /* OPT_* bits allowed besides --db and --help */
	unsigned requires;          /* OPT_* bits that must be given */
	const char *synopsis;       /* options, for the usage line */
	const char *description;    /* one line */
};

/* Every command, in the order of the usage text. */
extern const struct command commands[];

/* Open the registry of cli->db_path, creating it when missing. Prints the
 * reason and returns NULL on failure; *ret_exit gets the exit code. */
vgpu_db *cli_open_db(const struct cli *cli, int *ret_exit);

/* Print "vgpu-admin: <what>: <db message>" and map @rc to an exit code. */
int cli_fail(vgpu_db *db, int rc, const char *what);
/* Exit code for a library error code. */
int cli_exit_code(int rc);

/* Printing helpers (output.c). */
void print_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print @root to stdout, steal the reference; EXIT_OK or failure. */
int print_json(json_t *root);

/* Apply @upd to the registered VM @cur, restarting it when it runs and the
 * change is one its device shows only from its start: a new vm_id (a new
 * pool or priority reaches the device live, through the mediator).
 * restart.c. Returns an exit code. */
int apply_change(const struct cli *cli, vgpu_db *db, const struct vgpu_vm_config *cur,
		 const struct vgpu_vm_update *upd);

/* Command implementations. */
int cmd_list_pools(struct cli *cli);
int cmd_show_pool(struct cli *cli);
int cmd_create_pool(struct cli *cli);
int cmd_update_pool(struct cli *cli);
int cmd_delete_pool(struct cli *cli);
int cmd_set_sched(struct cli *cli);
int cmd_register_vm(struct cli *cli);
int cmd_show_vm(struct cli *cli);
int cmd_list_vms(struct cli *cli);
int cmd_remove_vm(struct cli *cli);
int cmd_set_pool(struct cli *cli);
int cmd_set_priority(struct cli *cli);
int cmd_set_vm_id(struct cli *cli);
int cmd_update_vm(struct cli *cli);
int cmd_scan_vms(struct cli *cli);
int cmd_status(struct cli *cli);
int cmd_stats(struct cli *cli);
int cmd_top(struct cli *cli);
/* cmd_top.c: top's --sort value (share, rate, wait, mem, name) into *@ret. */
int top_sort_parse(const char *s, int *ret);

/* Print the per-priority and per-VM tables of a stats document. */
void print_mediator_stats(json_t *doc);

#endif
