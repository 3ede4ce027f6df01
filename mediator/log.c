/* SPDX-License-Identifier: MIT */
/*
 * log.c - see log.h. Must never block the event loop for long (stderr and
 * syslog writes are short) or let a guest write unbounded log lines.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static bool use_syslog;
static int log_max = LOG_INFO;

void vgpu_log_open(bool to_syslog, int max_level)
{
	use_syslog = to_syslog;
	log_max = max_level;
	if (to_syslog)
		openlog("vgpu-mediator", LOG_PID, LOG_DAEMON);
}

static void vlog(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void vlog(int level, const char *fmt, va_list ap)
{
	static const char *const names[] = { "emerg", "alert", "crit", "error",
					     "warning", "notice", "info", "debug" };

	if (level > log_max)
		return;
	if (use_syslog) {
		vsyslog(level, fmt, ap);
		return;
	}
	char line[1024];
	vsnprintf(line, sizeof(line), fmt, ap);
	fprintf(stderr, "vgpu-mediator: %s: %s\n", names[level & 7], line);
}

void vgpu_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

void vgpu_log_guest(struct vgpu_ratelimit *rl, int level, const char *fmt, ...)
{
	uint64_t now = vgpu_now_ns();
	va_list ap;

	if (now - rl->window_start_ns >= VGPU_RATELIMIT_WINDOW_NS) {
		if (rl->suppressed)
			vgpu_log(LOG_WARNING, "%u guest-triggered messages suppressed",
				 rl->suppressed);
		rl->window_start_ns = now;
		rl->in_window = 0;
		rl->suppressed = 0;
	}
	if (rl->in_window >= VGPU_RATELIMIT_BURST) {
		rl->suppressed++;
		return;
	}
	rl->in_window++;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

int vgpu_log_level_parse(const char *name)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = { { "error", LOG_ERR }, { "warning", LOG_WARNING }, { "notice", LOG_NOTICE },
		       { "info", LOG_INFO }, { "debug", LOG_DEBUG } };

	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcmp(levels[i].name, name) == 0)
			return levels[i].level;
	return -1;
}
