/* SPDX-License-Identifier: MIT */
/*
 * cmd_top.c - vgpu-admin top: who uses the GPU now. Asks the mediator for
 * its statistics (mediator.c) each second and shows, over that second, each
 * pool's and each VM's share of the GPU time, each VM's requests and CUDA
 * launches per second, its p99 queue wait (since the mediator started) and
 * the device memory it holds against its quota; sorted by share (or
 * another column), refreshed in place with plain ANSI sequences.
 *
 * On a terminal: full screen, keys q (quit) and s, r, w, m, n (sort by
 * share, rate, wait, memory, name). Not on a terminal: one frame after
 * another, without escape sequences (top -b). --once: one frame, over one
 * second, then exit (scripts).
 *
 * Everything shown comes from the mediator's JSON; names are sanitized
 * before they reach the terminal.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "vgpu_clock.h"

#define INTERVAL_MS 1000

enum sort_key { SORT_SHARE, SORT_RATE, SORT_WAIT, SORT_MEM, SORT_NAME };

static const char *const sort_names[] = { "share", "rate", "wait", "mem", "name" };

int top_sort_parse(const char *s, int *ret)
{
	for (int i = 0; i < (int)(sizeof(sort_names) / sizeof(sort_names[0])); i++)
		if (strcmp(s, sort_names[i]) == 0) {
			*ret = i;
			return VGPU_OK;
		}
	return VGPU_INVALID_PARAM;
}

/* One VM's line. */
struct row {
	char name[64], pool[8];
	const char *prio;
	long long id;
	double share, rate, launches, wait_ms, mem_mib, quota_mib;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double num(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : 0;
}

/* The entry of array @arr whose @key equals @o's (VMs by UUID, pools by id). */
static json_t *same(json_t *arr, json_t *o, const char *key)
{
	const char *want = json_string_value(json_object_get(o, key));
	json_t *p;
	size_t i;

	json_array_foreach(arr, i, p) {
		const char *s = json_string_value(json_object_get(p, key));

		if (want && s && strcmp(s, want) == 0)
			return p;
	}
	return NULL;
}

static int by_key;

static int row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	double d = 0;

	switch (by_key) {
	case SORT_SHARE:
		d = y->share - x->share;
		break;
	case SORT_RATE:
		d = (y->rate + y->launches) - (x->rate + x->launches);
		break;
	case SORT_WAIT:
		d = y->wait_ms - x->wait_ms;
		break;
	case SORT_MEM:
		d = y->mem_mib - x->mem_mib;
		break;
	default:
		break;
	}
	if (d != 0)
		return d > 0 ? 1 : -1;
	return strcmp(x->name, y->name);
}

/* @now's VMs, with what changed since @was over @dt_s seconds, shares of
 * @capacity_ms of GPU time. */
static size_t rows_of(json_t *was, json_t *now, double dt_s, double capacity_ms, struct row **ret)
{
	json_t *vms = json_object_get(now, "vms"), *o;
	size_t n = json_array_size(vms), i;
	struct row *rows = calloc(n ? n : 1, sizeof(*rows));

	if (!rows) {
		*ret = NULL;
		return 0;
	}
	json_array_foreach(vms, i, o) {
		json_t *p = same(json_object_get(was, "vms"), o, "vm_uuid");
		json_t *sc = json_object_get(o, "sched"), *cu = json_object_get(o, "cuda");
		json_t *psc = json_object_get(p, "sched"), *pcu = json_object_get(p, "cuda");
		struct row *r = &rows[i];
		const char *name = json_string_value(json_object_get(o, "vm_name"));
		double quota = num(sc, "mem_quota") ? num(sc, "mem_quota") : num(cu, "mem_quota");

		sanitize(name && *name ? name : json_string_value(json_object_get(o, "vm_uuid")) ?: "?",
			 r->name, sizeof(r->name));
		sanitize(json_string_value(json_object_get(o, "pool_id")) ?: "?", r->pool,
			 sizeof(r->pool));
		r->id = (long long)num(o, "vm_id");
		r->prio = vgpu_priority_name((int)num(o, "priority"));
		r->share = 100 * (num(sc, "gpu_ms") - num(psc, "gpu_ms")) / capacity_ms;
		r->rate = (num(o, "completed") - num(p, "completed")) / dt_s;
		r->launches = (num(cu, "launches") - num(pcu, "launches")) / dt_s;
		r->wait_ms = num(json_object_get(o, "queue_wait_us"), "p99") / 1000;
		r->mem_mib = (num(sc, "mem_held") + num(cu, "mem_held")) / 1048576;
		r->quota_mib = quota / 1048576;
		if (!p) /* new since the last look: nothing to compare with */
			r->share = r->rate = r->launches = 0;
		/* A mediator restarted meanwhile counts from 0 again. */
		r->share = r->share < 0 ? 0 : r->share;
		r->rate = r->rate < 0 ? 0 : r->rate;
		r->launches = r->launches < 0 ? 0 : r->launches;
	}
	*ret = rows;
	return n;
}

