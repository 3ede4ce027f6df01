/* SPDX-License-Identifier: MIT */
/*
 * control_client.c - the client side of the mediator's control socket
 * (admin_shared.h): one command, one answer. Bounded (4 MiB, 3 s) so that
 * a stuck or foreign socket cannot hang the caller.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "admin_shared.h"

/* The metrics of 4096 VMs take about 28 MiB (6.8 KiB each). */
#define REPLY_MAX (64u << 20)
#define REPLY_FIRST (64u << 10)

int mediator_ask(const char *run_dir, const char *cmd, char **ret_text, char *err,
		 size_t err_size)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 3 };
	size_t len = 0;
	char *buf;
	int fd;

	if ((size_t)snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/control.sock", run_dir) >=
	    sizeof(addr.sun_path)) {
		snprintf(err, err_size, "run directory %s is too long", run_dir);
		return VGPU_INVALID_PARAM;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, err_size, "socket: %s", strerror(errno));
		return VGPU_IO_ERROR;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		int e = errno;

		snprintf(err, err_size, "the mediator is not running (%s: %s)", addr.sun_path,
			 strerror(e));
		close(fd);
		return e == ENOENT || e == ECONNREFUSED ? VGPU_NOT_FOUND : VGPU_IO_ERROR;
	}
	char line[32];
	int line_len = snprintf(line, sizeof(line), "%s\n", cmd);
	size_t cap = REPLY_FIRST;

	buf = malloc(cap + 1);
	if (!buf || line_len <= 0 || (size_t)line_len >= sizeof(line) ||
	    send(fd, line, (size_t)line_len, MSG_NOSIGNAL) != line_len) {
		snprintf(err, err_size, "cannot ask the mediator");
		free(buf);
		close(fd);
		return VGPU_IO_ERROR;
	}
	/* To the end of the stream: a timeout, an error or an answer too
	 * large is a failure, never half an answer. */
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *grown = cap < REPLY_MAX ? realloc(buf, 2 * cap + 1) : NULL;

			if (!grown) {
				snprintf(err, err_size, "the mediator's answer is over %u MiB",
					 REPLY_MAX >> 20);
				free(buf);
				close(fd);
				return VGPU_LIMIT;
			}
			buf = grown;
			cap *= 2;
		}
		n = recv(fd, buf + len, cap - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, err_size, "the mediator's answer broke off: %s", strerror(errno));
			free(buf);
			close(fd);
			return VGPU_IO_ERROR;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (len == 0) {
		snprintf(err, err_size, "the mediator closed the connection without an answer");
		free(buf);
		return VGPU_IO_ERROR;
	}
	buf[len] = '\0';
	*ret_text = buf;
	return VGPU_OK;
}

int mediator_stats(const char *run_dir, json_t **ret_doc, char *err, size_t err_size)
{
	json_error_t jerr;
	char *buf;
	int rc = mediator_ask(run_dir, "stats", &buf, err, err_size);

	if (rc != VGPU_OK)
		return rc;
	json_t *doc = json_loads(buf, 0, &jerr);
	free(buf);
	if (!doc || !json_is_object(doc)) {
		snprintf(err, err_size, "the mediator's answer is not a JSON object");
		json_decref(doc);
		return VGPU_PROTOCOL;
	}
	*ret_doc = doc;
	return VGPU_OK;
}
