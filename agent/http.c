/* SPDX-License-Identifier: MIT */
/*
 * http.c - the agent's HTTP side, with libmicrohttpd (Debian's
 * libmicrohttpd12: a well-kept HTTP/1.1 server library, no HTTP parsing of
 * our own). One listener on a Unix socket, whose file mode says who may
 * use it, and optionally one on TCP, where every request carries the
 * bearer token (Authorization: Bearer TOKEN, compared in constant time).
 *
 * Bounded: 32 connections per listener (8 per address on TCP), 10 s idle,
 * headers within libmicrohttpd's 32 KiB, a body of at most AGENT_BODY_MAX
 * (a larger one, announced or sent, is 413 and never kept).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "http.h"

#define CONNECTIONS_MAX 32
#define PER_ADDRESS_MAX 8
#define IDLE_S 10

struct request {
	char *body;
	size_t len;
	bool too_big, refused;
};

/* @a and @b the same, in time that depends only on their lengths. */
static bool same_secret(const char *a, size_t a_len, const char *b, size_t b_len)
{
	unsigned char diff = a_len != b_len;

	for (size_t i = 0; i < a_len; i++)
		diff |= (unsigned char)(a[i] ^ b[i % (b_len ? b_len : 1)]);
	return diff == 0 && b_len;
}

static enum MHD_Result send_reply(struct MHD_Connection *c, unsigned status, const char *type,
				  char *body)
{
	struct MHD_Response *resp;
	enum MHD_Result rc;

	resp = MHD_create_response_from_buffer(body ? strlen(body) : 0, body ? body : (char *)"",
					       body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	rc = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return rc;
}

static enum MHD_Result error(struct MHD_Connection *c, unsigned status, const char *msg)
{
	char *body = malloc(strlen(msg) + 32);

	if (body)
		sprintf(body, "{\n  \"error\": \"%s\"\n}\n", msg); /* msg: our own constants */
	return send_reply(c, status, "application/json", body);
}

/* Whether @c carries the listener's token (a Unix listener has none). */
static bool allowed(const struct http_listener *l, struct MHD_Connection *c)
{
	const char *auth;

	if (!l->token)
		return true;
	auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) /* the scheme in any case (RFC 7235) */
		return false;
	return same_secret(auth + 7, strlen(auth + 7), l->token, l->token_len);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **state)
{
	struct http_listener *l = cls;
	struct request *req = *state;
	struct agent_reply r;

	(void)version;
	if (!req) {
		const char *clen = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							       MHD_HTTP_HEADER_CONTENT_LENGTH);

		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		*state = req;
		if (!allowed(l, c)) {
			req->refused = true;
			return error(c, MHD_HTTP_UNAUTHORIZED, "a bearer token is needed");
		}
		if (clen && strtoull(clen, NULL, 10) > AGENT_BODY_MAX) {
			req->refused = true;
			return error(c, MHD_HTTP_CONTENT_TOO_LARGE, "the body is larger than 64 KiB");
		}
		return MHD_YES;
	}
	if (req->refused)
		return MHD_YES; /* answered already; the rest of the body is dropped */
	if (*upload_size) {
		if (!req->too_big && req->len + *upload_size <= AGENT_BODY_MAX) {
			char *grown = realloc(req->body, req->len + *upload_size);

			if (!grown)
				return MHD_NO;
			memcpy(grown + req->len, upload, *upload_size);
			req->body = grown;
			req->len += *upload_size;
		} else {
			req->too_big = true;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (req->too_big)
		return error(c, MHD_HTTP_CONTENT_TOO_LARGE, "the body is larger than 64 KiB");
	agent_handle(l->agent, method, url, req->body, req->len, &r);
	return send_reply(c, r.status, r.type, r.body);
}

static void on_done(void *cls, struct MHD_Connection *c, void **state,
		    enum MHD_RequestTerminationCode why)
{
	struct request *req = *state;

	(void)cls;
	(void)c;
	(void)why;
	if (req) {
		free(req->body);
		free(req);
		*state = NULL;
	}
}

int http_start(struct http_listener *l)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

	if (l->addr && l->addr->sa_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (l->fd >= 0)
		l->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, l,
					     MHD_OPTION_LISTEN_SOCKET, l->fd,
					     MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTIONS_MAX,
					     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_S,
					     MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
					     MHD_OPTION_END);
	else
		l->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, l,
					     MHD_OPTION_SOCK_ADDR, l->addr,
					     MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTIONS_MAX,
					     MHD_OPTION_PER_IP_CONNECTION_LIMIT,
					     (unsigned)PER_ADDRESS_MAX,
					     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_S,
					     MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
					     MHD_OPTION_END);
	return l->daemon ? 0 : -1;
}

void http_stop(struct http_listener *l)
{
	if (l->daemon)
		MHD_stop_daemon(l->daemon);
	l->daemon = NULL;
}
