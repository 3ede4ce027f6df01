/* SPDX-License-Identifier: MIT */
/*
 * client.c - libvgpu's core: requests go out back to back, responses come
 * back in completion order and are matched to their requests by id.
 *
 * A request is written with one gather write per step: the 56-byte header
 * and parameter block built on the stack, then the caller's input arrays
 * as they are. A response's 56-byte prefix is read and checked first; only
 * then is its output read, straight into the caller's array.
 *
 * Request ids count from 1, unless the transport is shared with other
 * processes (spool: claim_id()): then they are random 64-bit numbers that
 * the transport has checked are not in use.
 *
 * Over a shared-memory window (shm:) nothing is written or read: a
 * descriptor names where the arrays lie in the window. Arrays the caller
 * placed there (vgpu_buffer_alloc()) are used in place; others are copied
 * into a staging block of the window at submit, and an output's block is
 * copied out when its completion is taken.
 *
 * Waiting first polls for VGPU_SPIN_US (socket and shm; default 200 us),
 * then sleeps: an answer that comes within that time costs no wake-up.
 *
 * Must never: write into a caller's array before the response naming it was
 * checked (request id outstanding, op and output size as submitted), read
 * past the message being decoded, trust a length from the mediator, touch a
 * buffer of a request that failed or was abandoned, or keep going on a
 * stream whose framing is broken (the first bad response fails the
 * connection and every request still outstanding on it).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <sys/random.h>

#include "libvgpu.h"
#include "transport.h"
#include "transport_shm.h"
#include "vgpu_spin.h"
#include "vgpu_clock.h"

/* Floats go to and come from the wire as they lie in memory, uncopied. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "libvgpu sends float arrays as they are: little-endian hosts only"
#endif

/* Every outstanding request fits in the window's rings at once. */
_Static_assert(VGPU_CLIENT_MAX_OUTSTANDING <= VGPU_RING_ENTRIES, "rings too small");

/* One outstanding request. */
struct pending {
	uint64_t id;         /* 0: the slot is free */
	uint16_t op;         /* enum vgpu_op, to check the response against */
	bool done;           /* status and timing are final */
	int32_t status;      /* the request's outcome, once done */
	float *out;          /* the caller's output array */
	uint64_t out_count;  /* floats a VGPU_OK response must carry */
	uint64_t submit_ns;  /* CLOCK_MONOTONIC when it was submitted */
	struct vgpu_timing timing;
	void *stage[4];      /* shm: staging blocks of inputs 0..2 and the output */
};

struct vgpu_client {
	struct vgpu_transport *t;        /* stream transports; NULL once the connection failed */
	struct vgpu_shm *shm;            /* shm: the window, mapped until vgpu_close() */
	uint64_t spin_ns;                /* poll this long before sleeping in a wait */
	int broken;                      /* VGPU_OK, or why the connection failed */
	struct vgpu_proto_limits limits; /* the protocol's ceilings; the mediator has its own */
	uint64_t next_id;                /* next request id to try (never 0) */
	size_t outstanding;              /* slots in use */
	struct pending *slots;           /* VGPU_CLIENT_MAX_OUTSTANDING, at id % that */
	/* The response being read. */
	uint8_t prefix[VGPU_PROTO_RESPONSE_PREFIX]; /* header and status block */
	size_t prefix_got;               /* bytes of prefix read */
	struct vgpu_msg_header rh;       /* prefix's header, once decoded */
	struct pending *target;          /* whose output is being read, or NULL */
	uint64_t data_len, data_got;     /* bytes of that output: expected, read */
	vgpu_log_fn *log_fn;             /* where failures are described, or NULL */
	void *log_opaque;
};

/*
 * The connection is unusable from now on: every request still outstanding
 * ends with @status, and no byte is read into any caller's buffer again.
 */
__attribute__((format(printf, 3, 4)))
static void fail_connection(vgpu_client *c, int status, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (c->broken)
		return;
	c->broken = status;
	if (c->log_fn) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		c->log_fn(c->log_opaque, msg);
	}
	/* A window stays mapped: the caller's buffers may lie in it. */
	if (c->t)
		c->t->ops->close(c->t);
	c->t = NULL;
	c->target = NULL;
	for (size_t i = 0; i < VGPU_CLIENT_MAX_OUTSTANDING; i++) {
		struct pending *s = &c->slots[i];

		if (s->id && !s->done) {
			s->done = true;
			s->status = status;
		}
	}
}

