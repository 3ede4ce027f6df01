/* SPDX-License-Identifier: MIT */
/*
 * peer.h - the other end of a client's socket, scripted by a test.
 *
 * It exists to put libvgpu in front of exact bytes (a response for an
 * unknown id, a truncated one, a wrong size) and to check how the client
 * frames its requests. It is not a mediator: nothing here may back a claim
 * that the client works end to end (the mediator's own tests do that).
 *
 * The script runs in a thread of its own. It never calls cmocka (not
 * thread-safe): it records the first problem in peer->failure, which
 * peer_finish() asserts on in the test's thread.
 */
#ifndef VGPU_TEST_PEER_H
#define VGPU_TEST_PEER_H

#include <pthread.h>
#include <stdint.h>

#include "vgpu_protocol.h"

struct peer;
typedef void peer_script(struct peer *p, int fd);

struct peer {
	char dir[64];          /* temporary directory holding the socket */
	char path[128];        /* the socket */
	char uri[140];         /* "unix:" path */
	int listen_fd;
	int ctl[2];            /* test -> script go-ahead bytes */
	peer_script *script;
	pthread_t thread;
	const char *failure;   /* the first thing the client got wrong, or NULL */
};

/* A request read by the script, checked by vgpu_proto_parse_request(). */
struct peer_req {
	struct vgpu_msg_header h;
	struct vgpu_request_view v;
	uint8_t *buf;          /* the whole message (v points into it) */
};

void peer_start(struct peer *p, peer_script *script);
/* Join the script and clean up; fails the test if the script recorded a failure. */
void peer_finish(struct peer *p);
void peer_go(struct peer *p);

/* In a script: */
void peer_wait_go(struct peer *p);
/* 0 with a valid request; -1 at end of stream or for an invalid request
 * (recorded as a failure). */
int peer_read_request(struct peer *p, int fd, struct peer_req *r);
void peer_free_request(struct peer_req *r);
/* Write all of @buf, or give up quietly when the client has gone. */
void peer_send(int fd, const void *buf, size_t len);
/* A well-formed response: status, timings 111 and 222 ns, @count floats. */
void peer_respond(int fd, uint64_t id, int op, int32_t status, const float *out, uint64_t count);
/* The right answer to @r (vector_add, saxpy, reduce_sum or sgemm), sent. */
void peer_answer(int fd, const struct peer_req *r);

#endif