/* The GPU time the shares of @what (VMs or pools, told apart by @key) are
 * of: the GPUs' time over @dt_s, or what they were charged if more. Work
 * is charged its estimate when it starts and set right when it ends, so
 * over a second what was charged can pass the time there was: the shares
 * then add up to 100%. */
static double capacity(json_t *was, json_t *now, const char *what, const char *key, double dt_s)
{
	json_t *gpus = json_object_get(now, "gpus"), *o;
	double wall = dt_s * 1000 * (json_array_size(gpus) ? (double)json_array_size(gpus) : 1);
	double charged = 0;
	size_t i;

	json_array_foreach(json_object_get(now, what), i, o) {
		json_t *p = same(json_object_get(was, what), o, key);
		json_t *sc = strcmp(what, "vms") == 0 ? json_object_get(o, "sched") : o;
		json_t *psc = strcmp(what, "vms") == 0 ? json_object_get(p, "sched") : p;

		if (p && num(sc, "gpu_ms") > num(psc, "gpu_ms"))
			charged += num(sc, "gpu_ms") - num(psc, "gpu_ms");
	}
	return charged > wall ? charged : wall;
}

/* One frame of @now against @was, @dt_s apart, at most @height lines (0:
 * no limit), sorted by @sort. */
static void frame(json_t *was, json_t *now, double dt_s, int sort, int height, FILE *out)
{
	json_t *med = json_object_get(now, "mediator"), *o;
	json_t *gpus = json_object_get(now, "gpus");
	double cap_ms = capacity(was, now, "vms", "vm_uuid", dt_s);
	double pool_cap_ms = capacity(was, now, "pools", "pool_id", dt_s);
	struct row *rows;
	size_t n = rows_of(was, now, dt_s, cap_ms, &rows), i;
	int lines = 0;
	char stamp[32];
	time_t t = time(NULL);
	struct tm tm;

	strftime(stamp, sizeof(stamp), "%H:%M:%S", localtime_r(&t, &tm));
	fprintf(out, "vgpu-admin top - %s  mediator %s, backend %s, up %lld s, %lld queued, "
		     "%lld in flight\n",
		stamp, json_string_value(json_object_get(med, "version")) ?: "?",
		json_string_value(json_object_get(med, "backend")) ?: "?",
		(long long)num(med, "uptime_s"), (long long)num(med, "queued"),
		(long long)num(med, "inflight"));
	json_array_foreach(gpus, i, o) {
		json_t *p = json_array_get(json_object_get(was, "gpus"), i);

		fprintf(out, "GPU %lld: busy %5.1f%%, %lld in flight\n", (long long)num(o, "gpu"),
			100 * (num(o, "busy_ms") - num(p, "busy_ms")) / (dt_s * 1000),
			(long long)num(o, "inflight"));
		lines++;
	}
	fprintf(out, "\n%-6s %-12s %6s %5s %4s %7s\n", "POOL", "GPUS", "WEIGHT", "CAP", "VMS",
		"SHARE");
	lines += 3;
	json_array_foreach(json_object_get(now, "pools"), i, o) {
		json_t *p = same(json_object_get(was, "pools"), o, "pool_id");
		char id[8], gpu_list[64];
		int vms = 0;

		sanitize(json_string_value(json_object_get(o, "pool_id")) ?: "?", id, sizeof(id));
		sanitize(json_string_value(json_object_get(o, "gpus")) ?: "?", gpu_list,
			 sizeof(gpu_list));
		for (size_t k = 0; k < n; k++)
			vms += strcmp(rows[k].pool, id) == 0;
		fprintf(out, "%-6s %-12.12s %6lld %4lld%% %4d %6.1f%%\n", id, gpu_list,
			(long long)num(o, "weight"), (long long)num(o, "cap_percent"), vms,
			p ? 100 * (num(o, "gpu_ms") - num(p, "gpu_ms")) / pool_cap_ms : 0.0);
		lines++;
	}
	by_key = sort;
	if (n)
		qsort(rows, n, sizeof(*rows), row_cmp);
	fprintf(out, "\n%-24s %6s %-4s %-6s %7s %8s %9s %11s %15s\n", "VM", "ID", "POOL", "PRIO",
		"SHARE", "REQ/S", "LAUNCH/S", "P99_WAIT_MS", "MEM_MIB");
	lines += 3;
	for (i = 0; i < n; i++) {
		char mem[48];

		if (height && lines >= height - 1) {
			fprintf(out, "(%zu more; sorted by %s)\n", n - i, sort_names[sort]);
			break;
		}
		snprintf(mem, sizeof(mem), rows[i].quota_mib > 0 ? "%.1f/%.0f" : "%.1f/-",
			 rows[i].mem_mib, rows[i].quota_mib);
		fprintf(out, "%-24.24s %6lld %-4s %-6s %6.1f%% %8.1f %9.1f %11.2f %15s\n",
			rows[i].name, rows[i].id, rows[i].pool, rows[i].prio, rows[i].share,
			rows[i].rate, rows[i].launches, rows[i].wait_ms, mem);
		lines++;
	}
	free(rows);
}

