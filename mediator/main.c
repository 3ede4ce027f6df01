/* SPDX-License-Identifier: MIT */
/*
 * main.c - vgpu-mediator: settings, start-up, the loop, and shutdown.
 *
 * Settings come from embedded defaults, then the config file
 * (/etc/vgpu/mediator.conf or --config), then the command line. SIGTERM and
 * SIGINT stop taking requests, finish everything accepted, answer it, and
 * exit; SIGHUP re-reads the registry at once. A lock file in the run
 * directory keeps a second mediator off the same sockets.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "conf.h"
#include "mediator.h"

#define DEFAULT_CONF "/etc/vgpu/mediator.conf"
#define SHUTDOWN_GRACE_NS (60ull * 1000000000ull)

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: vgpu-mediator [--config FILE] [--db PATH] [--spool-dir DIR] [--run-dir DIR]\n"
		"                     [--backend auto|cuda|cpu] [--log stderr|syslog] [--log-level L]\n"
		"                     [--set KEY=VALUE]...\n\n"
		"Queues the GPU work of every registered VM by priority and runs it.\n\n"
		"Settings (config file %s, `key = value`; --set KEY=VALUE overrides):\n",
		DEFAULT_CONF);
	for (const struct vgpu_conf_option *o = vgpu_mediator_options; o->name; o++)
		fprintf(out, "  %-18s %s (default %s)\n", o->name, o->help, o->default_value);
	fprintf(out, "\nThe registry path follows $VGPU_DB when --db and the file do not set it.\n"
		     "Signals: TERM/INT finish accepted work and exit; HUP re-reads the registry.\n");
}

/* Parse the command line into @m->set; 0 to run, or an exit code + 1
 * (exit 0 after --help/--version, 2 for bad arguments or settings). */
static int parse_args(struct mediator *m, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' }, { "db", required_argument, NULL, 'd' },
		{ "spool-dir", required_argument, NULL, 's' }, { "run-dir", required_argument, NULL, 'r' },
		{ "backend", required_argument, NULL, 'b' }, { "log", required_argument, NULL, 'l' },
		{ "log-level", required_argument, NULL, 'L' }, { "set", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' }, { "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf = getenv("VGPU_MEDIATOR_CONF"), *env_db = getenv(VGPU_DB_ENV);
	bool conf_given = false;
	char err[512];
	int c;

	vgpu_conf_defaults(vgpu_mediator_options, &m->set);
	if (env_db && *env_db)
		snprintf(m->set.db, sizeof(m->set.db), "%s", env_db);
	/* First pass: only --config, so that the file comes before the flags. */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'c') {
			conf = optarg;
			conf_given = true;
		}
	}
	if (!conf || !*conf)
		conf = DEFAULT_CONF;
	int rc = vgpu_conf_load(conf, vgpu_mediator_options, &m->set, err, sizeof(err));
	if (rc != VGPU_OK && !(rc == VGPU_NOT_FOUND && !conf_given)) {
		fprintf(stderr, "vgpu-mediator: %s\n", err);
		return 3;
	}
	optind = 1;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		const char *key = NULL;
		char kv[4200];

		switch (c) {
		case 'c':
			continue;
		case 'd': key = "db"; break;
		case 's': key = "spool_dir"; break;
		case 'r': key = "run_dir"; break;
		case 'b': key = "backend"; break;
		case 'l': key = "log"; break;
		case 'L': key = "log_level"; break;
		case 'S': {
			snprintf(kv, sizeof(kv), "%s", optarg);
			char *eq = strchr(kv, '=');
			if (!eq) {
				fprintf(stderr, "vgpu-mediator: --set needs KEY=VALUE\n");
				return 3;
			}
			*eq = '\0';
			if (vgpu_conf_set(vgpu_mediator_options, &m->set, kv, eq + 1, err, sizeof(err)) != VGPU_OK) {
				fprintf(stderr, "vgpu-mediator: --set: %s\n", err);
				return 3;
			}
			continue;
		}
		case 'h':
			usage(stdout);
			return 1;
		case 'V':
			printf("vgpu-mediator %s\n", VGPU_VERSION);
			return 1;
		default:
			usage(stderr);
			return 3;
		}
		if (vgpu_conf_set(vgpu_mediator_options, &m->set, key, optarg, err, sizeof(err)) != VGPU_OK) {
			fprintf(stderr, "vgpu-mediator: %s\n", err);
			return 3;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vgpu-mediator: unexpected argument '%s'\n", argv[optind]);
		return 3;
	}
	if (strcmp(m->set.backend, "auto") && strcmp(m->set.backend, "cpu") &&
	    strcmp(m->set.backend, "cuda")) {
		fprintf(stderr, "vgpu-mediator: backend must be auto, cuda or cpu\n");
		return 3;
	}
	if (strcmp(m->set.log, "stderr") && strcmp(m->set.log, "syslog")) {
		fprintf(stderr, "vgpu-mediator: log must be stderr or syslog\n");
		return 3;
	}
	if (strcmp(m->set.device_dma, "auto") && strcmp(m->set.device_dma, "staged")) {
		fprintf(stderr, "vgpu-mediator: device_dma must be auto or staged\n");
		return 3;
	}
	if (vgpu_log_level_parse(m->set.log_level) < 0) {
		fprintf(stderr, "vgpu-mediator: log_level must be error, warning, notice, info or debug\n");
		return 3;
	}
	return 0;
}

