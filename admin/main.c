/* SPDX-License-Identifier: MIT */
/*
 * main.c - vgpu-admin: the command table, option parsing and dispatch.
 *
 * Every value from the command line is validated here, with the library's own
 * validators, before any command runs: a command function only ever sees
 * well-formed values. Usage text is generated from the table.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define VM_SELECT "--vm-uuid UUID"
#define VM_FIELDS "[--vm-name NAME] [--pool A-Z] [--priority low|medium|high] [--vm-id N]"
#define POOL_FIELDS "[--name NAME] [--description TEXT] [--weight 1-10000] [--cap 1-100] " \
	"[--gpus all|N,...]"
#define POOL_OPTS (OPT_POOL | OPT_NAME | OPT_DESCRIPTION | OPT_WEIGHT | OPT_CAP | OPT_GPUS)
#define RESTART "[--yes] [--no-restart] [--timeout SECONDS]"
/* Accepted by set-pool and set-priority for earlier scripts: no effect. */
#define NO_RESTART_OPTS (OPT_YES | OPT_NO_RESTART | OPT_TIMEOUT)

const struct command commands[] = {
	{ "list-pools", cmd_list_pools, OPT_JSON, 0, "[--json]",
	  "List the pools with their VM counts" },
	{ "show-pool", cmd_show_pool, OPT_POOL | OPT_JSON, OPT_POOL, "--pool-id A-Z [--json]",
	  "Show one pool and its VMs" },
	{ "create-pool", cmd_create_pool, POOL_OPTS, OPT_POOL, "--pool C-Z " POOL_FIELDS,
	  "Create a pool (defaults: weight 100, no cap, all GPUs)" },
	{ "update-pool", cmd_update_pool, POOL_OPTS, OPT_POOL, "--pool A-Z " POOL_FIELDS,
	  "Change a pool's name, description, weight, cap or GPUs (live)" },
	{ "delete-pool", cmd_delete_pool, OPT_POOL, OPT_POOL, "--pool C-Z",
	  "Delete a pool that has no VMs (A and B stay)" },
	{ "scan-vms", cmd_scan_vms, OPT_JSON | OPT_TIMEOUT, 0, "[--json]",
	  "List this host's VMs grouped as Pool A, Pool B and Unregistered (needs xe)" },
	{ "register-vm", cmd_register_vm, OPT_VM_UUID | OPT_VM_NAME | OPT_POOL | OPT_PRIORITY | OPT_VM_ID,
	  OPT_VM_UUID, VM_SELECT " " VM_FIELDS,
	  "Register a VM (defaults: pool A, priority medium, lowest free vm_id)" },
	{ "show-vm", cmd_show_vm, OPT_VM_UUID | OPT_VM_NAME | OPT_JSON | OPT_EXPORT, 0,
	  VM_SELECT "|--vm-name NAME [--json|--export]", "Show a VM's settings" },
	{ "list-vms", cmd_list_vms, OPT_POOL | OPT_PRIORITY | OPT_JSON, 0,
	  "[--pool A-Z] [--priority low|medium|high] [--json]", "List registered VMs" },
	{ "set-sched", cmd_set_sched, OPT_VM_UUID | OPT_WEIGHT | OPT_RATE_LIMIT | OPT_MEM_QUOTA,
	  OPT_VM_UUID, VM_SELECT " [--weight 1-10000] [--rate-limit MS] [--mem-quota MIB]",
	  "Change a VM's weight in its pool, GPU-ms per second and memory quota (live)" },
	{ "set-pool", cmd_set_pool, OPT_VM_UUID | OPT_POOL | NO_RESTART_OPTS,
	  OPT_VM_UUID | OPT_POOL, VM_SELECT " --pool A-Z",
	  "Move a VM to another pool (live: no restart)" },
	{ "set-priority", cmd_set_priority, OPT_VM_UUID | OPT_PRIORITY | NO_RESTART_OPTS,
	  OPT_VM_UUID | OPT_PRIORITY, VM_SELECT " --priority low|medium|high",
	  "Change a VM's priority (live: no restart)" },
	{ "set-vm-id", cmd_set_vm_id, OPT_VM_UUID | OPT_VM_ID | OPT_YES | OPT_NO_RESTART | OPT_TIMEOUT,
	  OPT_VM_UUID | OPT_VM_ID, VM_SELECT " --vm-id N " RESTART,
	  "Change a VM's vm_id (restarts a running VM)" },
	{ "update-vm", cmd_update_vm,
	  OPT_VM_UUID | OPT_VM_NAME | OPT_POOL | OPT_PRIORITY | OPT_VM_ID | OPT_YES | OPT_NO_RESTART |
		  OPT_TIMEOUT,
	  OPT_VM_UUID, VM_SELECT " " VM_FIELDS " " RESTART,
	  "Change several settings at once (restarts a running VM for a new vm_id)" },
	{ "remove-vm", cmd_remove_vm, OPT_VM_UUID, OPT_VM_UUID, VM_SELECT,
	  "Remove a VM from the registry" },
	{ "status", cmd_status, OPT_JSON | OPT_TIMEOUT | OPT_RUN_DIR, 0, "[--json] [--run-dir DIR]",
	  "Control panel: pools, VMs with power state, mediator statistics, summary" },
	{ "stats", cmd_stats, OPT_JSON | OPT_RUN_DIR, 0, "[--json] [--run-dir DIR]",
	  "The running mediator's statistics per priority level and per VM" },
	{ "top", cmd_top, OPT_ONCE | OPT_SORT | OPT_RUN_DIR, 0,
	  "[--once] [--sort share|rate|wait|mem|name] [--run-dir DIR]",
	  "Live view of the pools' and VMs' GPU share, rates, waits and memory (q quits)" },
	{ NULL, NULL, 0, 0, NULL, NULL },
};

