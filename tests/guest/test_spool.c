/* SPDX-License-Identifier: MIT */
/*
 * test_spool.c - libvgpu's spool transport at the file level: the exact
 * request files a submit publishes, and what the client does with each
 * response file it can find (good, oversized, garbage, symlinked, torn,
 * another request's, none at all).
 *
 * The test plays the mediator only in the narrow sense of reading the
 * published request files from req/ and placing response files in resp/
 * (by rename, as the mediator does). These tests make no claim about the
 * client against the real mediator: the end-to-end tests do that.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend.h"
#include "client_util.h"
#include "libvgpu.h"
#include "transport.h"

extern char **environ;

#define NAME_LEN 256 /* a directory entry's name, and its end */
#define PATH_LEN 600

/* --- A spool directory and the files in it ------------------------------- */

struct spool {
	char dir[64], req[80], resp[80], uri[80];
};

static void spool_make(struct spool *s)
{
	strcpy(s->dir, "/tmp/vgpu-spool-XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	snprintf(s->req, sizeof(s->req), "%s/req", s->dir);
	snprintf(s->resp, sizeof(s->resp), "%s/resp", s->dir);
	snprintf(s->uri, sizeof(s->uri), "spool:%s", s->dir);
	assert_int_equal(mkdir(s->req, 0700), 0);
	assert_int_equal(mkdir(s->resp, 0700), 0);
}

/* Names in @dir other than "." and "..", sorted; returns how many. */
static int list(const char *dir, char names[][NAME_LEN], int max)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && n < max)
			snprintf(names[n++], NAME_LEN, "%s", e->d_name);
	closedir(d);
	qsort(names, (size_t)n, NAME_LEN, (int (*)(const void *, const void *))strcmp);
	return n;
}

static int count(const char *dir)
{
	char names[64][NAME_LEN];

	return list(dir, names, 64);
}

static void empty_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}

static void spool_remove(struct spool *s)
{
	empty_dir(s->req);
	empty_dir(s->resp);
	assert_int_equal(rmdir(s->req), 0);
	assert_int_equal(rmdir(s->resp), 0);
	assert_int_equal(rmdir(s->dir), 0);
}

static void id_path(char *out, size_t size, const char *dir, uint64_t id, const char *suffix)
{
	snprintf(out, size, "%s/%016" PRIx64 "%s", dir, id, suffix);
}

/* Read a whole file; NULL when it cannot be opened. */
static uint8_t *slurp(const char *path, size_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	uint8_t *buf;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf && read(fd, buf, (size_t)st.st_size) != st.st_size) {
		free(buf);
		buf = NULL;
	}
	close(fd);
	*ret_len = (size_t)st.st_size;
	return buf;
}

/* Publish @len bytes as resp/<id>.resp the way the mediator does: a
 * temporary name, then rename. 0 or -1 (usable from a thread). */
