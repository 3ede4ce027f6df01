/* SPDX-License-Identifier: MIT */
/*
 * http.h - the agent's listeners (http.c): libmicrohttpd serving
 * agent_handle() on a Unix socket or on TCP with a bearer token.
 */
#ifndef VGPU_AGENT_HTTP_H
#define VGPU_AGENT_HTTP_H

#include <sys/socket.h>

#include "agent.h"

struct http_listener {
	struct agent *agent;
	int fd;                       /* a listening Unix socket, or -1 ... */
	const struct sockaddr *addr;  /* ... a TCP address to listen on */
	const char *token;            /* NULL: no token (the Unix socket) */
	size_t token_len;
	struct MHD_Daemon *daemon;
};

/* Serve @l on a thread of its own: 0, or -1 (libmicrohttpd said why). */
int http_start(struct http_listener *l);
void http_stop(struct http_listener *l);

#endif
