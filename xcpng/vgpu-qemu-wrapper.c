/* SPDX-License-Identifier: MIT */
/*
 * vgpu-qemu-wrapper.c - xenopsd's device-model wrapper for vgpu.
 *
 * Installed as /etc/xenopsd.conf's `upstream-compat-qemu-dm-wrapper` and
 * called as `<wrapper> <domid> --syslog <qemu args...>`. It finds the
 * domain's VM (xenstore /local/domain/<domid>/vm and /name), looks it up in
 * the registry by UUID and then by name (CloudStack recreates VMs under new
 * UUIDs), appends `-device vgpu-stub,pool_id=P,priority=N,vm_id=M` for a
 * registered VM, and execs the stock wrapper.
 *
 * Must never: keep a VM from booting because of vgpu (any trouble passes the
 * arguments through unchanged, unless `strict = yes`), change, drop or
 * reorder an original argument, run a shell, leak a descriptor of its own
 * into QEMU, or exec itself.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "conf.h"
#include "qemu_opts.h"
#include "vgpu_config.h"
#include "xenstore.h"

#define IDENT "vgpu-qemu-wrapper"
#define DEFAULT_CONF "/etc/vgpu/vgpu.conf"
#define DEFAULT_STOCK_WRAPPER "/usr/lib64/xen/bin/qemu-wrapper"
#define XENSTORE_TIMEOUT_MS 5000

struct settings {
	char stock_wrapper[PATH_MAX]; /* the wrapper this one hands over to */
	char db[PATH_MAX];            /* the registry, unless $VGPU_DB is set */
	bool strict;                  /* trouble stops the start instead of passing through */
	char mediator_dir[PATH_MAX];  /* the mediator's run_dir: the device's socket is there */
};

#define FIELD(f) offsetof(struct settings, f), sizeof(((struct settings *)0)->f)
static const struct vgpu_conf_option options[] = {
	{ "stock_wrapper", VGPU_CONF_PATH, FIELD(stock_wrapper), 0, 0, DEFAULT_STOCK_WRAPPER,
	  "the wrapper to exec (absolute path)" },
	{ "db", VGPU_CONF_PATH, FIELD(db), 0, 0, VGPU_DEFAULT_DB_PATH,
	  "the vgpu registry (absolute path)" },
	{ "strict", VGPU_CONF_BOOL, FIELD(strict), 0, 0, "no",
	  "yes: refuse to start a VM when xenstore or the registry cannot be read" },
	{ "mediator_dir", VGPU_CONF_PATH, FIELD(mediator_dir), 0, 0, "/run/vgpu",
	  "the mediator's run_dir: the device connects to its VM's socket there (absolute path)" },
	{ NULL },
};

/* What the lookup decided. */
enum verdict {
	ADD_DEVICE,  /* registered: append the device */
	PASS,        /* not registered, or not ours to judge: pass through */
	TROUBLE,     /* could not find out: pass through, or stop when strict */
};

static void usage(void)
{
	printf("Usage: %s DOMID --syslog QEMU-ARGUMENT...\n"
	       "       %s --help | --version\n\n"
	       "xenopsd's device-model wrapper for vgpu. For a VM registered in the vgpu\n"
	       "registry it appends\n"
	       "  -device vgpu-stub,pool_id=P,priority=N,vm_id=M\n"
	       "to QEMU's arguments, then execs the stock wrapper; every other VM starts\n"
	       "with its arguments unchanged.\n\n"
	       "Configuration file %s ($VGPU_CONF), `key = value` lines:\n",
	       IDENT, IDENT, DEFAULT_CONF);
	for (const struct vgpu_conf_option *o = options; o->name; o++)
		printf("  %-14s %s (default: %s)\n", o->name, o->help, o->default_value);
	printf("\nEnvironment: VGPU_STOCK_WRAPPER overrides stock_wrapper, VGPU_DB overrides db.\n"
	       "See vgpu-qemu-wrapper(8).\n");
}

/* Settings from the file, or the defaults when the file is missing or bad. */
static bool load_settings(struct settings *s)
{
	const char *path = getenv("VGPU_CONF");
	char err[512];
	int rc;

	if (!path || !*path)
		path = DEFAULT_CONF;
	vgpu_conf_defaults(options, s);
	rc = vgpu_conf_load(path, options, s, err, sizeof(err));
	if (rc == VGPU_OK || rc == VGPU_NOT_FOUND)
		return true;
	syslog(LOG_WARNING, "ignoring the configuration file: %s", err);
	vgpu_conf_defaults(options, s);
	return false;
}