static int put_response_file(const struct spool *s, uint64_t id, const void *msg, size_t len)
{
	char tmp[PATH_LEN], path[PATH_LEN];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s/.tmp-test-%016" PRIx64, s->resp, id);
	id_path(path, sizeof(path), s->resp, id, ".resp");
	fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (write(fd, msg, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	close(fd);
	return rename(tmp, path);
}

/* A response message: status, timings 111 and 222, @n floats of @out. */
static uint8_t *make_response(uint64_t id, int op, int32_t status, const float *out, uint64_t n,
			      size_t *ret_len)
{
	uint64_t data = status == VGPU_OK ? n * sizeof(float) : 0;
	uint8_t *m = malloc(VGPU_PROTO_RESPONSE_PREFIX + data + 1);

	if (!m)
		return NULL;
	vgpu_proto_encode_response(id, op, status, 111, 222, n, m);
	if (data)
		memcpy(m + VGPU_PROTO_RESPONSE_PREFIX, out, data);
	*ret_len = VGPU_PROTO_RESPONSE_PREFIX + data;
	return m;
}

static int put_response(const struct spool *s, uint64_t id, int op, int32_t status,
			const float *out, uint64_t n)
{
	size_t len;
	uint8_t *m = make_response(id, op, status, out, n, &len);
	int rc = m ? put_response_file(s, id, m, len) : -1;

	free(m);
	return rc;
}

/* A published request, read and checked by vgpu_proto_parse_request(). */
struct req {
	uint8_t *buf;
	size_t len;
	struct vgpu_msg_header h;
	struct vgpu_request_view v;
};

/* 0 and *r filled when @path holds a valid request. Thread-safe. */
static int parse_req_file(const char *path, struct req *r)
{
	memset(r, 0, sizeof(*r));
	r->buf = slurp(path, &r->len);
	if (!r->buf || r->len < VGPU_PROTO_HEADER_SIZE ||
	    vgpu_proto_decode_header(r->buf, &vgpu_proto_default_limits, &r->h) != VGPU_OK ||
	    r->len != VGPU_PROTO_HEADER_SIZE + (size_t)r->h.payload_len ||
	    vgpu_proto_parse_request(r->buf, &r->h, r->buf + VGPU_PROTO_HEADER_SIZE,
				     &vgpu_proto_default_limits, &r->v) != VGPU_OK) {
		free(r->buf);
		r->buf = NULL;
		return -1;
	}
	return 0;
}

/* The right answer to @r, placed in resp/. 0 or -1. */
static int answer(const struct spool *s, const struct req *r)
{
	const struct vgpu_request_view *v = &r->v;
	const struct vgpu_op_params *q = &v->params;
	float *out = calloc(v->out_count, sizeof(float));
	int rc;

	if (!out)
		return -1;
	vgpu_reference_run(v->op, q, v->in, out);
	rc = put_response(s, r->h.request_id, v->op, VGPU_OK, out, v->out_count);
	free(out);
	return rc;
}

/* Take the one published request out of req/ (as the mediator would). */
static void take_request(const struct spool *s, struct req *r)
{
	char names[8][NAME_LEN], path[PATH_LEN];

	assert_int_equal(list(s->req, names, 8), 1);
	snprintf(path, sizeof(path), "%s/%s", s->req, names[0]);
	assert_int_equal(parse_req_file(path, r), 0);
	assert_int_equal(unlink(path), 0);
}

static bool is_id_name(const char *name, const char *suffix, uint64_t *ret_id)
{
	uint64_t id = 0;

	for (int i = 0; i < 16; i++) {
		char c = name[i];

		if (c >= '0' && c <= '9')
			id = id << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			id = id << 4 | (uint64_t)(c - 'a' + 10);
		else
			return false;
	}
	if (strcmp(name + 16, suffix) != 0)
		return false;
	*ret_id = id;
	return true;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}





/* --- What a submit publishes --------------------------------------------- */

static void test_request_file(void **state)
{
	const float a[4] = { 1, 2, 3, 4 }, b[4] = { 10, 20, 30, 40 };
	float out[4] = { 0 };
	char names[8][NAME_LEN], path[PATH_LEN], want[32];
	struct vgpu_timing t = { 0 };
	struct spool s;
	struct stat st;
	struct req r;
	vgpu_client *c;
	uint64_t id, name_id;

	(void)state;
	spool_make(&s);
	c = tc_connect(s.uri);
	assert_int_equal(count(s.req) + count(s.resp), 0); /* connecting writes nothing */
	id = tc_submit_add(c, a, b, out, 4);

	/* Exactly one file, req/<16 lowercase hex digits of the id>.req: no
	 * temporary file is left behind. */
	assert_int_equal(list(s.req, names, 8), 1);
	snprintf(want, sizeof(want), "%016" PRIx64 ".req", id);
	assert_string_equal(names[0], want);
	assert_true(is_id_name(names[0], ".req", &name_id) && name_id == id);
	assert_int_equal(count(s.resp), 0);
	snprintf(path, sizeof(path), "%s/%s", s.req, names[0]);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);

	/* Its bytes: the whole message exactly as on the socket. */
	assert_int_equal(parse_req_file(path, &r), 0);
	assert_int_equal(r.len, 32 + 24 + 2 * 4 * sizeof(float));
	static const uint8_t head[] = { 0x56, 0x47, 0x50, 0x55, 1, 0, 1, 0 };
	assert_memory_equal(r.buf, head, sizeof(head));
	for (int i = 0; i < 8; i++)
		assert_int_equal(r.buf[8 + i], (uint8_t)(id >> (8 * i)));
	assert_int_equal(r.buf[16], VGPU_OP_VECTOR_ADD);
	assert_int_equal(r.buf[17] | r.buf[18] | r.buf[19] | r.buf[20] | r.buf[21] | r.buf[22] |
				 r.buf[23],
			 0);
	assert_int_equal(r.h.payload_len, 24 + 32);
	assert_int_equal(r.v.params.n, 4);
	assert_memory_equal(r.buf + 56, a, sizeof(a));
	assert_memory_equal(r.buf + 56 + sizeof(a), b, sizeof(b));

	/* Not answered yet: nothing in resp/, and waiting leaves req/ alone. */
	assert_int_equal(vgpu_wait(c, id, 0, NULL), VGPU_TIMEOUT);
	assert_int_equal(count(s.req), 1);

	/* The mediator takes it and answers; the client reads, checks and
	 * removes the response file. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(answer(&s, &r), 0);
	assert_int_equal(count(s.resp), 1);
	assert_int_equal(vgpu_wait(c, id, 5000, &t), VGPU_OK);
	assert_true(out[0] == 11 && out[1] == 22 && out[2] == 33 && out[3] == 44);
	assert_true(t.queue_ns == 111 && t.exec_ns == 222 && t.total_ns > 0);
	assert_int_equal(count(s.resp), 0);
	assert_int_equal(count(s.req), 0);
	assert_int_equal(vgpu_wait(c, id, 0, NULL), VGPU_NOT_FOUND);
	free(r.buf);
	vgpu_close(c);
	spool_remove(&s);
}

/* Ids are random 64-bit numbers (not 1, 2, 3: other processes share the
 * directory), distinct, and never 0. */
static void test_random_ids(void **state)
{
	static float x[64], sums[64];
	uint64_t ids[64];
	struct vgpu_op_params p = { .n = 1 };
	struct spool s;
	vgpu_client *c;
	int high = 0;

	(void)state;
	spool_make(&s);
	c = tc_connect(s.uri);
	for (int i = 0; i < 64; i++) {
		x[i] = (float)i;
		assert_int_equal(vgpu_submit(c, VGPU_OP_REDUCE_SUM, &p,
					     (const float *const[3]){ &x[i], NULL, NULL }, &sums[i],
					     &ids[i]),
				 VGPU_OK);
		assert_true(ids[i] != 0);
		for (int j = 0; j < i; j++)
			assert_true(ids[j] != ids[i]);
		high += ids[i] > UINT32_MAX;
	}
	assert_true(high > 32);
	assert_int_equal(count(s.req), 64);
	/* Answer all of them, in reverse order of the names. */
	char names[64][NAME_LEN], path[PATH_LEN];
	assert_int_equal(list(s.req, names, 64), 64);
	for (int i = 63; i >= 0; i--) {
		struct req r;

		snprintf(path, sizeof(path), "%s/%s", s.req, names[i]);
		assert_int_equal(parse_req_file(path, &r), 0);
		assert_int_equal(unlink(path), 0);
		assert_int_equal(answer(&s, &r), 0);
		free(r.buf);
	}
	for (int i = 63; i >= 0; i--)
		assert_int_equal(vgpu_wait(c, ids[i], 5000, NULL), VGPU_OK);
	for (int i = 0; i < 64; i++)
		assert_true(sums[i] == (float)i);
	assert_int_equal(count(s.resp), 0);
	vgpu_close(c);
	spool_remove(&s);
}

/* An id whose request or response file exists is not used. */
static void test_claim_id(void **state)
{
	struct vgpu_transport *t;
	char path[PATH_LEN];
	struct spool s;
	int fd;

	(void)state;
	spool_make(&s);
	assert_int_equal(vgpu_transport_open(s.uri, &t), VGPU_OK);
	assert_non_null(t->ops->claim_id);
	id_path(path, sizeof(path), s.req, 5, ".req");
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	id_path(path, sizeof(path), s.resp, 6, ".resp");
	assert_int_equal(symlink("/nonexistent", path), 0); /* a dangling link counts */
	assert_int_equal(t->ops->claim_id(t, 5), VGPU_BUSY);
	assert_int_equal(t->ops->claim_id(t, 6), VGPU_BUSY);
	assert_int_equal(t->ops->claim_id(t, 7), VGPU_OK);
	t->ops->close(t);
	assert_int_equal(count(s.req), 1);
	assert_int_equal(count(s.resp), 1);
	spool_remove(&s);
}

/* A request cut off before its last byte is never published, and closing
 * removes its temporary file. */
static void test_close_removes_temporary(void **state)
{
	const float a[4] = { 1, 2, 3, 4 };
	uint8_t *msg = NULL;
	const struct vgpu_op_params p = { .n = 4 };
	struct vgpu_transport *t;
	struct iovec iov;
	char names[8][NAME_LEN];
	struct spool s;
	size_t taken = 0, len = 0;

	(void)state;
	spool_make(&s);
	assert_int_equal(vgpu_proto_build_request(77, VGPU_OP_VECTOR_ADD, &p,
						  (const float *const[3]){ a, a, NULL },
						  &vgpu_proto_default_limits, &msg, &len),
			 VGPU_OK);
	assert_int_equal(len, 32 + 24 + 32);
	assert_int_equal(vgpu_transport_open(s.uri, &t), VGPU_OK);
	iov.iov_base = msg;
	iov.iov_len = len - 5;
	assert_int_equal(t->ops->send(t, &iov, 1, &taken), VGPU_OK);
	assert_int_equal(taken, len - 5);
	/* Only a temporary file: a name starting with '.', the mediator's to ignore. */
	assert_int_equal(list(s.req, names, 8), 1);
	assert_true(strncmp(names[0], ".tmp-", 5) == 0);
	t->ops->close(t);
	assert_int_equal(count(s.req), 0);
	free(msg);
	spool_remove(&s);
}

/* --- Response files the client must refuse -------------------------------- */

enum bad_kind {
	BAD_OVERSIZED, BAD_GARBAGE, BAD_SYMLINK, BAD_FIFO, BAD_DIRECTORY, BAD_SHORT,
	BAD_OTHER_ID_INSIDE, BAD_TORN, BAD_LONGER_THAN_HEADER, BAD_OP, BAD_COUNT, BAD_CHECKSUM,
	BAD_POSITIVE_STATUS,
};

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Place the bad response @kind for @id; the file (or link) placed is
 * resp/<id>.resp. */
static void put_bad(const struct spool *s, enum bad_kind kind, uint64_t id)
{
	float data[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	char path[PATH_LEN], target[PATH_LEN];
	uint8_t m[VGPU_PROTO_RESPONSE_PREFIX + sizeof(data)];
	size_t len;
	uint8_t *good;

	id_path(path, sizeof(path), s->resp, id, ".resp");
	switch (kind) {
	case BAD_OVERSIZED: /* well formed, but one float more than the request can get */
		assert_int_equal(put_response(s, id, VGPU_OP_VECTOR_ADD, VGPU_OK, data, 5), 0);
		break;
	case BAD_GARBAGE:
		memset(m, 0x41, VGPU_PROTO_RESPONSE_PREFIX);
		assert_int_equal(put_response_file(s, id, m, VGPU_PROTO_RESPONSE_PREFIX), 0);
		break;
	case BAD_SYMLINK: /* to a perfectly good answer elsewhere */
		good = make_response(id, VGPU_OP_VECTOR_ADD, VGPU_OK, data, 4, &len);
		assert_non_null(good);
		snprintf(target, sizeof(target), "%s/target", s->dir);
		int fd = open(target, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, good, len), (ssize_t)len);
		close(fd);
		free(good);
		assert_int_equal(symlink(target, path), 0);
		break;
	case BAD_FIFO: /* opening it for reading must not hang */
		assert_int_equal(mkfifo(path, 0600), 0);
		break;
	case BAD_DIRECTORY:
		assert_int_equal(mkdir(path, 0700), 0);
		break;
	case BAD_SHORT:
		vgpu_proto_encode_response(id, VGPU_OP_VECTOR_ADD, VGPU_BUSY, 1, 2, 0, m);
		assert_int_equal(put_response_file(s, id, m, 40), 0);
		break;
	case BAD_OTHER_ID_INSIDE:
		assert_int_equal(put_response(s, id, VGPU_OP_VECTOR_ADD, VGPU_OK, data, 4), 0);
		/* Same file, header naming id + 1 (resigned: only the id is wrong). */
		vgpu_proto_encode_response(id + 1, VGPU_OP_VECTOR_ADD, VGPU_OK, 111, 222, 4, m);
		memcpy(m + VGPU_PROTO_RESPONSE_PREFIX, data, 16);
		assert_int_equal(put_response_file(s, id, m, VGPU_PROTO_RESPONSE_PREFIX + 16), 0);
		break;
	case BAD_TORN: /* the header promises 4 floats, the file holds 2 */
		vgpu_proto_encode_response(id, VGPU_OP_VECTOR_ADD, VGPU_OK, 1, 2, 4, m);
		memcpy(m + VGPU_PROTO_RESPONSE_PREFIX, data, 8);
		assert_int_equal(put_response_file(s, id, m, VGPU_PROTO_RESPONSE_PREFIX + 8), 0);
		break;
	case BAD_LONGER_THAN_HEADER: /* a BUSY answer with 16 bytes after it */
		vgpu_proto_encode_response(id, VGPU_OP_VECTOR_ADD, VGPU_BUSY, 1, 2, 0, m);
		memcpy(m + VGPU_PROTO_RESPONSE_PREFIX, data, 16);
		assert_int_equal(put_response_file(s, id, m, VGPU_PROTO_RESPONSE_PREFIX + 16), 0);
		break;
	case BAD_OP:
		assert_int_equal(put_response(s, id, VGPU_OP_SAXPY, VGPU_OK, data, 4), 0);
		break;
	case BAD_COUNT: /* within the size bound, but not the 4 floats asked for */
		assert_int_equal(put_response(s, id, VGPU_OP_VECTOR_ADD, VGPU_OK, data, 3), 0);
		break;
	case BAD_CHECKSUM:
		vgpu_proto_encode_response(id, VGPU_OP_VECTOR_ADD, VGPU_OK, 1, 2, 4, m);
		m[40] ^= 1;
		memcpy(m + VGPU_PROTO_RESPONSE_PREFIX, data, 16);
		assert_int_equal(put_response_file(s, id, m, VGPU_PROTO_RESPONSE_PREFIX + 16), 0);
		break;
	case BAD_POSITIVE_STATUS:
		vgpu_proto_encode_response(id, VGPU_OP_VECTOR_ADD, VGPU_BUSY, 1, 2, 0, m);
		put32(m + 32, 5);
		put32(m + 28, vgpu_proto_checksum(m, m + 32, 24));
		assert_int_equal(put_response_file(s, id, m, VGPU_PROTO_RESPONSE_PREFIX), 0);
		break;
	}
}

static void expect_bad(enum bad_kind kind, const char *log_part)
{
	float a[4] = { 1, 2, 3, 4 }, out[4] = { -1, -1, -1, -1 }, out2[4];
	struct log_seen seen = { 0 };
	struct vgpu_timing t = { 7, 7, 7 };
	char path[PATH_LEN];
	struct spool s;
	struct stat st;
	vgpu_client *c;
	uint64_t id, id2;

	spool_make(&s);
	c = tc_connect(s.uri);
	vgpu_client_set_log(c, tc_log_cb, &seen);
	id = tc_submit_add(c, a, a, out, 4);
	id2 = tc_submit_add(c, a, a, out2, 4);
	empty_dir(s.req); /* the mediator took both */
	put_bad(&s, kind, id);
	assert_int_equal(vgpu_wait(c, id, 5000, &t), VGPU_PROTOCOL);
	assert_true(t.queue_ns == 7); /* not written on failure */
	if (kind != BAD_OP && kind != BAD_COUNT && kind != BAD_CHECKSUM &&
	    kind != BAD_POSITIVE_STATUS && kind != BAD_OVERSIZED)
		assert_true(out[0] == -1 && out[3] == -1); /* the output untouched */
	assert_int_equal(seen.count, 1);
	if (!strstr(seen.last, log_part))
		fail_msg("log '%s' lacks '%s'", seen.last, log_part);
	/* The client is failed as a whole, like a socket with a bad response. */
	assert_int_equal(vgpu_wait(c, id2, 0, NULL), VGPU_PROTOCOL);
	assert_int_equal(vgpu_submit(c, VGPU_OP_VECTOR_ADD, &(struct vgpu_op_params){ .n = 4 },
				     (const float *const[3]){ a, a, NULL }, out, &id),
			 VGPU_PROTOCOL);
	vgpu_close(c);
	/* The bad file was ours (our id), so it is gone (a directory cannot be
	 * unlinked and stays); a symlink's target is not touched. */
	id_path(path, sizeof(path), s.resp, id, ".resp");
	if (kind == BAD_DIRECTORY) {
		assert_int_equal(rmdir(path), 0);
	} else if (lstat(path, &st) == 0) {
		fail_msg("resp/%016" PRIx64 ".resp left behind", id);
	}
	if (kind == BAD_SYMLINK) {
		snprintf(path, sizeof(path), "%s/target", s.dir);
		assert_int_equal(lstat(path, &st), 0);
		assert_int_equal(unlink(path), 0);
	}
	assert_int_equal(count(s.req), 0);
	assert_int_equal(count(s.resp), 0);
	spool_remove(&s);
}

static void test_bad_files(void **state)
{
	(void)state;
	expect_bad(BAD_OVERSIZED, "larger than any answer");
	expect_bad(BAD_GARBAGE, "malformed header");
	expect_bad(BAD_SYMLINK, "is a symlink");
	expect_bad(BAD_FIFO, "not a regular file");
	expect_bad(BAD_DIRECTORY, "not a regular file");
	expect_bad(BAD_SHORT, "too short");
	expect_bad(BAD_OTHER_ID_INSIDE, "names another request");
	expect_bad(BAD_TORN, "not the size its header gives");
	expect_bad(BAD_LONGER_THAN_HEADER, "not the size its header gives");
}

/* The checks every response gets, whatever its transport. */
static void test_bad_contents(void **state)
{
	(void)state;
	expect_bad(BAD_OP, "is for op 2, not 1");
	expect_bad(BAD_COUNT, "carries 3 floats, not 4");
	expect_bad(BAD_CHECKSUM, "malformed response");
	expect_bad(BAD_POSITIVE_STATUS, "malformed response");
}

/* --- Waiting --------------------------------------------------------------- */

static void test_timeout(void **state)
{
	float x[5] = { 1, 2, 3, 4, 5 }, sum = -1;
	struct vgpu_op_params prm = { .n = 5 };
	struct spool s;
	struct req r;
	vgpu_client *c;
	uint64_t id, t0;

	(void)state;
	spool_make(&s);
	c = tc_connect(s.uri);
	assert_int_equal(vgpu_submit(c, VGPU_OP_REDUCE_SUM, &prm,
				     (const float *const[3]){ x, NULL, NULL }, &sum, &id),
			 VGPU_OK);
	assert_int_equal(vgpu_wait(c, id, 0, NULL), VGPU_TIMEOUT);
	t0 = now_ms();
	assert_int_equal(vgpu_wait(c, id, 60, NULL), VGPU_TIMEOUT);
	assert_true(now_ms() - t0 >= 60);
	assert_true(now_ms() - t0 < 2000);
	assert_int_equal(vgpu_wait(c, id, -2, NULL), VGPU_INVALID_PARAM);
	/* Still outstanding: an error status ends it, and the client goes on. */
	take_request(&s, &r);
	assert_int_equal(put_response(&s, id, VGPU_OP_REDUCE_SUM, VGPU_BUSY, NULL, 0), 0);
	assert_int_equal(vgpu_wait(c, id, -1, NULL), VGPU_BUSY);
	assert_true(sum == -1);
	assert_int_equal(count(s.resp), 0);
	free(r.buf);
	assert_int_equal(vgpu_submit(c, VGPU_OP_REDUCE_SUM, &prm,
				     (const float *const[3]){ x, NULL, NULL }, &sum, &id),
			 VGPU_OK);
	take_request(&s, &r);
	assert_int_equal(answer(&s, &r), 0);
	assert_int_equal(vgpu_wait(c, id, 5000, NULL), VGPU_OK);
	assert_true(sum == 15);
	free(r.buf);
	vgpu_close(c);
	spool_remove(&s);
}

/* Response files of ids this client did not publish are not touched: other
 * processes share the directory. */
static void test_other_ids_ignored(void **state)
{
	float a[2] = { 1, 2 }, out[2], out2[2];
	uint8_t garbage[100];
	char names[8][NAME_LEN], path[PATH_LEN];
	size_t len;
	uint8_t *before, *after;
	struct spool s;
	struct req r;
	vgpu_client *c, *c2;
	uint64_t id, id2, other = 0x0123456789abcdefu;

	(void)state;
	spool_make(&s);
	c = tc_connect(s.uri);
	c2 = tc_connect(s.uri); /* another process sharing the directory */
	id = tc_submit_add(c, a, a, out, 2);
	id2 = tc_submit_add(c2, a, a, out2, 2);
	assert_true(id != id2);
	assert_int_equal(count(s.req), 2);
	/* A garbage file under another id, and a good answer to c2's request. */
	memset(garbage, 0x41, sizeof(garbage));
	assert_int_equal(put_response_file(&s, other, garbage, sizeof(garbage)), 0);
	id_path(path, sizeof(path), s.req, id2, ".req");
	assert_int_equal(parse_req_file(path, &r), 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(answer(&s, &r), 0);
	free(r.buf);
	/* c's wait sees neither. */
	assert_int_equal(vgpu_wait(c, id, 30, NULL), VGPU_TIMEOUT);
	assert_int_equal(list(s.resp, names, 8), 2);
	id_path(path, sizeof(path), s.resp, other, ".resp");
	before = slurp(path, &len);
	assert_non_null(before);
	assert_int_equal(len, sizeof(garbage));
	/* c2 takes its own. */
	assert_int_equal(vgpu_wait(c2, id2, 5000, NULL), VGPU_OK);
	assert_true(out2[0] == 2 && out2[1] == 4);
	/* c's answer comes; the stranger's file stays as it was. */
	id_path(path, sizeof(path), s.req, id, ".req");
	assert_int_equal(parse_req_file(path, &r), 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(answer(&s, &r), 0);
	free(r.buf);
	assert_int_equal(vgpu_wait(c, id, 5000, NULL), VGPU_OK);
	assert_true(out[0] == 2 && out[1] == 4);
	assert_int_equal(list(s.resp, names, 8), 1);
	id_path(path, sizeof(path), s.resp, other, ".resp");
	after = slurp(path, &len);
	assert_non_null(after);
	assert_int_equal(len, sizeof(garbage));
	assert_memory_equal(before, after, sizeof(garbage));
	free(before);
	free(after);
	vgpu_close(c);
	vgpu_close(c2);
	spool_remove(&s);
}

/* Closing with requests outstanding: published requests are the
 * mediator's and stay; nothing temporary is left. */
static void test_close_outstanding(void **state)
{
	float a[2] = { 1, 2 }, out[2];
	char names[8][NAME_LEN];
	struct spool s;
	vgpu_client *c;
	uint64_t id[2], got;

	(void)state;
	spool_make(&s);
	c = tc_connect(s.uri);
	id[0] = tc_submit_add(c, a, a, out, 2);
	id[1] = tc_submit_add(c, a, a, out, 2);
	vgpu_close(c);
	assert_int_equal(list(s.req, names, 8), 2);
	for (int i = 0; i < 2; i++) {
		assert_true(is_id_name(names[i], ".req", &got));
		assert_true(got == id[0] || got == id[1]);
	}
	assert_int_equal(count(s.resp), 0);
	spool_remove(&s);
}

/* --- A mediator stand-in in a thread: answers whatever is published ------- */

struct answerer {
	const struct spool *s;
	int stop;              /* set by the test (atomic) */
	int answered;          /* requests answered (atomic) */
	int batch;             /* collect this many, then answer newest first */
	const char *failure;   /* read after join */
};

static void *answer_loop(void *arg)
{
	struct answerer *an = arg;
	struct req held[16];
	int n = 0;

	while (!__atomic_load_n(&an->stop, __ATOMIC_ACQUIRE)) {
		DIR *d = opendir(an->s->req);
		struct dirent *e;
		uint64_t id;

		if (!d) {
			an->failure = "cannot read req/";
			break;
		}
		while ((e = readdir(d))) {
			char path[PATH_LEN];

			if (e->d_name[0] == '.')
				continue;
			if (!is_id_name(e->d_name, ".req", &id)) {
				an->failure = "a file in req/ with an unexpected name";
				continue;
			}
			snprintf(path, sizeof(path), "%s/%s", an->s->req, e->d_name);
			if (parse_req_file(path, &held[n]) != 0 || held[n].h.request_id != id) {
				an->failure = "an invalid request file";
				unlink(path);
				continue;
			}
			unlink(path);
			if (++n < an->batch)
				continue;
			while (n) {
				n--;
				if (answer(an->s, &held[n]) != 0)
					an->failure = "cannot place a response";
				free(held[n].buf);
				__atomic_add_fetch(&an->answered, 1, __ATOMIC_RELEASE);
			}
		}
		closedir(d);
		usleep(200);
	}
	while (n--)
		free(held[n].buf);
	return NULL;
}

/* The blocking API, and the async one with responses in completion order. */
static void test_blocking_and_async(void **state)
{
	const float A[2] = { 1, 2 }, B[3] = { 1, 2, 3 };
	float C[6] = { 10, 20, 30, 40, 50, 60 }, x[3] = { 1, 1, 1 }, y[3] = { 1, 2, 3 }, sum = 0;
	float a[4] = { 1, 2, 3, 4 }, outs[4][4];
	uint64_t ids[4];
	struct answerer an = { .batch = 1 };
	struct vgpu_timing t;
	pthread_t th;
	struct spool s;
	vgpu_client *c;

	(void)state;
	spool_make(&s);
	an.s = &s;
	assert_int_equal(pthread_create(&th, NULL, answer_loop, &an), 0);
	c = tc_connect(s.uri);
	assert_int_equal(vgpu_saxpy(c, 2.0f, x, y, 3, &t), VGPU_OK);
	assert_true(y[0] == 3 && y[1] == 4 && y[2] == 5);
	assert_true(t.queue_ns == 111 && t.exec_ns == 222);
	assert_int_equal(vgpu_reduce_sum(c, y, 3, &sum, NULL), VGPU_OK);
	assert_true(sum == 12);
	assert_int_equal(vgpu_sgemm(c, 2, 3, 1, 2.0f, A, B, 0.5f, C, NULL), VGPU_OK);
	assert_true(C[0] == 7 && C[2] == 21 && C[3] == 24 && C[5] == 42);
	for (int i = 0; i < 4; i++)
		ids[i] = tc_submit_add(c, a, a, outs[i], 4);
	for (int i = 3; i >= 0; i--)
		assert_int_equal(vgpu_wait(c, ids[i], 5000, NULL), VGPU_OK);
	for (int i = 0; i < 4; i++)
		assert_true(outs[i][0] == 2 && outs[i][3] == 8);
	vgpu_close(c);
	__atomic_store_n(&an.stop, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(th, NULL), 0);
	if (an.failure)
		fail_msg("answerer: %s", an.failure);
	assert_int_equal(an.answered, 7);
	assert_int_equal(count(s.req) + count(s.resp), 0);
	spool_remove(&s);
}

/* A response answered while the client waits, after it backed off for a
 * while, is still found promptly (the poll interval stays bounded). */
static void test_late_answer(void **state)
{
	float a[2] = { 1, 2 }, out[2];
	struct answerer an = { .batch = 1 };
	pthread_t th;
	struct spool s;
	vgpu_client *c;
	uint64_t id, t0;

	(void)state;
	setenv("VGPU_SPOOL_POLL_MAX_US", "bogus", 1); /* ignored: the default */
	spool_make(&s);
	an.s = &s;
	c = tc_connect(s.uri);
	unsetenv("VGPU_SPOOL_POLL_MAX_US");
	id = tc_submit_add(c, a, a, out, 2);
	assert_int_equal(vgpu_wait(c, id, 100, NULL), VGPU_TIMEOUT); /* backed off */
	assert_int_equal(pthread_create(&th, NULL, answer_loop, &an), 0);
	t0 = now_ms();
	assert_int_equal(vgpu_wait(c, id, 5000, NULL), VGPU_OK);
	assert_true(now_ms() - t0 < 1000);
	assert_true(out[0] == 2 && out[1] == 4);
	vgpu_close(c);
	__atomic_store_n(&an.stop, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(th, NULL), 0);
	if (an.failure)
		fail_msg("answerer: %s", an.failure);
	spool_remove(&s);
}

/* Large requests are written whole (many write() calls); the output is read
 * straight into the caller's array. */
static void test_large(void **state)
{
	const uint32_t n = 1u << 20;
	float *a = malloc(n * sizeof(float)), *out = malloc(n * sizeof(float));
	struct answerer an = { .batch = 1 };
	pthread_t th;
	struct spool s;
	vgpu_client *c;

	(void)state;
	assert_true(a && out);
	for (uint32_t i = 0; i < n; i++)
		a[i] = (float)(i % 1000);
	spool_make(&s);
	an.s = &s;
	assert_int_equal(pthread_create(&th, NULL, answer_loop, &an), 0);
	c = tc_connect(s.uri);
	assert_int_equal(vgpu_vector_add(c, a, a, out, n, NULL), VGPU_OK);
	for (uint32_t i = 0; i < n; i += 4099)
		assert_true(out[i] == 2 * a[i]);
	assert_true(out[n - 1] == 2 * a[n - 1]);
	vgpu_close(c);
	__atomic_store_n(&an.stop, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(th, NULL), 0);
	if (an.failure)
		fail_msg("answerer: %s", an.failure);
	spool_remove(&s);
	free(a);
	free(out);
}

/* vgpu-submit --transport spool:DIR, its requests answered by the stand-in. */
static void test_vgpu_submit(void **state)
{
	const char *bin = getenv("VGPU_SUBMIT_BIN");
	struct answerer an = { .batch = 1 };
	char *argv[] = { (char *)"vgpu-submit", (char *)"--transport", NULL,
			 (char *)"vector-add", (char *)"--n", (char *)"1000", (char *)"--verify",
			 (char *)"--repeat", (char *)"20", (char *)"--depth", (char *)"4", NULL };
	pthread_t th;
	struct spool s;
	pid_t pid;
	int status;

	(void)state;
	if (!bin)
		skip();
	spool_make(&s);
	an.s = &s;
	argv[2] = s.uri;
	assert_int_equal(pthread_create(&th, NULL, answer_loop, &an), 0);
	assert_int_equal(posix_spawn(&pid, bin, NULL, NULL, argv, environ), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	__atomic_store_n(&an.stop, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(th, NULL), 0);
	if (an.failure)
		fail_msg("answerer: %s", an.failure);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(an.answered, 20);
	assert_int_equal(count(s.req) + count(s.resp), 0);
	spool_remove(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_file),
		cmocka_unit_test(test_random_ids),
		cmocka_unit_test(test_claim_id),
		cmocka_unit_test(test_close_removes_temporary),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_bad_contents),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_other_ids_ignored),
		cmocka_unit_test(test_close_outstanding),
		cmocka_unit_test(test_blocking_and_async),
		cmocka_unit_test(test_late_answer),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_vgpu_submit),
	};

	return cmocka_run_group_tests_name("guest-spool", tests, NULL, NULL);
}