/* File descriptors the mediator itself may need, beside its VMs': stdio,
 * epoll, eventfds, timers, the signalfd, inotify, the spool's directories
 * and lock, the registry, the workers' files, control clients, and the
 * CUDA driver's own. */
#define FD_BASE 256
/* Per VM at rest: its listening socket and its spool's req/, resp/ and
 * journal directories, and its CUDA worker's control socket and pidfd
 * (cuda_host.c; a worker let go for new settings keeps its two until it
 * exits: counted as one more worker); per connection 1; per window being
 * handed over 7 (memfd, doorbell, our end of the notify socket pair, the
 * ring's private eventfd and the client's three descriptors), then 4, and
 * 1 (the memfd) while it is kept for the VM's next client (a device
 * window: 5). */
#define FD_PER_VM 8
#define FD_PER_WINDOW 7

/* The file descriptors the settings can make the mediator hold, and
 * RLIMIT_NOFILE raised to them (as far as the hard limit, or root, lets). */
static void raise_fd_limit(struct mediator *m)
{
	/* Kept windows need no connection: a VM may hold vm_windows. */
	rlim_t need = (rlim_t)(FD_BASE + m->set.max_vms * (FD_PER_VM + m->set.max_conns_per_vm +
							   FD_PER_WINDOW * m->set.vm_windows));
	struct rlimit rl;

	m->fd_need = need;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < need) {
		struct rlimit want = { .rlim_cur = need, .rlim_max = rl.rlim_max < need ? need : rl.rlim_max };

		if (setrlimit(RLIMIT_NOFILE, &want) != 0) {
			/* Not root (or a limit above nr_open): as far as allowed. */
			want.rlim_cur = want.rlim_max = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &want);
		}
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	m->fd_limit = rl.rlim_cur;
	if (rl.rlim_cur < need)
		vgpu_log(LOG_WARNING, "file descriptors: the settings need up to %llu, the limit is %llu "
			 "(raise LimitNOFILE, or lower max_vms, max_conns_per_vm or vm_windows); when "
			 "they run out, new connections wait", (unsigned long long)need,
			 (unsigned long long)rl.rlim_cur);
}