/* $VGPU_STOCK_WRAPPER, else the file's stock_wrapper, else the default. */
static const char *stock_wrapper(const struct settings *s)
{
	const char *env = getenv("VGPU_STOCK_WRAPPER");

	if (env && *env) {
		if (env[0] == '/')
			return env;
		syslog(LOG_WARNING, "ignoring VGPU_STOCK_WRAPPER: not an absolute path");
	}
	return s->stock_wrapper;
}

/* Whether @path is this very program: exec'ing it would loop forever. */
static bool is_self(const char *path)
{
	struct stat target, self;

	if (stat(path, &target) != 0)
		return false; /* the exec fails and says why */
	if (stat("/proc/self/exe", &self) != 0) {
		syslog(LOG_WARNING, "cannot check that %s is not this wrapper: /proc/self/exe: %m",
		       path);
		return false;
	}
	return target.st_dev == self.st_dev && target.st_ino == self.st_ino;
}

/* The registered VM of domain @domid, by UUID and then by name. */
static enum verdict lookup(unsigned domid, const struct settings *s,
			   struct vgpu_vm_config *ret_vm, char *why, size_t why_size)
{
	char path[VGPU_XS_PATH_MAX], value[VGPU_NAME_MAX + 2], shown[80], err[512];
	char uuid[VGPU_UUID_STRLEN + 1];
	const char *env_db = getenv(VGPU_DB_ENV);
	const char *db_path = env_db && *env_db ? vgpu_db_path(NULL) : s->db;
	enum verdict v = TROUBLE;
	vgpu_db *db = NULL;
	int rc;

	snprintf(path, sizeof(path), "/local/domain/%u/vm", domid);
	if (vgpu_xs_read(path, XENSTORE_TIMEOUT_MS, value, sizeof(value), why, why_size) !=
	    VGPU_OK)
		return TROUBLE;
	if (vgpu_xs_vm_uuid(value, uuid) != VGPU_OK) {
		vgpu_xs_printable(value, 60, shown, sizeof(shown));
		snprintf(why, why_size, "%s is \"%s\", not /vm/<uuid>", path, shown);
		return TROUBLE;
	}

	rc = vgpu_db_init(db_path, VGPU_DB_NO_CREATE, &db, err, sizeof(err));
	if (rc != VGPU_OK) {
		snprintf(why, why_size, "VM %s: cannot open the registry: %s", uuid, err);
		return TROUBLE;
	}
	rc = vgpu_get_vm_config(db, uuid, ret_vm);
	if (rc == VGPU_OK) {
		v = ADD_DEVICE;
		goto out;
	}
	if (rc != VGPU_NOT_FOUND) {
		snprintf(why, why_size, "VM %s: cannot read the registry: %s", uuid,
			 vgpu_db_errmsg(db));
		goto out;
	}

	snprintf(path, sizeof(path), "/local/domain/%u/name", domid);
	if (vgpu_xs_read(path, XENSTORE_TIMEOUT_MS, value, sizeof(value), why, why_size) !=
	    VGPU_OK)
		goto out;
	if (!vgpu_name_valid(value)) {
		vgpu_xs_printable(value, 60, shown, sizeof(shown));
		snprintf(why, why_size, "%s is not a valid VM name: \"%s\"", path, shown);
		goto out;
	}
	if (!*value) {
		snprintf(why, why_size, "VM %s (no name) is not registered", uuid);
		v = PASS;
		goto out;
	}
	rc = vgpu_get_vm_config_by_name(db, value, ret_vm);
	if (rc == VGPU_OK) {
		syslog(LOG_NOTICE, "VM %s is registered by its name \"%s\" under UUID %s", uuid,
		       value, ret_vm->vm_uuid);
		v = ADD_DEVICE;
	} else if (rc == VGPU_NOT_FOUND) {
		snprintf(why, why_size, "VM %s (\"%s\") is not registered", uuid, value);
		v = PASS;
	} else if (rc == VGPU_AMBIGUOUS) {
		snprintf(why, why_size,
			 "VM %s is not registered by UUID and several VMs are registered "
			 "as \"%s\": treating it as not registered",
			 uuid, value);
		v = PASS;
	} else {
		snprintf(why, why_size, "VM %s: cannot read the registry: %s", uuid,
			 vgpu_db_errmsg(db));
	}
out:
	vgpu_db_close(db);
	return v;
}