static const struct {
	unsigned bit;
	struct option opt;
	const char *name;
} option_table[] = {
	{ OPT_DB, { "db", required_argument, NULL, 'd' }, "--db" },
	{ OPT_JSON, { "json", no_argument, NULL, 'j' }, "--json" },
	{ OPT_YES, { "yes", no_argument, NULL, 'y' }, "--yes" },
	{ OPT_VM_UUID, { "vm-uuid", required_argument, NULL, 'u' }, "--vm-uuid" },
	{ OPT_VM_NAME, { "vm-name", required_argument, NULL, 'n' }, "--vm-name" },
	{ OPT_POOL, { "pool", required_argument, NULL, 'p' }, "--pool" },
	{ OPT_POOL, { "pool-id", required_argument, NULL, 'P' }, "--pool-id" },
	{ OPT_PRIORITY, { "priority", required_argument, NULL, 'r' }, "--priority" },
	{ OPT_VM_ID, { "vm-id", required_argument, NULL, 'i' }, "--vm-id" },
	{ OPT_NO_RESTART, { "no-restart", no_argument, NULL, 'N' }, "--no-restart" },
	{ OPT_TIMEOUT, { "timeout", required_argument, NULL, 't' }, "--timeout" },
	{ OPT_EXPORT, { "export", no_argument, NULL, 'e' }, "--export" },
	{ OPT_RUN_DIR, { "run-dir", required_argument, NULL, 'R' }, "--run-dir" },
	{ OPT_NAME, { "name", required_argument, NULL, 'm' }, "--name" },
	{ OPT_DESCRIPTION, { "description", required_argument, NULL, 'D' }, "--description" },
	{ OPT_WEIGHT, { "weight", required_argument, NULL, 'w' }, "--weight" },
	{ OPT_CAP, { "cap", required_argument, NULL, 'c' }, "--cap" },
	{ OPT_GPUS, { "gpus", required_argument, NULL, 'g' }, "--gpus" },
	{ OPT_RATE_LIMIT, { "rate-limit", required_argument, NULL, 'l' }, "--rate-limit" },
	{ OPT_MEM_QUOTA, { "mem-quota", required_argument, NULL, 'q' }, "--mem-quota" },
	{ OPT_ONCE, { "once", no_argument, NULL, 'O' }, "--once" },
	{ OPT_SORT, { "sort", required_argument, NULL, 'S' }, "--sort" },
	{ OPT_HELP, { "help", no_argument, NULL, 'h' }, "--help" },
	{ OPT_VERSION, { "version", no_argument, NULL, 'V' }, "--version" },
};
#define N_OPTIONS (sizeof(option_table) / sizeof(option_table[0]))

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: vgpu-admin [--db PATH] COMMAND [OPTIONS]\n"
		"       vgpu-admin COMMAND --help\n\n"
		"Manage the vgpu registry of pools, VMs and priorities.\n\n"
		"Commands:\n");
	for (const struct command *c = commands; c->name; c++)
		fprintf(out, "  %-13s %s\n", c->name, c->description);
	fprintf(out,
		"\nGlobal options:\n"
		"  --db PATH     registry database (default $%s, else %s)\n"
		"  --help        show this help; COMMAND --help shows the command's\n"
		"  --version     show the version\n\n"
		"Exit status: 0 ok, 1 error, 2 usage, 3 not found, 4 conflict,\n"
		"5 not confirmed, 6 VM left in another power state. See vgpu-admin(8).\n",
		VGPU_DB_ENV, VGPU_DEFAULT_DB_PATH);
}