static struct pending *find(vgpu_client *c, uint64_t id)
{
	struct pending *s = &c->slots[id % VGPU_CLIENT_MAX_OUTSTANDING];

	return id && s->id == id ? s : NULL;
}

static void release(vgpu_client *c, struct pending *s)
{
	/* After a failure the mediator may still write a staging block: those
	 * are never reused, and go with the window at vgpu_close(). */
	for (int i = 0; i < 4 && !c->broken; i++)
		if (s->stage[i])
			vgpu_shm_free(c->shm, s->stage[i]);
	memset(s, 0, sizeof(*s));
	c->outstanding--;
}

static void complete(struct pending *s)
{
	s->done = true;
	s->timing.total_ns = vgpu_now_ns() - s->submit_ns;
}

/* The whole prefix is in: check it against the request it names. */
static int start_response(vgpu_client *c)
{
	const struct vgpu_msg_header *h = &c->rh;
	struct vgpu_response_view v;
	struct pending *s;
	unsigned long long id = (unsigned long long)h->request_id;

	c->prefix_got = 0;
	if (vgpu_proto_parse_response(c->prefix, h, c->prefix + VGPU_PROTO_HEADER_SIZE, &v) !=
	    VGPU_OK) {
		fail_connection(c, VGPU_PROTOCOL, "malformed response to request %llu", id);
		return VGPU_PROTOCOL;
	}
	s = find(c, h->request_id);
	if (!s || s->done) {
		fail_connection(c, VGPU_PROTOCOL, "response for unknown request %llu", id);
		return VGPU_PROTOCOL;
	}
	if (h->op != s->op) {
		fail_connection(c, VGPU_PROTOCOL, "response to request %llu is for op %u, not %u",
				id, h->op, s->op);
		return VGPU_PROTOCOL;
	}
	if (v.status == VGPU_OK && v.out_count != s->out_count) {
		fail_connection(c, VGPU_PROTOCOL,
				"response to request %llu carries %llu floats, not %llu", id,
				(unsigned long long)v.out_count, (unsigned long long)s->out_count);
		return VGPU_PROTOCOL;
	}
	s->status = v.status;
	s->timing.queue_ns = v.queue_ns;
	s->timing.exec_ns = v.exec_ns;
	if (v.status != VGPU_OK) {
		complete(s);
		return VGPU_OK;
	}
	c->target = s;
	c->data_len = s->out_count * sizeof(float);
	c->data_got = 0;
	return VGPU_OK;
}

/*
 * Read once, whatever is ready, into the current place: the prefix (up to
 * its 56 bytes, which every valid response has) or the output of the
 * response being read. *ret_got is 0 when nothing was ready.
 */
static int recv_step(vgpu_client *c, size_t *ret_got)
{
	uint8_t *buf;
	size_t len, got = 0, before = c->prefix_got;
	int rc;

	if (c->broken)
		return c->broken;
	if (c->target) {
		buf = (uint8_t *)c->target->out + c->data_got;
		len = (size_t)(c->data_len - c->data_got);
	} else {
		buf = c->prefix + c->prefix_got;
		len = sizeof(c->prefix) - c->prefix_got;
	}
	rc = c->t->ops->recv(c->t, buf, len, &got);
	if (rc != VGPU_OK) {
		rc = rc == VGPU_PROTOCOL ? VGPU_PROTOCOL : VGPU_IO_ERROR;
		if (c->t->why[0])
			fail_connection(c, rc, "%s", c->t->why);
		else
			fail_connection(c, rc, "the connection to the mediator %s",
					c->target || c->prefix_got ? "broke inside a response"
								   : "was closed");
		return rc;
	}
	*ret_got = got;
	if (got == 0)
		return VGPU_OK;
	if (c->target) {
		c->data_got += got;
		if (c->data_got == c->data_len) {
			complete(c->target);
			c->target = NULL;
		}
		return VGPU_OK;
	}
	c->prefix_got += got;
	if (before < VGPU_PROTO_HEADER_SIZE && c->prefix_got >= VGPU_PROTO_HEADER_SIZE) {
		/* Judge the header as soon as it is in: a bad one may be all there is. */
		if (vgpu_proto_decode_header(c->prefix, &c->limits, &c->rh) != VGPU_OK ||
		    c->rh.type != VGPU_MSG_RESPONSE || c->rh.payload_len < VGPU_PROTO_STATUS_SIZE) {
			fail_connection(c, VGPU_PROTOCOL, "malformed response header");
			return VGPU_PROTOCOL;
		}
	}
	if (c->prefix_got == sizeof(c->prefix))
		return start_response(c);
	return VGPU_OK;
}