/* Replace this process with @stock, given our arguments and @device, with
 * the SIGCHLD disposition @sigchld we were started with. */
static int exec_stock(const char *stock, int argc, char **argv, const char *device,
		      const struct sigaction *sigchld)
{
	char **args = calloc((size_t)argc + 3, sizeof(*args));
	int n = 0;

	if (!args) {
		syslog(LOG_ERR, "out of memory");
		return 1;
	}
	args[n++] = (char *)stock;
	for (int i = 1; i < argc; i++)
		args[n++] = argv[i];
	if (device) {
		args[n++] = (char *)"-device";
		args[n++] = (char *)device;
	}
	args[n] = NULL;
	closelog();
	sigaction(SIGCHLD, sigchld, NULL);
	execv(stock, args);
	int e = errno;
	openlog(IDENT, LOG_PID | LOG_PERROR, LOG_DAEMON);
	syslog(LOG_ERR, "cannot exec the stock wrapper %s: %s", stock, strerror(e));
	free(args);
	return 1;
}

int main(int argc, char **argv)
{
	char why[1024] = "", device[VGPU_QEMU_DEVICE_ARG_MAX];
	struct vgpu_vm_config vm;
	struct settings s;
	enum verdict v = PASS;
	const char *stock;
	unsigned domid = 0;

	if (argc == 2 && strcmp(argv[1], "--help") == 0) {
		usage();
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("%s %s\n", IDENT, VGPU_VERSION);
		return 0;
	}
	openlog(IDENT, LOG_PID | LOG_PERROR, LOG_DAEMON);
	/* An ignored SIGCHLD (inherited across exec) makes the kernel reap
	 * xenstore-read itself and its status unreadable: wait the usual way
	 * here, and hand the stock wrapper the disposition we got. */
	struct sigaction dfl = { .sa_handler = SIG_DFL }, sigchld;
	sigemptyset(&dfl.sa_mask);
	sigaction(SIGCHLD, &dfl, &sigchld);

	bool conf_ok = load_settings(&s);
	stock = stock_wrapper(&s);
	if (is_self(stock)) {
		syslog(LOG_ERR, "the stock wrapper %s is this wrapper itself: refusing to loop",
		       stock);
		return 1;
	}

	bool domid_ok = argc >= 2 && vgpu_domid_parse(argv[1], &domid);
	if (!domid_ok) {
		char shown[40];

		vgpu_xs_printable(argc < 2 ? "" : argv[1], 20, shown, sizeof(shown));
		snprintf(why, sizeof(why), "malformed domid \"%s\"", shown);
	} else if (!conf_ok) {
		snprintf(why, sizeof(why), "the configuration file is unusable");
	} else {
		v = lookup(domid, &s, &vm, why, sizeof(why));
	}

	if (v == ADD_DEVICE && vgpu_qemu_stub_device_arg(&vm, s.mediator_dir, device, sizeof(device)) != VGPU_OK) {
		snprintf(why, sizeof(why), "VM %s has invalid settings in the registry",
			 vm.vm_uuid);
		v = TROUBLE;
	}
	switch (v) {
	case ADD_DEVICE:
		syslog(LOG_INFO, "domain %u, VM %s: adding -device %s", domid, vm.vm_uuid, device);
		return exec_stock(stock, argc, argv, device, &sigchld);
	case PASS:
		syslog(LOG_INFO, "domain %s: %s; starting it unchanged", domid_ok ? argv[1] : "?",
		       why);
		break;
	case TROUBLE:
		if (s.strict) {
			syslog(LOG_ERR, "domain %u: %s; strict = yes, so not starting it", domid,
			       why);
			return 1;
		}
		syslog(LOG_WARNING, "domain %u: %s; starting it without vgpu-stub", domid, why);
		break;
	}
	return exec_stock(stock, argc, argv, NULL, &sigchld);
}