static void command_usage(const struct command *c, FILE *out)
{
	fprintf(out, "Usage: vgpu-admin %s %s\n\n%s.\n", c->name, c->synopsis, c->description);
	/* Only a new vm_id restarts a VM: its device shows the one it was
	 * started with. A new pool or priority reaches the device live. */
	if ((c->accepts & OPT_NO_RESTART) && (c->accepts & OPT_VM_ID))
		fprintf(out,
			"\nFor a new vm_id a running VM is shut down (forced after --timeout\n"
			"seconds, default %d), the registry is updated and the VM is started\n"
			"again, after you confirm (or with --yes). A halted VM is only updated.\n"
			"--no-restart only updates the registry; the VM's device shows the new\n"
			"vm_id at its next start. A new name, pool or priority alone restarts\n"
			"nothing: the mediator applies it within a second.\n",
			DEFAULT_XE_TIMEOUT_S);
	else if (c->accepts & OPT_NO_RESTART)
		fprintf(out,
			"\nThe registry is updated and a running mediator applies the change within\n"
			"a second, to the VM's queued and new requests and to the POOL_ID and\n"
			"PRIORITY registers of its device (the guest sees them change): a running\n"
			"VM is not restarted. --yes, --no-restart and --timeout are accepted, for\n"
			"scripts written when this restarted the VM, and have no effect.\n");
	fprintf(out, "\nAlso: --db PATH, --help.\n");
}