const char *vgpu_default_transport(void)
{
	const char *env = secure_getenv("VGPU_TRANSPORT");

	if (env && *env)
		return env;
	return access("/dev/vgpu0", F_OK) == 0 ? "dev:/dev/vgpu0" : NULL;
}

int vgpu_connect(const char *uri, vgpu_client **ret)
{
	struct vgpu_transport *t = NULL;
	struct vgpu_uri u;
	vgpu_client *c;
	int rc;

	if (!ret)
		return VGPU_INVALID_PARAM;
	if (!uri)
		uri = vgpu_default_transport();
	if (!uri)
		return VGPU_NOT_FOUND;
	c = calloc(1, sizeof(*c));
	if (!c)
		return VGPU_NO_MEMORY;
	c->slots = calloc(VGPU_CLIENT_MAX_OUTSTANDING, sizeof(*c->slots));
	if (!c->slots) {
		free(c);
		return VGPU_NO_MEMORY;
	}
	rc = vgpu_uri_parse(uri, &u);
	if (rc == VGPU_OK && u.kind == VGPU_URI_SHM)
		rc = vgpu_shm_open(u.path, vgpu_env_ull("VGPU_SHM_MIB", 1, 2048, 64) << 20, &c->shm);
	else if (rc == VGPU_OK && u.kind == VGPU_URI_DEV)
		rc = vgpu_shm_open_dev(u.path, &c->shm);
	else if (rc == VGPU_OK)
		rc = vgpu_transport_open(uri, &t);
	if (rc != VGPU_OK) {
		free(c->slots);
		free(c);
		return rc;
	}
	c->t = t;
	if (u.kind != VGPU_URI_SPOOL) /* spool waits poll files at their own pace */
		c->spin_ns = vgpu_env_ull("VGPU_SPIN_US", 0, 10000, 200) * 1000u;
	c->limits.max_payload = VGPU_PROTO_MAX_PAYLOAD;
	c->limits.max_elems = VGPU_PROTO_MAX_PAYLOAD / sizeof(float);
	c->limits.max_dim = UINT32_MAX;
	c->next_id = 1;
	*ret = c;
	return VGPU_OK;
}

void vgpu_close(vgpu_client *c)
{
	if (!c)
		return;
	if (c->t)
		c->t->ops->close(c->t);
	vgpu_shm_close(c->shm);
	free(c->slots);
	free(c);
}

void vgpu_client_set_log(vgpu_client *c, vgpu_log_fn *fn, void *opaque)
{
	if (!c)
		return;
	c->log_fn = fn;
	c->log_opaque = opaque;
}

/* Draws made for one random id before giving up: a free slot is found
 * within about 1024 draws even when all but one are taken. */
#define MAX_ID_DRAWS 65536
/* Ids the transport may refuse as in use before the submit fails. */
#define MAX_ID_CLAIMS 16

