/* SPDX-License-Identifier: MIT */
/*
 * agent.h - vgpu-agent, the host agent: an HTTP/JSON API over the registry
 * (libvgpu-config, as vgpu-admin uses it) and the mediator's control socket
 * (its statistics and Prometheus metrics), for CloudStack and monitoring.
 *
 * api.c is the API itself, a pure function of a request (no HTTP in it,
 * so that tests and the fuzz harness call it directly); http.c serves it
 * with libmicrohttpd on a Unix socket (file mode) and optionally TCP (a
 * bearer token); main.c is the command line. docs/api.md and
 * docs/openapi.yaml describe the routes.
 */
#ifndef VGPU_AGENT_H
#define VGPU_AGENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "vgpu_config.h"

#define AGENT_BODY_MAX (64u << 10) /* a request's body: larger is 413 */

struct agent {
	const char *db_path;   /* the registry */
	const char *run_dir;   /* the mediator's (its control socket) */
	vgpu_db *db;           /* opened at the first request that needs it */
	pthread_mutex_t lock;  /* one request at a time (both listeners) */
};

struct agent_reply {
	unsigned status;       /* HTTP status */
	char *body;            /* malloc'd, NUL-terminated */
	const char *type;      /* its Content-Type */
};

/* @method @path (no query) with @body (@len bytes, not NUL-terminated;
 * may be NULL when @len is 0) into *@r. Every input is checked before it
 * is used; errors are JSON {"error": message}. Thread-safe. */
void agent_handle(struct agent *a, const char *method, const char *path, const char *body,
		  size_t len, struct agent_reply *r);
void agent_close(struct agent *a);

#endif