static const struct command *find_command(const char *name)
{
	for (const struct command *c = commands; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

/* Bit and spelling of the option whose getopt value is @val. */
static unsigned option_bit(int val, const char **ret_name)
{
	for (size_t i = 0; i < N_OPTIONS; i++) {
		if (option_table[i].opt.val == val) {
			*ret_name = option_table[i].name;
			return option_table[i].bit;
		}
	}
	*ret_name = "?";
	return 0;
}

static int bad_value(const char *option, const char *value, const char *why)
{
	char shown[96];

	sanitize(value, shown, sizeof(shown));
	print_error("invalid %s '%s': %s", option, shown, why);
	return EXIT_USAGE;
}

/* Validate and store one option value. */
static int take_value(struct cli *cli, unsigned bit, const char *name, const char *value)
{
	switch (bit) {
	case OPT_DB:
		if (!*value)
			return bad_value(name, value, "empty path");
		cli->db_path = value;
		break;
	case OPT_RUN_DIR:
		if (value[0] != '/')
			return bad_value(name, value, "must be an absolute path");
		cli->run_dir = value;
		break;
	case OPT_VM_UUID:
		if (vgpu_uuid_normalize(value, cli->vm_uuid) != VGPU_OK)
			return bad_value(name, value, "expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx");
		break;
	case OPT_VM_NAME:
		if (!vgpu_name_valid(value))
			return bad_value(name, value,
					 "at most 255 bytes of printable UTF-8, no control characters");
		cli->vm_name = value;
		break;
	case OPT_POOL:
		if (vgpu_pool_id_parse(value, &cli->pool) != VGPU_OK)
			return bad_value(name, value, "must be one letter A to Z");
		break;
	case OPT_NAME:
		if (!*value || !vgpu_name_valid(value))
			return bad_value(name, value,
					 "1 to 255 bytes of printable UTF-8, no control characters");
		cli->pool_name = value;
		break;
	case OPT_DESCRIPTION:
		if (!vgpu_text_valid(value, VGPU_DESCRIPTION_MAX))
			return bad_value(name, value,
					 "at most 1023 bytes of printable UTF-8, no control characters");
		cli->description = value;
		break;
	case OPT_TIMEOUT:
	case OPT_WEIGHT:
	case OPT_CAP:
	case OPT_RATE_LIMIT:
	case OPT_MEM_QUOTA: {
		static const struct {
			unsigned bit;
			long long min, max;
			const char *why;
		} range[] = {
			{ OPT_TIMEOUT, 1, MAX_XE_TIMEOUT_S, "must be seconds in 1..3600" },
			{ OPT_WEIGHT, VGPU_WEIGHT_MIN, VGPU_WEIGHT_MAX, "must be an integer in 1..10000" },
			{ OPT_CAP, VGPU_CAP_PERCENT_MIN, VGPU_CAP_PERCENT_MAX,
			  "must be a percentage in 1..100 (100: no cap)" },
			{ OPT_RATE_LIMIT, 0, VGPU_RATE_LIMIT_MS_MAX,
			  "must be GPU-milliseconds per second in 0..32000 (0: none)" },
			{ OPT_MEM_QUOTA, 0, VGPU_MEM_QUOTA_MIB_MAX,
			  "must be MiB in 0..16777216 (0: none)" },
		};
		long long v = 0;

		for (size_t i = 0; i < sizeof(range) / sizeof(range[0]); i++)
			if (range[i].bit == bit &&
			    vgpu_int_parse(value, range[i].min, range[i].max, &v) != VGPU_OK)
				return bad_value(name, value, range[i].why);
		if (bit == OPT_TIMEOUT)
			cli->timeout_s = (int)v;
		else if (bit == OPT_WEIGHT)
			cli->weight = (int)v;
		else if (bit == OPT_CAP)
			cli->cap_percent = (int)v;
		else if (bit == OPT_RATE_LIMIT)
			cli->rate_limit_ms = (int)v;
		else
			cli->mem_quota_mib = v;
		break;
	}
	case OPT_GPUS:
		if (vgpu_gpus_parse(value, &cli->gpus) != VGPU_OK)
			return bad_value(name, value,
					 "must be all, or GPU numbers 0..31 separated by commas");
		break;
	case OPT_PRIORITY:
		if (vgpu_priority_parse(value, &cli->priority) != VGPU_OK)
			return bad_value(name, value, "must be low, medium, high, or 0, 1, 2");
		break;
	case OPT_VM_ID:
		if (vgpu_vm_id_parse(value, &cli->vm_id) != VGPU_OK)
			return bad_value(name, value, "must be an integer in 1..2147483647");
		break;
	case OPT_JSON:
		cli->json = true;
		break;
	case OPT_YES:
		cli->yes = true;
		break;
	case OPT_NO_RESTART:
		cli->no_restart = true;
		break;
	case OPT_EXPORT:
		cli->export_env = true;
		break;
	case OPT_ONCE:
		cli->once = true;
		break;
	case OPT_SORT:
		if (top_sort_parse(value, &cli->sort) != VGPU_OK)
			return bad_value(name, value, "must be share, rate, wait, mem or name");
		break;
	}
	return EXIT_OK;
}

/* Parse argv from optind on against @allowed options; 0 or an exit code. */
static int parse_options(struct cli *cli, int argc, char **argv, unsigned allowed,
			 const char *context)
{
	struct option longopts[N_OPTIONS + 1];

	for (size_t i = 0; i < N_OPTIONS; i++)
		longopts[i] = option_table[i].opt;
	memset(&longopts[N_OPTIONS], 0, sizeof(longopts[0]));

	opterr = 0;
	for (;;) {
		const char *name;
		int longindex = -1;
		int c = getopt_long(argc, argv, "+:", longopts, &longindex);

		if (c == -1)
			break;
		if (c == '?' || c == ':') {
			const char *arg = argv[optind - 1];
			char shown[96];

			sanitize(arg, shown, sizeof(shown));
			if (c == ':')
				print_error("option '%s' needs a value", shown);
			else if (optopt && option_bit(optopt, &name) && strncmp(arg, "--", 2) == 0)
				print_error("option '%s' takes no value", shown);
			else
				print_error("option '%s' is not known", shown);
			return EXIT_USAGE;
		}
		unsigned bit = option_bit(c, &name);
		if (!(allowed & bit)) {
			print_error("option %s is not valid %s", name, context);
			return EXIT_USAGE;
		}
		if (bit == OPT_HELP || bit == OPT_VERSION)
			return -(int)bit;
		if (cli->given & bit & ~OPT_DB) {
			print_error("option %s is given twice", name);
			return EXIT_USAGE;
		}
		cli->given |= bit;
		int rc = take_value(cli, bit, name, optarg);
		if (rc != EXIT_OK)
			return rc;
	}
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	struct cli cli = { .priority = -1, .timeout_s = DEFAULT_XE_TIMEOUT_S };
	const char *explicit_db = NULL;
	int rc;

	/* Global options come before the command. */
	rc = parse_options(&cli, argc, argv, OPT_DB | OPT_HELP | OPT_VERSION, "before the command");
	if (rc == -OPT_VERSION) {
		printf("vgpu-admin %s\n", VGPU_VERSION);
		return EXIT_OK;
	}
	if (rc < 0 || (rc == EXIT_OK && optind >= argc)) {
		usage(rc < 0 ? stdout : stderr);
		return rc < 0 ? EXIT_OK : EXIT_USAGE;
	}
	if (rc != EXIT_OK)
		return rc;
	if (strcmp(argv[optind], "help") == 0) {
		const struct command *c = optind + 1 < argc ? find_command(argv[optind + 1]) : NULL;

		if (c)
			command_usage(c, stdout);
		else
			usage(stdout);
		return EXIT_OK;
	}
	cli.cmd = find_command(argv[optind]);
	if (!cli.cmd) {
		char shown[64];

		sanitize(argv[optind], shown, sizeof(shown));
		print_error("unknown command '%s' (see vgpu-admin --help)", shown);
		return EXIT_USAGE;
	}
	explicit_db = cli.db_path;

	/* Command options: reset getopt to parse after the command's name. */
	char context[64];
	snprintf(context, sizeof(context), "for %s", cli.cmd->name);
	int sub_argc = argc - optind;
	char **sub_argv = argv + optind;
	optind = 1;
	rc = parse_options(&cli, sub_argc, sub_argv, cli.cmd->accepts | OPT_DB | OPT_HELP, context);
	if (rc < 0) {
		command_usage(cli.cmd, stdout);
		return EXIT_OK;
	}
	if (rc != EXIT_OK)
		return rc;
	if (optind < sub_argc) {
		char shown[64];

		sanitize(sub_argv[optind], shown, sizeof(shown));
		print_error("unexpected argument '%s' for %s", shown, cli.cmd->name);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < N_OPTIONS; i++) {
		unsigned bit = option_table[i].bit;

		if ((cli.cmd->requires & bit) && !(cli.given & bit)) {
			print_error("%s needs %s (see vgpu-admin %s --help)", cli.cmd->name,
				    option_table[i].name, cli.cmd->name);
			return EXIT_USAGE;
		}
	}
	if (cli.json && cli.export_env) {
		print_error("--json and --export cannot be used together");
		return EXIT_USAGE;
	}
	cli.db_path = vgpu_db_path(cli.db_path ? cli.db_path : explicit_db);
	if (!cli.run_dir) {
		const char *env = getenv(RUN_DIR_ENV);

		cli.run_dir = env && *env == '/' ? env : DEFAULT_RUN_DIR;
	}
	return cli.cmd->fn(&cli);
}