/* A random id whose slot is free, that the transport accepts. */
static int draw_id(vgpu_client *c, uint64_t *ret_id)
{
	int claims = 0;

	for (int draws = 0; draws < MAX_ID_DRAWS && claims < MAX_ID_CLAIMS; draws++) {
		uint64_t id;
		ssize_t n = getrandom(&id, sizeof(id), 0);
		int rc;

		if (n != (ssize_t)sizeof(id))
			continue; /* EINTR, or a short read before the pool is ready */
		if (!id || c->slots[id % VGPU_CLIENT_MAX_OUTSTANDING].id)
			continue;
		claims++;
		rc = c->t->ops->claim_id(c->t, id);
		if (rc == VGPU_BUSY)
			continue;
		if (rc == VGPU_OK)
			*ret_id = id;
		return rc;
	}
	snprintf(c->t->why, sizeof(c->t->why), "no usable request id found");
	return VGPU_IO_ERROR;
}

/* A free slot and a fresh id for it; sequential ids take at most one lap of
 * the table. The caller checked that a slot is free. */
static int take_slot(vgpu_client *c, struct pending **ret)
{
	struct pending *s;
	uint64_t id = 0;

	if (c->t && c->t->ops->claim_id) {
		int rc = draw_id(c, &id);

		if (rc != VGPU_OK) {
			fail_connection(c, VGPU_IO_ERROR, "%s",
					c->t->why[0] ? c->t->why : "choosing a request id failed");
			return VGPU_IO_ERROR;
		}
	} else {
		do {
			id = c->next_id++;
			if (c->next_id == 0)
				c->next_id = 1;
		} while (!id || c->slots[id % VGPU_CLIENT_MAX_OUTSTANDING].id);
	}
	s = &c->slots[id % VGPU_CLIENT_MAX_OUTSTANDING];
	s->id = id;
	c->outstanding++;
	*ret = s;
	return VGPU_OK;
}

/* Read every response that is ready now. */
static int drain(vgpu_client *c)
{
	size_t got;
	int rc;

	do
		rc = recv_step(c, &got);
	while (rc == VGPU_OK && got);
	return rc;
}

/* Write @iov entirely, reading responses whenever the writing has to wait. */
static int send_all(vgpu_client *c, struct iovec *iov, int iovcnt)
{
	int first = 0;

	while (first < iovcnt) {
		size_t n = 0;
		int ready = 0;

		if (c->broken)
			return c->broken;
		if (c->t->ops->send(c->t, iov + first, iovcnt - first, &n) != VGPU_OK) {
			fail_connection(c, VGPU_IO_ERROR, "%s",
					c->t->why[0] ? c->t->why
						     : "the connection to the mediator broke while sending");
			return VGPU_IO_ERROR;
		}
		while (n && first < iovcnt) {
			size_t step = n < iov[first].iov_len ? n : iov[first].iov_len;

			iov[first].iov_base = (uint8_t *)iov[first].iov_base + step;
			iov[first].iov_len -= step;
			n -= step;
			if (iov[first].iov_len == 0)
				first++;
		}
		if (first == iovcnt)
			break;
		if (c->t->ops->wait(c->t, VGPU_TRANSPORT_SEND | VGPU_TRANSPORT_RECV, -1, &ready) !=
		    VGPU_OK) {
			fail_connection(c, VGPU_IO_ERROR, "waiting on the connection failed");
			return VGPU_IO_ERROR;
		}
		if ((ready & VGPU_TRANSPORT_RECV) && drain(c) != VGPU_OK)
			return c->broken;
	}
	return VGPU_OK;
}

/* The window offset of @len bytes at @p: in place when the caller put
 * them in the window, else in a new staging block of @s (filled from @p
 * when @copy_in). VGPU_INVALID_PARAM for a pointer into the window that is
 * not inside one allocated block; window_alloc()'s errors. */
static int shm_place(vgpu_client *c, struct pending *s, int stage, const void *p, uint64_t len,
		     bool copy_in, uint32_t *ret_off)
{
	void *block;
	int rc;

	if (vgpu_shm_offset(c->shm, p, len, ret_off))
		return VGPU_OK;
	if (vgpu_shm_contains(c->shm, p))
		return VGPU_INVALID_PARAM;
	rc = vgpu_shm_alloc(c->shm, len, &block);
	if (rc != VGPU_OK)
		return rc;
	s->stage[stage] = block;
	if (copy_in)
		memcpy(block, p, len);
	*ret_off = (uint32_t)((uint8_t *)block - c->shm->win);
	return VGPU_OK;
}

