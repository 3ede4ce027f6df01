/* SPDX-License-Identifier: MIT */
/*
 * peer.c - a scripted socket peer for libvgpu's protocol-level tests (see
 * peer.h for what it may and may not be used for).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "backend.h"
#include "peer.h"

static void *run(void *arg)
{
	struct peer *p = arg;
	int fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0) {
		p->failure = "accept failed";
		return NULL;
	}
	p->script(p, fd);
	close(fd);
	return NULL;
}

void peer_start(struct peer *p, peer_script *script)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	memset(p, 0, sizeof(*p));
	strcpy(p->dir, "/tmp/vgpu-guest-XXXXXX");
	assert_non_null(mkdtemp(p->dir));
	snprintf(p->path, sizeof(p->path), "%s/vm.sock", p->dir);
	snprintf(p->uri, sizeof(p->uri), "unix:%s", p->path);
	strcpy(addr.sun_path, p->path);
	p->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(p->listen_fd >= 0);
	assert_int_equal(bind(p->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(p->listen_fd, 4), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p->ctl), 0);
	p->script = script;
	assert_int_equal(pthread_create(&p->thread, NULL, run, p), 0);
}

void peer_finish(struct peer *p)
{
	assert_int_equal(pthread_join(p->thread, NULL), 0);
	close(p->listen_fd);
	close(p->ctl[0]);
	close(p->ctl[1]);
	unlink(p->path);
	rmdir(p->dir);
	if (p->failure)
		fail_msg("peer: %s", p->failure);
}

void peer_go(struct peer *p)
{
	char b = 1;

	assert_int_equal(write(p->ctl[0], &b, 1), 1);
}

void peer_wait_go(struct peer *p)
{
	char b;

	while (read(p->ctl[1], &b, 1) < 0 && errno == EINTR)
		;
}

static int read_full(int fd, void *buf, size_t len)
{
	uint8_t *b = buf;

	while (len) {
		ssize_t n = read(fd, b, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

int peer_read_request(struct peer *p, int fd, struct peer_req *r)
{
	uint8_t hdr[VGPU_PROTO_HEADER_SIZE];

	memset(r, 0, sizeof(*r));
	if (read_full(fd, hdr, sizeof(hdr)) < 0)
		return -1;
	if (vgpu_proto_decode_header(hdr, &vgpu_proto_default_limits, &r->h) != VGPU_OK) {
		p->failure = p->failure ? p->failure : "the client sent a malformed header";
		return -1;
	}
	r->buf = malloc(sizeof(hdr) + r->h.payload_len);
	if (!r->buf) {
		p->failure = "out of memory";
		return -1;
	}
	memcpy(r->buf, hdr, sizeof(hdr));
	if (read_full(fd, r->buf + sizeof(hdr), r->h.payload_len) < 0 ||
	    vgpu_proto_parse_request(r->buf, &r->h, r->buf + sizeof(hdr),
				     &vgpu_proto_default_limits, &r->v) != VGPU_OK) {
		p->failure = p->failure ? p->failure : "the client sent an invalid request";
		free(r->buf);
		r->buf = NULL;
		return -1;
	}
	return 0;
}

void peer_free_request(struct peer_req *r)
{
	free(r->buf);
	r->buf = NULL;
}

void peer_send(int fd, const void *buf, size_t len)
{
	const uint8_t *b = buf;

	while (len) {
		ssize_t n = send(fd, b, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		b += n;
		len -= (size_t)n;
	}
}

void peer_respond(int fd, uint64_t id, int op, int32_t status, const float *out, uint64_t count)
{
	uint8_t prefix[VGPU_PROTO_RESPONSE_PREFIX];

	vgpu_proto_encode_response(id, op, status, 111, 222, count, prefix);
	peer_send(fd, prefix, sizeof(prefix));
	if (status == VGPU_OK && count)
		peer_send(fd, out, count * sizeof(float));
}

void peer_answer(int fd, const struct peer_req *r)
{
	const struct vgpu_request_view *v = &r->v;
	const struct vgpu_op_params *q = &v->params;
	float *out = calloc(v->out_count, sizeof(float));

	if (!out)
		return;
	vgpu_reference_run(v->op, q, v->in, out);
	peer_respond(fd, r->h.request_id, v->op, VGPU_OK, out, v->out_count);
	free(out);
}
