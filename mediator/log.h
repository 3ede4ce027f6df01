/* SPDX-License-Identifier: MIT */
/*
 * log.h - the mediator's logging: to syslog or stderr, with levels, and a
 * rate limit for messages a guest can trigger (a hostile guest must not be
 * able to flood the host's logs).
 */
#ifndef VGPU_MEDIATOR_LOG_H
#define VGPU_MEDIATOR_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

#include "vgpu_clock.h"

/* Levels are syslog's: LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG. */
void vgpu_log_open(bool to_syslog, int max_level);
void vgpu_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A token bucket per source of guest-triggered messages. */
struct vgpu_ratelimit {
	uint64_t window_start_ns;
	uint32_t in_window;
	uint32_t suppressed;
};
#define VGPU_RATELIMIT_BURST 10          /* messages per window */
#define VGPU_RATELIMIT_WINDOW_NS 10000000000ull

/* Log like vgpu_log unless @rl's budget is spent; says how many were dropped
 * when the next window opens. Not thread-safe per @rl. */
void vgpu_log_guest(struct vgpu_ratelimit *rl, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A level from "error", "warning", "notice", "info", "debug"; -1 if none. */
int vgpu_log_level_parse(const char *name);


#endif