static int shm_submit(vgpu_client *c, struct pending *s, int op,
		      const struct vgpu_op_params *params, const float *const in[3],
		      const uint64_t in_count[3], int n_inputs)
{
	struct vgpu_ring_desc d = { .request_id = s->id, .op = (uint16_t)op, .params = *params };
	int rc;

	for (int i = 0; i < n_inputs; i++) {
		rc = shm_place(c, s, i, in[i], in_count[i] * sizeof(float), true, &d.in_off[i]);
		if (rc != VGPU_OK)
			return rc;
	}
	/* An output that is its own input (saxpy's y, sgemm's C) shares the
	 * input's block; any other gets its own. */
	int inplace = vgpu_proto_inplace_input(op);

	if (inplace >= 0 && s->out == in[inplace]) {
		d.out_off = d.in_off[inplace];
		s->stage[3] = s->stage[inplace];
		s->stage[inplace] = NULL;
	} else {
		rc = shm_place(c, s, 3, s->out, s->out_count * sizeof(float), false, &d.out_off);
		if (rc != VGPU_OK)
			return rc;
	}
	rc = vgpu_shm_submit(c->shm, &d);
	if (rc != VGPU_OK)
		fail_connection(c, rc, "%s", c->shm->why);
	return rc;
}

/* Take every completion in the ring. */
static int shm_drain(vgpu_client *c)
{
	struct vgpu_ring_cqe e;
	int rc;

	if (c->broken)
		return c->broken;
	while ((rc = vgpu_shm_next(c->shm, &e)) == VGPU_OK) {
		struct pending *s = find(c, e.request_id);

		if (!s || s->done) {
			fail_connection(c, VGPU_PROTOCOL, "completion for unknown request %llu",
					(unsigned long long)e.request_id);
			return VGPU_PROTOCOL;
		}
		s->status = e.status;
		s->timing.queue_ns = e.queue_ns;
		s->timing.exec_ns = e.exec_ns;
		if (e.status == VGPU_OK && s->stage[3])
			memcpy(s->out, s->stage[3], s->out_count * sizeof(float));
		complete(s);
	}
	if (rc != VGPU_TIMEOUT) {
		fail_connection(c, rc, "%s", c->shm->why);
		return rc;
	}
	return VGPU_OK;
}

int vgpu_submit(vgpu_client *c, int op, const struct vgpu_op_params *params,
		const float *const in[3], float *out, uint64_t *ret_request_id)
{
	uint8_t prefix[VGPU_PROTO_HEADER_SIZE + VGPU_PROTO_PARAMS_SIZE];
	uint8_t *block = prefix + VGPU_PROTO_HEADER_SIZE;
	struct vgpu_msg_header h = { .type = VGPU_MSG_REQUEST };
	uint64_t in_count[3], out_count, payload = VGPU_PROTO_PARAMS_SIZE;
	struct iovec iov[4];
	struct pending *s;
	int n_inputs, rc;

	if (!c || !params || !in || !out || !ret_request_id)
		return VGPU_INVALID_PARAM;
	rc = vgpu_proto_op_shape(op, params, &c->limits, &n_inputs, in_count, &out_count);
	if (rc != VGPU_OK)
		return rc;
	for (int i = 0; i < n_inputs; i++) {
		if (!in[i])
			return VGPU_INVALID_PARAM;
		payload += in_count[i] * sizeof(float);
	}
	if (payload > c->limits.max_payload)
		return VGPU_LIMIT;
	if (c->broken)
		return c->broken;
	if (c->outstanding >= VGPU_CLIENT_MAX_OUTSTANDING)
		return VGPU_LIMIT;

	rc = take_slot(c, &s);
	if (rc != VGPU_OK)
		return rc;
	s->op = (uint16_t)op;
	s->out = out;
	s->out_count = out_count;
	s->submit_ns = vgpu_now_ns();

	if (c->shm) {
		rc = shm_submit(c, s, op, params, in, in_count, n_inputs);
		if (rc != VGPU_OK) {
			release(c, s);
			return rc;
		}
		*ret_request_id = s->id;
		return VGPU_OK;
	}
	vgpu_proto_encode_params(params, block);
	h.op = (uint16_t)op;
	h.request_id = s->id;
	h.payload_len = (uint32_t)payload;
	vgpu_proto_encode_header(&h, prefix);
	h.checksum = vgpu_proto_checksum(prefix, block, VGPU_PROTO_PARAMS_SIZE);
	vgpu_proto_encode_header(&h, prefix);

	iov[0].iov_base = prefix;
	iov[0].iov_len = sizeof(prefix);
	for (int i = 0; i < n_inputs; i++) {
		iov[1 + i].iov_base = (void *)(uintptr_t)in[i];
		iov[1 + i].iov_len = (size_t)(in_count[i] * sizeof(float));
	}
	rc = send_all(c, iov, 1 + n_inputs);
	if (rc != VGPU_OK) {
		release(c, s);
		return rc;
	}
	*ret_request_id = s->id;
	return VGPU_OK;
}