static int lock_run_dir(const char *run_dir)
{
	char path[4200];
	int fd;

	if (mkdir(run_dir, 0755) != 0 && errno != EEXIST) {
		vgpu_log(LOG_ERR, "cannot create %s: %s", run_dir, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/mediator.lock", run_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
		vgpu_log(LOG_ERR, "%s: %s", path,
			 fd >= 0 && errno == EWOULDBLOCK ? "another vgpu-mediator is running"
							 : strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

struct runtime {
	struct mediator *m;
	int sig_fd, timer_fd;
	struct vgpu_loop_watch sig_watch, timer_watch;
	bool reload;
};

static void signal_event(void *ctx, uint32_t events)
{
	struct runtime *rt = ctx;
	struct signalfd_siginfo si;

	(void)events;
	while (read(rt->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			vgpu_log(LOG_NOTICE, "SIGHUP: re-reading the registry");
			rt->reload = true;
		} else if (!rt->m->stopping) {
			vgpu_log(LOG_NOTICE, "signal %u: finishing accepted work, then exiting",
				 si.ssi_signo);
			rt->m->stopping = true;
		}
	}
}

static void timer_event(void *ctx, uint32_t events)
{
	struct runtime *rt = ctx;
	uint64_t ticks;

	(void)events;
	if (read(rt->timer_fd, &ticks, sizeof(ticks)) < 0) {
		/* EAGAIN: nothing to do */
	}
	rt->reload = true;
}

static int setup(struct mediator *m, struct runtime *rt)
{
	sigset_t mask;

	/* Block the signals before any thread exists, so that every thread
	 * inherits the mask and only the signalfd sees them. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit(m);
	if (vgpu_mediator_init(m) != VGPU_OK)
		return -1;

	rt->sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	rt->sig_watch = (struct vgpu_loop_watch){ .fd = rt->sig_fd, .fn = signal_event, .ctx = rt };
	rt->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	rt->timer_watch = (struct vgpu_loop_watch){ .fd = rt->timer_fd, .fn = timer_event, .ctx = rt };
	struct itimerspec its = {
		.it_interval = { m->set.registry_poll_ms / 1000, (m->set.registry_poll_ms % 1000) * 1000000 },
		.it_value = { m->set.registry_poll_ms / 1000, (m->set.registry_poll_ms % 1000) * 1000000 },
	};
	if (rt->sig_fd < 0 || rt->timer_fd < 0 || timerfd_settime(rt->timer_fd, 0, &its, NULL) != 0 ||
	    vgpu_loop_add(m->loop, &rt->sig_watch, EPOLLIN) != VGPU_OK ||
	    vgpu_loop_add(m->loop, &rt->timer_watch, EPOLLIN) != VGPU_OK)
		return -1;

	if (vgpu_mediator_add_transport(m, &vgpu_transport_socket) != VGPU_OK ||
	    vgpu_mediator_add_transport(m, &vgpu_transport_spool) != VGPU_OK ||
	    vgpu_mediator_add_transport(m, &vgpu_transport_shm) != VGPU_OK ||
	    vgpu_mediator_add_transport(m, &vgpu_transport_device) != VGPU_OK)
		return -1;
	/* The control socket last: once it exists, every registered VM's
	 * socket and spool directory do too (scripts and tests wait for it). */
	if (vgpu_mediator_start(m) != VGPU_OK || vgpu_control_start(m) != VGPU_OK)
		return -1;
	return 0;
}

/* Release what setup() made, also when it stopped half-way (dispatchers
 * already started are stopped and joined by the caller before this). */
static void teardown(struct mediator *m, struct runtime *rt)
{
	vgpu_control_stop(m);
	vgpu_mediator_fini(m);
	if (rt->sig_fd >= 0)
		close(rt->sig_fd);
	if (rt->timer_fd >= 0)
		close(rt->timer_fd);
}

int main(int argc, char **argv)
{
	struct mediator m = { .done_efd = -1, .cuda_tick_fd = -1 };
	struct runtime rt = { .m = &m, .sig_fd = -1, .timer_fd = -1 };
	int lock_fd, rc = parse_args(&m, argc, argv);

	if (rc)
		return rc - 1;
	vgpu_log_open(strcmp(m.set.log, "syslog") == 0, vgpu_log_level_parse(m.set.log_level));
	lock_fd = lock_run_dir(m.set.run_dir);
	if (lock_fd < 0)
		return 1;
	if (setup(&m, &rt) != 0) {
		vgpu_log(LOG_ERR, "start-up failed");
		vgpu_queue_close(m.queue);
		vgpu_dispatcher_join(&m);
		teardown(&m, &rt);
		close(lock_fd);
		return 1;
	}
	vgpu_log(LOG_NOTICE, "ready: registry %s, sockets in %s", m.set.db, m.set.run_dir);

	uint64_t stop_deadline = 0, poll_until = 0;
	for (;;) {
		/* Right after activity, look again without sleeping for poll_us:
		 * the next request or completion then costs no wake-up. */
		vgpu_mediator_turn(&m, &poll_until);
		if (rt.reload && !m.stopping) {
			rt.reload = false;
			vgpu_vms_reload(&m);
		}
		if (m.stopping && !stop_deadline) {
			stop_deadline = vgpu_now_ns() + SHUTDOWN_GRACE_NS;
			vgpu_mediator_stop_accepting(&m);
		}
		if (m.stopping && vgpu_mediator_drained(&m))
			break;
		if (stop_deadline && vgpu_now_ns() > stop_deadline) {
			vgpu_log(LOG_ERR, "shutdown: clients did not take their answers in time");
			break;
		}
	}
	vgpu_dispatcher_join(&m);
	teardown(&m, &rt);
	close(lock_fd);
	vgpu_log(LOG_NOTICE, "stopped");
	return 0;
}