/* Wait @ms for a key (on a terminal); the key, 0 for none, -1 to stop. */
static int wait_key(bool keys, int ms)
{
	struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
	uint64_t end = vgpu_now_ns() + (uint64_t)ms * 1000000u;

	for (;;) {
		uint64_t now = vgpu_now_ns();
		int left = now >= end ? 0 : (int)((end - now) / 1000000u);
		int rc;
		char c;

		if (stop)
			return -1;
		if (!keys) {
			if (left == 0)
				return 0;
			(void)poll(NULL, 0, left); /* a signal ends it early */
			continue;
		}
		rc = poll(&pfd, 1, left);
		if (rc == 0)
			return 0;
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0 || read(STDIN_FILENO, &c, 1) != 1)
			return -1; /* the terminal is gone */
		if (c == 'q' || c == 'Q' || c == 3 /* ^C, with ISIG off */)
			return -1;
		return (unsigned char)c;
	}
}

static int height_of(void)
{
	struct winsize ws;

	return ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 4 ? ws.ws_row : 0;
}

int cmd_top(struct cli *cli)
{
	bool screen = !cli->once && isatty(STDOUT_FILENO);
	bool keys = screen && isatty(STDIN_FILENO);
	struct sigaction sa = { .sa_handler = on_signal };
	struct termios saved, raw;
	json_t *was = NULL, *now = NULL;
	uint64_t was_ns = 0;
	int sort = cli->sort, rc = EXIT_OK;
	char err[512];

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (mediator_stats(cli->run_dir, &was, err, sizeof(err)) != VGPU_OK) {
		print_error("%s", err);
		return EXIT_ERROR;
	}
	was_ns = vgpu_now_ns();
	if (keys && tcgetattr(STDIN_FILENO, &saved) == 0) {
		raw = saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	} else {
		keys = false;
	}
	if (screen)
		fputs("\033[?25l", stdout); /* no cursor */
	for (;;) {
		int key = wait_key(keys, INTERVAL_MS);
		uint64_t now_ns;

		if (key < 0)
			break;
		if (key) {
			for (int i = 0; i < (int)(sizeof(sort_names) / sizeof(sort_names[0])); i++)
				if (key == sort_names[i][0])
					sort = i;
			continue; /* the new order at the next refresh */
		}
		if (mediator_stats(cli->run_dir, &now, err, sizeof(err)) != VGPU_OK) {
			if (screen)
				fputs("\033[H\033[2J", stdout);
			print_error("%s", err);
			rc = EXIT_ERROR;
			break;
		}
		now_ns = vgpu_now_ns();
		if (screen)
			fputs("\033[H\033[2J", stdout);
		else if (!cli->once)
			putchar('\n');
		frame(was, now, (double)(now_ns - was_ns) / 1e9, sort, screen ? height_of() : 0,
		      stdout);
		fflush(stdout);
		json_decref(was);
		was = now;
		was_ns = now_ns;
		if (cli->once)
			break;
	}
	if (screen)
		fputs("\033[?25h\n", stdout);
	if (keys)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	json_decref(was);
	return rc;
}