int vgpu_wait(vgpu_client *c, uint64_t request_id, int timeout_ms,
	      struct vgpu_timing *ret_timing)
{
	struct pending *s;
	uint64_t deadline = 0;
	int status;

	if (!c || timeout_ms < -1)
		return VGPU_INVALID_PARAM;
	s = find(c, request_id);
	if (!s)
		return VGPU_NOT_FOUND;
	if (timeout_ms >= 0)
		deadline = vgpu_now_ns() + (uint64_t)timeout_ms * 1000000u;
	uint64_t spin_until = timeout_ms == 0 ? 0 : vgpu_now_ns() + c->spin_ns;
	if (c->shm && spin_until && c->spin_ns)
		vgpu_shm_spinning(c->shm, true); /* no signals while we look */
	while (!s->done) {
		size_t got = 0;
		int wait_ms = -1, ready;

		if (c->shm) {
			if (shm_drain(c) != VGPU_OK || s->done)
				break; /* the connection failed (s is done), or s is */
		} else {
			if (recv_step(c, &got) != VGPU_OK)
				break; /* the connection failed: s is done */
			if (got)
				continue;
		}
		uint64_t now = vgpu_now_ns();
		if (now < spin_until && (timeout_ms < 0 || now < deadline)) {
			vgpu_cpu_relax();
			continue;
		}
		if (timeout_ms >= 0) {
			if (now >= deadline)
				return VGPU_TIMEOUT;
			wait_ms = (int)((deadline - now + 999999u) / 1000000u);
		}
		if (c->shm) {
			if (vgpu_shm_spinning(c->shm, false))
				continue; /* came as we stopped looking */
			if (vgpu_shm_wait(c->shm, wait_ms) != VGPU_OK && shm_drain(c) == VGPU_OK &&
			    !s->done)
				fail_connection(c, VGPU_IO_ERROR, "%s", c->shm->why);
		} else if (c->t->ops->wait(c->t, VGPU_TRANSPORT_RECV, wait_ms, &ready) != VGPU_OK) {
			fail_connection(c, VGPU_IO_ERROR, "waiting on the connection failed");
		}
	}
	status = s->status;
	if (status == VGPU_OK && ret_timing)
		*ret_timing = s->timing;
	release(c, s);
	return status;
}

int vgpu_buffer_alloc(vgpu_client *c, size_t size, void **ret)
{
	void *p;

	if (!c || !ret)
		return VGPU_INVALID_PARAM;
	if (c->shm) {
		int rc = vgpu_shm_alloc(c->shm, size, &p);

		if (rc != VGPU_OK)
			return rc;
	} else {
		size_t bytes = size ? (size + 63) & ~(size_t)63 : 64;

		if (bytes < size || !(p = aligned_alloc(64, bytes)))
			return VGPU_NO_MEMORY;
	}
	*ret = p;
	return VGPU_OK;
}

int vgpu_buffer_free(vgpu_client *c, void *p)
{
	if (!c)
		return VGPU_INVALID_PARAM;
	if (!p)
		return VGPU_OK;
	if (c->shm)
		return vgpu_shm_free(c->shm, p) == VGPU_OK ? VGPU_OK : VGPU_INVALID_PARAM;
	free(p);
	return VGPU_OK;
}
