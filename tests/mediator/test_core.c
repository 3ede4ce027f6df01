/* SPDX-License-Identifier: MIT */
/*
 * test_core.c - the mediator's core (core.c, request.c, the queue, the
 * dispatcher, the CPU backend, a real SQLite registry) driven through a
 * transport of the test's own, registered as the real ones are:
 * - transports are registered, not numbered: two of them each find their
 *   own global and per-VM state, every VM is added to and removed from
 *   both, one cannot be registered twice;
 * - a request goes head, buffers, payload, queue, backend and back to the
 *   transport, with the right result;
 * - admission answers before it allocates: a bad checksum, a vm_id that is
 *   not the channel's, a request over the VM's budget, one at shutdown;
 *   the VM holds nothing afterwards;
 * - under a backend that pins host memory, buffers it has not cached are
 *   made on a worker thread, never on the loop thread, and the request
 *   goes on from there. That backend is the CPU backend itself with two
 *   ops changed ("nothing is cached"): what is tested is the core's way
 *   of using them; the CUDA backend's own runs on the GPU machine
 *   (tests/backend/cuda-check.c, tests/e2e/test-pin-churn.sh);
 * - the ring server (transport/ring.c, shared by the shm: windows and the
 *   device's windows in guest RAM) through a zero-copy test transport on
 *   a window of plain memory: descriptors written as a client writes
 *   them are served in place; bad ones (offsets into the rings or past
 *   the window, reserved bits, another vm_id) each get their error while
 *   the good one is served; a submission tail out of range stops the
 *   service and tells the owner; a closed server is released only once
 *   its requests are answered, and the VM holds nothing afterwards.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf.h"
#include "mediator.h"
#include "transport/ring.h"
#include "vgpu_ring.h"

#define UUID1 "6f1c2a10-0000-4000-8000-0000000c0001"
#define UUID2 "6f1c2a10-0000-4000-8000-0000000c0002"
#define MAX_ANSWERS 16
#define N 1000 /* floats per vector */

extern const struct vgpu_transport test_a, test_b, test_r;

struct answer {
	uint64_t id;
	int status;
	size_t out_count;
	float out[N];
};

/* Transport A's state: what happened to it, and the answers it was given. */
struct ta_ctx {
	int added, removed, stopped;
	int n_answers;
	struct answer answers[MAX_ANSWERS];
	uint8_t *msg; /* the request being admitted: its payload comes from here */
	pthread_t loop_thread;
	int ready_off_loop;  /* payload_ready() calls not on the loop thread */
};

static struct ta_ctx ta;
static int tb_ctx_marker, tb_added, tb_removed;
static char state_a[4] = "a", state_b[4] = "b"; /* per-VM states: a pointer is enough */

static int a_start(struct mediator *m)
{
	vgpu_transport_set_ctx(m, &test_a, &ta);
	return VGPU_OK;
}

static void nothing(struct mediator *m)
{
	(void)m;
}

static void a_stop(struct mediator *m)
{
	(void)m;
	ta.stopped++;
}

static int a_vm_added(struct mediator *m, struct vgpu_vm *vm)
{
	vgpu_vm_set_state(m, vm, &test_a, state_a);
	ta.added++;
	return VGPU_OK;
}

static void a_vm_removed(struct mediator *m, struct vgpu_vm *vm)
{
	assert_ptr_equal(vgpu_vm_state(m, vm->slot, &test_a), state_a);
	vgpu_vm_set_state(m, vm, &test_a, NULL);
	ta.removed++;
}

/* A stream transport's answer: the response prefix, then the output. */
static void a_respond(struct mediator *m, struct vgpu_request *req)
{
	struct ta_ctx *t = vgpu_transport_ctx(m, &test_a);

	assert_ptr_equal(t, &ta);
	assert_true(t->n_answers < MAX_ANSWERS);
	struct answer *a = &t->answers[t->n_answers++];
	a->id = req->request_id;
	a->status = req->status;
	a->out_count = (req->resp_len - VGPU_PROTO_RESPONSE_PREFIX) / sizeof(float);
	assert_true(a->out_count <= N);
	memcpy(a->out, req->resp + VGPU_PROTO_RESPONSE_PREFIX, a->out_count * sizeof(float));
	vgpu_request_free(req);
}

static uint64_t a_pending(struct mediator *m)
{
	(void)m;
	return 0;
}

const struct vgpu_transport test_a = {
	.name = "test-a",
	.start = a_start,
	.stop_accepting = nothing,
	.stop = a_stop,
	.vm_added = a_vm_added,
	.vm_removed = a_vm_removed,
	.respond = a_respond,
	.pending = a_pending,
};

static int b_start(struct mediator *m)
{
	vgpu_transport_set_ctx(m, &test_b, &tb_ctx_marker);
	return VGPU_OK;
}

static int b_vm_added(struct mediator *m, struct vgpu_vm *vm)
{
	vgpu_vm_set_state(m, vm, &test_b, state_b);
	tb_added++;
	return VGPU_OK;
}

static void b_vm_removed(struct mediator *m, struct vgpu_vm *vm)
{
	assert_ptr_equal(vgpu_vm_state(m, vm->slot, &test_b), state_b);
	vgpu_vm_set_state(m, vm, &test_b, NULL);
	tb_removed++;
}

static void b_respond(struct mediator *m, struct vgpu_request *req)
{
	(void)m;
	vgpu_request_free(req);
}

/* A second transport that takes no requests: only its state is looked at. */
const struct vgpu_transport test_b = {
	.name = "test-b",
	.start = b_start,
	.stop_accepting = nothing,
	.stop = nothing,
	.vm_added = b_vm_added,
	.vm_removed = b_vm_removed,
	.respond = b_respond,
	.pending = a_pending,
};

/* Transport R: zero-copy, its windows served by ring.c as shm.c's and
 * device.c's are. No state of its own. */
struct tr_server {
	struct vgpu_ring_server rs;
	int abused, released;
};
static uint64_t tr_pending;

static int r_start(struct mediator *m)
{
	(void)m;
	return VGPU_OK;
}

static int r_vm_added(struct mediator *m, struct vgpu_vm *vm)
{
	(void)m;
	(void)vm;
	return VGPU_OK;
}

static void r_vm_removed(struct mediator *m, struct vgpu_vm *vm)
{
	(void)m;
	(void)vm;
}

static uint64_t r_pending(struct mediator *m)
{
	(void)m;
	return __atomic_load_n(&tr_pending, __ATOMIC_RELAXED);
}

static void r_abused(struct vgpu_ring_server *rs)
{
	((struct tr_server *)(void *)rs)->abused++;
}

static void r_released(struct vgpu_ring_server *rs)
{
	((struct tr_server *)(void *)rs)->released++;
}

const struct vgpu_transport test_r = {
	.name = "test-ring",
	.zero_copy = true,
	.start = r_start,
	.stop_accepting = nothing,
	.stop = nothing,
	.vm_added = r_vm_added,
	.vm_removed = r_vm_removed,
	.respond = vgpu_ring_respond,
	.complete = vgpu_ring_complete,
	.pending = r_pending,
};

/* The CPU backend as a backend that pins would look to the core: nothing
 * is ever cached, so every request's buffers are made on a worker. It
 * counts the buffers made on the loop thread and elsewhere. */
static struct vgpu_backend_ops pinning;
static int allocs_on_loop, allocs_off_loop;

static bool never_cached(void *ctx, size_t size)
{
	(void)ctx;
	(void)size;
	return false;
}

static void *nothing_cached(void *ctx, size_t size)
{
	(void)ctx;
	(void)size;
	return NULL;
}

static void *counted_alloc(void *ctx, size_t size)
{
	if (pthread_equal(pthread_self(), ta.loop_thread))
		__atomic_add_fetch(&allocs_on_loop, 1, __ATOMIC_RELAXED);
	else
		__atomic_add_fetch(&allocs_off_loop, 1, __ATOMIC_RELAXED);
	return vgpu_backend_cpu.host_alloc(ctx, size);
}

struct fixture {
	struct mediator m;
	char dir[64];
};

/* A registry in a fresh directory with VM 1 (vm_id 1) and VM 2 (vm_id 2);
 * a mediator on the CPU backend with transports A and B, started; @kv
 * (NULL-terminated "key", "value" pairs) changes settings first. */
static struct fixture *start_with(const struct vgpu_backend_ops *backend, const char *const *kv)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[512];
	vgpu_db *db;

	assert_non_null(f);
	memset(&ta, 0, sizeof(ta));
	ta.loop_thread = pthread_self();
	tb_added = tb_removed = 0;
	allocs_on_loop = allocs_off_loop = 0;
	snprintf(f->dir, sizeof(f->dir), "/tmp/vgpu-core-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(vgpu_conf_defaults(vgpu_mediator_options, &f->m.set), VGPU_OK);
	snprintf(f->m.set.db, sizeof(f->m.set.db), "%s/registry.db", f->dir);
	snprintf(f->m.set.backend, sizeof(f->m.set.backend), "cpu");
	f->m.set.cpu_threads = 2;
	f->m.set.max_vms = 4;
	for (int i = 0; kv && kv[i]; i += 2)
		assert_int_equal(vgpu_conf_set(vgpu_mediator_options, &f->m.set, kv[i], kv[i + 1],
					       err, sizeof(err)),
				 VGPU_OK);
	assert_int_equal(vgpu_db_init(f->m.set.db, 0, &db, err, sizeof(err)), VGPU_OK);
	assert_int_equal(vgpu_register_vm(db, UUID1, "one", 'A', 2, 1, NULL), VGPU_OK);
	assert_int_equal(vgpu_register_vm(db, UUID2, "two", 'B', 0, 2, NULL), VGPU_OK);
	vgpu_db_close(db);

	f->m.backend = backend; /* NULL: the settings' (cpu) */
	assert_int_equal(vgpu_mediator_init(&f->m), VGPU_OK);
	assert_int_equal(vgpu_mediator_add_transport(&f->m, &test_a), VGPU_OK);
	assert_int_equal(vgpu_mediator_add_transport(&f->m, &test_b), VGPU_OK);
	assert_int_equal(vgpu_mediator_add_transport(&f->m, &test_r), VGPU_OK);
	assert_int_equal(vgpu_mediator_start(&f->m), VGPU_OK);
	return f;
}

static struct fixture *start(const char *const *kv)
{
	return start_with(NULL, kv);
}

static void stop(struct fixture *f)
{
	char path[96];

	f->m.stopping = true;
	vgpu_mediator_stop_accepting(&f->m);
	for (int i = 0; i < 200 && !vgpu_mediator_drained(&f->m); i++)
		vgpu_loop_run_once(f->m.loop, 10);
	assert_true(vgpu_mediator_drained(&f->m));
	vgpu_dispatcher_join(&f->m);
	vgpu_mediator_fini(&f->m);
	assert_int_equal(ta.removed, 2);
	assert_int_equal(tb_removed, 2);
	assert_int_equal(ta.stopped, 1);
	static const char *const files[] = { "registry.db", "registry.db-wal", "registry.db-shm" };
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", f->dir, files[i]);
		unlink(path);
	}
	assert_int_equal(rmdir(f->dir), 0);
	free(f);
}

/* Send a vector_add of a[i] = i, b[i] = 2i (@n floats) as VM @uuid's request
 * @id over transport A; @vm_id goes in its parameter block, @corrupt
 * breaks its checksum. The status head() returned. */
static void payload_ready(void *ctx, struct vgpu_request *req, int rc);

static int send_vadd(struct fixture *f, const char *uuid, uint64_t id, uint32_t n, uint32_t vm_id,
		     bool corrupt)
{
	struct vgpu_op_params p = { .vm_id = vm_id, .n = n };
	float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
	const float *in[3] = { a, b, NULL };
	struct vgpu_msg_header h;
	struct vgpu_request *req = NULL;
	size_t len;

	assert_non_null(a);
	assert_non_null(b);
	for (uint32_t i = 0; i < n; i++) {
		a[i] = (float)i;
		b[i] = 2.0f * (float)i;
	}
	assert_int_equal(vgpu_proto_build_request(id, VGPU_OP_VECTOR_ADD, &p, in, &f->m.limits, &ta.msg,
						  &len),
			 VGPU_OK);
	free(a);
	free(b);
	if (corrupt)
		ta.msg[VGPU_PROTO_HEADER_SIZE] ^= 1; /* the parameter block, not the checksum */
	assert_int_equal(vgpu_proto_decode_header(ta.msg, &f->m.limits, &h), VGPU_OK);
	struct vgpu_vm *vm = vgpu_vm_by_uuid(&f->m, uuid);
	assert_non_null(vm);
	int rc = vgpu_request_head(&f->m, vm, &test_a, &ta, ta.msg, &h,
				   ta.msg + VGPU_PROTO_HEADER_SIZE, &req);
	if (rc == VGPU_OK) {
		vgpu_request_alloc(req, payload_ready); /* frees ta.msg, at once or later */
		return rc;
	}
	free(ta.msg);
	ta.msg = NULL;
	return rc;
}

/* The buffers are there: copy the payload in (the transport's part). */
static void payload_ready(void *ctx, struct vgpu_request *req, int rc)
{
	assert_ptr_equal(ctx, &ta);
	assert_int_equal(rc, VGPU_OK);
	assert_non_null(ta.msg);
	if (!pthread_equal(pthread_self(), ta.loop_thread))
		ta.ready_off_loop++;
	memcpy(req->payload + VGPU_PROTO_PARAMS_SIZE,
	       ta.msg + VGPU_PROTO_HEADER_SIZE + VGPU_PROTO_PARAMS_SIZE,
	       req->payload_len - VGPU_PROTO_PARAMS_SIZE);
	free(ta.msg);
	ta.msg = NULL;
	vgpu_request_submit(req, &req->m->vms[req->vm_slot]);
}

static void wait_answers(struct fixture *f, int count)
{
	for (int i = 0; i < 500 && ta.n_answers < count; i++)
		vgpu_loop_run_once(f->m.loop, 10);
	assert_int_equal(ta.n_answers, count);
}

static uint64_t held(struct fixture *f, const char *uuid, enum vgpu_budget_kind kind)
{
	struct vgpu_budget_usage u;

	vgpu_budget_usage(f->m.budget, vgpu_vm_by_uuid(&f->m, uuid)->slot, &u);
	return u.held[kind];
}

static void test_registered(void **state)
{
	(void)state;
	struct fixture *f = start(NULL);

	assert_ptr_equal(vgpu_transport_ctx(&f->m, &test_a), &ta);
	assert_ptr_equal(vgpu_transport_ctx(&f->m, &test_b), &tb_ctx_marker);
	assert_int_equal(vgpu_mediator_add_transport(&f->m, &test_a), VGPU_EXISTS);
	assert_int_equal(ta.added, 2);
	assert_int_equal(tb_added, 2);
	static const char *const uuids[] = { UUID1, UUID2 };

	for (int i = 0; i < 2; i++) {
		struct vgpu_vm *vm = vgpu_vm_by_uuid(&f->m, uuids[i]);

		assert_non_null(vm);
		assert_ptr_equal(vgpu_vm_state(&f->m, vm->slot, &test_a), state_a);
		assert_ptr_equal(vgpu_vm_state(&f->m, vm->slot, &test_b), state_b);
	}
	/* A transport never registered has no state. */
	static const struct vgpu_transport unregistered = { .name = "unregistered" };
	assert_null(vgpu_transport_ctx(&f->m, &unregistered));
	assert_null(vgpu_vm_state(&f->m, 0, &unregistered));
	stop(f);
}

static void test_request_served(void **state)
{
	(void)state;
	struct fixture *f = start(NULL);

	assert_int_equal(send_vadd(f, UUID1, 7, N, 0, false), VGPU_OK);
	assert_int_equal(send_vadd(f, UUID2, 8, N, 2, false), VGPU_OK);
	wait_answers(f, 2);
	for (int k = 0; k < 2; k++) {
		struct answer *a = &ta.answers[k];

		assert_int_equal(a->status, VGPU_OK);
		assert_true(a->id == 7 || a->id == 8);
		assert_int_equal(a->out_count, N);
		for (uint32_t i = 0; i < N; i++)
			assert_true(a->out[i] == 3.0f * (float)i);
	}
	assert_int_equal(held(f, UUID1, VGPU_BUDGET_BYTES), 0);
	assert_int_equal(held(f, UUID1, VGPU_BUDGET_REQUESTS), 0);
	stop(f);
}

static void test_refused_before_allocation(void **state)
{
	(void)state;
	static const char *const kv[] = { "vm_buffer_mib", "1", NULL };
	struct fixture *f = start(kv);

	/* Each is answered from the head, at once: nothing to wait for. */
	assert_int_equal(send_vadd(f, UUID1, 1, N, 0, true), VGPU_PROTOCOL);
	assert_int_equal(send_vadd(f, UUID1, 2, N, 2, false), VGPU_DENIED);
	assert_int_equal(send_vadd(f, UUID1, 3, 256 * 1024, 0, false), VGPU_LIMIT);
	assert_int_equal(ta.n_answers, 3);
	assert_int_equal(ta.answers[0].status, VGPU_PROTOCOL);
	assert_int_equal(ta.answers[1].status, VGPU_DENIED);
	assert_int_equal(ta.answers[2].status, VGPU_LIMIT);
	for (int k = 0; k < 3; k++)
		assert_int_equal(ta.answers[k].out_count, 0);
	assert_int_equal(held(f, UUID1, VGPU_BUDGET_BYTES), 0);
	assert_int_equal(held(f, UUID1, VGPU_BUDGET_REQUESTS), 0);
	/* The VM goes on: a good request is served. */
	assert_int_equal(send_vadd(f, UUID1, 4, N, 1, false), VGPU_OK);
	wait_answers(f, 4);
	assert_int_equal(ta.answers[3].status, VGPU_OK);
	/* At shutdown a new request is refused, answered, and holds nothing. */
	f->m.stopping = true;
	assert_int_equal(send_vadd(f, UUID2, 5, N, 0, false), VGPU_SHUTDOWN);
	assert_int_equal(ta.answers[4].status, VGPU_SHUTDOWN);
	assert_int_equal(held(f, UUID2, VGPU_BUDGET_BYTES), 0);
	stop(f);
}

static void test_buffers_on_worker(void **state)
{
	(void)state;
	pinning = vgpu_backend_cpu;
	pinning.host_alloc = counted_alloc;
	pinning.host_cached = never_cached;
	pinning.host_alloc_cached = nothing_cached;
	struct fixture *f = start_with(&pinning, NULL);

	/* One at a time: the payload comes from ta.msg, and the transport
	 * reads no further until the buffers are there. */
	for (uint64_t id = 1; id <= 3; id++) {
		assert_int_equal(send_vadd(f, UUID1, id, N, 0, false), VGPU_OK);
		assert_non_null(ta.msg); /* not at once: a worker makes them */
		for (int i = 0; i < 500 && ta.msg; i++)
			vgpu_loop_run_once(f->m.loop, 10);
		assert_null(ta.msg);
	}
	wait_answers(f, 3);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(ta.answers[k].status, VGPU_OK);
		assert_int_equal(ta.answers[k].out_count, N);
		assert_true(ta.answers[k].out[N - 1] == 3.0f * (float)(N - 1));
	}
	assert_int_equal(allocs_on_loop, 0);
	assert_int_equal(allocs_off_loop, 6); /* a payload and an answer each */
	assert_int_equal(ta.ready_off_loop, 0);
	assert_int_equal(held(f, UUID1, VGPU_BUDGET_BYTES), 0);
	stop(f);
}

/* Write descriptor @d in slot @i of @mem's submission ring. */
static void put_desc(uint8_t *mem, uint32_t i, uint64_t id, uint16_t flags, uint32_t vm_id,
		     uint32_t a_off, uint32_t b_off, uint32_t out_off)
{
	struct vgpu_ring_desc d = {
		.request_id = id,
		.op = VGPU_OP_VECTOR_ADD,
		.flags = flags,
		.params = { .vm_id = vm_id, .n = N },
		.in_off = { a_off, b_off, 0 },
		.out_off = out_off,
	};

	vgpu_ring_encode_desc(&d, mem + VGPU_RING_SQ_OFFSET +
					  (size_t)(i % VGPU_RING_ENTRIES) * VGPU_RING_DESC_SIZE);
}

static uint32_t *ring_index(uint8_t *mem, size_t off)
{
	return (uint32_t *)(void *)(mem + off);
}

/* A ring window served for UUID1 by the test transport: a + b = out's
 * arrays filled in, the doorbell and our end of the signal pair. */
struct tr_ring {
	struct tr_server srv;
	uint8_t *mem;
	size_t size;
	uint32_t a, b, out;
	int doorbell, signals;
};

static void ring_open(struct fixture *f, struct tr_ring *r)
{
	int pair[2] = { -1, -1 }; /* completion signals: [0] the server's, [1] ours */

	*r = (struct tr_ring){ .size = VGPU_RING_DATA_OFFSET + (1u << 20) };
	r->a = VGPU_RING_DATA_OFFSET;
	r->b = r->a + N * 4;
	r->out = r->b + N * 4;
	r->mem = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	r->doorbell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(r->mem != MAP_FAILED);
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair), 0);
	assert_true(r->doorbell >= 0);
	r->signals = pair[1];
	vgpu_ring_init_window(r->mem, r->size);
	for (uint32_t i = 0; i < N; i++) {
		((float *)(void *)(r->mem + r->a))[i] = (float)i;
		((float *)(void *)(r->mem + r->b))[i] = 2.0f * (float)i;
	}
	r->srv.rs.m = &f->m;
	r->srv.rs.transport = &test_r;
	r->srv.rs.mem = r->mem;
	r->srv.rs.size = r->size;
	r->srv.rs.pending = &tr_pending;
	r->srv.rs.abused = r_abused;
	r->srv.rs.release = r_released;
	assert_int_equal(vgpu_ring_serve(&r->srv.rs, vgpu_vm_by_uuid(&f->m, UUID1), dup(r->doorbell),
					 pair[0]),
			 VGPU_OK);
}

/* Closed: released once what it took is answered; nothing held after. */
static void ring_close(struct fixture *f, struct tr_ring *r)
{
	vgpu_ring_close(&r->srv.rs);
	for (int i = 0; i < 500 && !r->srv.released; i++)
		vgpu_loop_run_once(f->m.loop, 10);
	assert_int_equal(r->srv.released, 1);
	assert_int_equal(r_pending(&f->m), 0);
	assert_int_equal(held(f, UUID1, VGPU_BUDGET_REQUESTS), 0);
	munmap(r->mem, r->size);
	close(r->doorbell);
	close(r->signals);
}

static void test_ring_server(void **state)
{
	(void)state;
	struct fixture *f = start(NULL);
	struct tr_ring r;
	ring_open(f, &r);
	uint8_t *mem = r.mem;
	const size_t size = r.size;
	const uint32_t a = r.a, b = r.b, out = r.out;
	int doorbell = r.doorbell;
	uint64_t one = 1;
	char sig;

	/* The client's part: descriptors, then the tail, then the doorbell. */
	put_desc(mem, 0, 1, 0, 0, a, b, out);                         /* good */
	put_desc(mem, 1, 2, 0, 0, a, b, VGPU_RING_SQ_OFFSET);         /* output into the ring */
	put_desc(mem, 2, 3, 0, 0, a, (uint32_t)size - 4, out);        /* input past the window */
	put_desc(mem, 3, 4, 1, 0, a, b, out);                         /* reserved flags */
	put_desc(mem, 4, 5, 0, 2, a, b, out);                         /* VM 2's vm_id */
	__atomic_store_n(ring_index(mem, VGPU_RING_OFF_SQ_TAIL), 5, __ATOMIC_RELEASE);
	assert_int_equal(write(doorbell, &one, sizeof(one)), sizeof(one));
	for (int i = 0; i < 500 && __atomic_load_n(ring_index(mem, VGPU_RING_OFF_CQ_TAIL),
						    __ATOMIC_ACQUIRE) < 5; i++)
		vgpu_loop_run_once(f->m.loop, 10);
	assert_int_equal(*ring_index(mem, VGPU_RING_OFF_CQ_TAIL), 5);
	assert_int_equal(*ring_index(mem, VGPU_RING_OFF_SQ_HEAD), 5);
	static const int expect[6] = { 0, VGPU_OK, VGPU_INVALID_PARAM, VGPU_INVALID_PARAM,
				       VGPU_PROTOCOL, VGPU_DENIED };
	int seen[6] = { 0 };
	for (uint32_t i = 0; i < 5; i++) {
		struct vgpu_ring_cqe e;

		assert_int_equal(vgpu_ring_decode_cqe(mem + VGPU_RING_CQ_OFFSET +
							      i * VGPU_RING_CQE_SIZE, &e),
				 VGPU_OK);
		assert_true(e.request_id >= 1 && e.request_id <= 5);
		assert_int_equal(e.status, expect[e.request_id]);
		seen[e.request_id]++;
	}
	for (int id = 1; id <= 5; id++)
		assert_int_equal(seen[id], 1);
	/* Signalled on the socket, and the doorbell never read (edge-triggered:
	 * a client turning O_NONBLOCK off cannot block the loop on it). */
	assert_int_equal(recv(r.signals, &sig, 1, MSG_DONTWAIT), 1);
	uint64_t rung = 0;
	assert_int_equal(read(doorbell, &rung, sizeof(rung)), sizeof(rung));
	assert_int_equal(rung, 1);
	for (uint32_t i = 0; i < N; i++)
		assert_true(((float *)(void *)(mem + out))[i] == 3.0f * (float)i);
	__atomic_store_n(ring_index(mem, VGPU_RING_OFF_CQ_HEAD), 5, __ATOMIC_RELEASE);

	/* A request in flight when the client breaks the rules: the tail
	 * runs more than the ring ahead. Service stops, the owner hears. */
	put_desc(mem, 5, 6, 0, 0, a, b, out);
	__atomic_store_n(ring_index(mem, VGPU_RING_OFF_SQ_TAIL), 6, __ATOMIC_RELEASE);
	assert_int_equal(write(doorbell, &one, sizeof(one)), sizeof(one));
	vgpu_loop_run_once(f->m.loop, 10);
	__atomic_store_n(ring_index(mem, VGPU_RING_OFF_SQ_TAIL), 6 + VGPU_RING_ENTRIES + 1,
			 __ATOMIC_RELEASE);
	assert_int_equal(write(doorbell, &one, sizeof(one)), sizeof(one));
	for (int i = 0; i < 100 && !r.srv.abused; i++)
		vgpu_loop_run_once(f->m.loop, 10);
	assert_int_equal(r.srv.abused, 1);
	/* Closed: released once request 6 (if still running) is answered. */
	ring_close(f, &r);
	stop(f);
}

/* Turns of the loop, polling, until @mem's completion tail reaches @n. */
static void turn_until(struct fixture *f, uint8_t *mem, uint32_t n)
{
	uint64_t until = vgpu_now_ns() + 1000000000u;

	for (int i = 0; i < 1000000 && __atomic_load_n(ring_index(mem, VGPU_RING_OFF_CQ_TAIL),
							 __ATOMIC_ACQUIRE) < n; i++)
		vgpu_mediator_turn(&f->m, &until);
	assert_int_equal(*ring_index(mem, VGPU_RING_OFF_CQ_TAIL), n);
	/* And the backend through with them: their signals sent, or not. */
	for (int i = 0; i < 1000 && vgpu_dispatcher_inflight(&f->m, UINT32_MAX) > 0; i++)
		usleep(1000);
	assert_int_equal(vgpu_dispatcher_inflight(&f->m, UINT32_MAX), 0);
}

/* A turn that polls: every served ring watched (SQ_FLAGS) until the next
 * turn, however long the last one took (sanitizers). */
static void watch_now(struct fixture *f, uint8_t *mem)
{
	uint64_t until = vgpu_now_ns() + 1000000000u;

	vgpu_mediator_turn(&f->m, &until);
	assert_int_equal(*ring_index(mem, VGPU_RING_OFF_SQ_FLAGS), VGPU_RING_SQ_WATCHED);
}

/* Doorbell and signal suppression (vgpu_ring.h): while the loop polls it
 * watches the submission tail and says so; descriptors published without
 * a doorbell are taken then, and as the loop stops watching; a client
 * spinning on its completions gets no signals. */
static void test_ring_watch(void **state)
{
	(void)state;
	struct fixture *f = start(NULL);
	struct tr_ring r;
	uint64_t until, rung;
	char sig;

	ring_open(f, &r);
	uint32_t *flags = ring_index(r.mem, VGPU_RING_OFF_SQ_FLAGS);

	/* Polling: watched. A descriptor, no doorbell, taken; the client
	 * spins (CQ_FLAGS): no signal. */
	watch_now(f, r.mem);
	__atomic_store_n(ring_index(r.mem, VGPU_RING_OFF_CQ_FLAGS), VGPU_RING_CQ_POLLING,
			 __ATOMIC_SEQ_CST);
	put_desc(r.mem, 0, 1, 0, 0, r.a, r.b, r.out);
	assert_false(vgpu_ring_publish(r.mem, 1)); /* no doorbell needed */
	turn_until(f, r.mem, 1);
	for (uint32_t i = 0; i < N; i++)
		assert_true(((float *)(void *)(r.mem + r.out))[i] == 3.0f * (float)i);
	assert_int_equal(recv(r.signals, &sig, 1, MSG_DONTWAIT), -1);
	/* The client sleeps: signalled again. */
	__atomic_store_n(ring_index(r.mem, VGPU_RING_OFF_CQ_FLAGS), 0, __ATOMIC_SEQ_CST);
	put_desc(r.mem, 1, 2, 0, 0, r.a, r.b, r.out);
	watch_now(f, r.mem);
	assert_false(vgpu_ring_publish(r.mem, 2));
	turn_until(f, r.mem, 2);
	assert_int_equal(recv(r.signals, &sig, 1, MSG_DONTWAIT), 1);

	/* Published while watched, and the loop stops watching before it
	 * looked: the turn that clears the flag takes it, and polls on. */
	put_desc(r.mem, 2, 3, 0, 0, r.a, r.b, r.out);
	watch_now(f, r.mem);
	assert_false(vgpu_ring_publish(r.mem, 3));
	until = 0;
	vgpu_mediator_turn(&f->m, &until);
	assert_int_equal(*ring_index(r.mem, VGPU_RING_OFF_SQ_HEAD), 3);
	assert_true(until > 0); /* polling on */
	turn_until(f, r.mem, 3); /* its output is the next one's */
	/* No activity for poll_us: the flag is cleared before the loop
	 * sleeps, and the client rings. */
	until = vgpu_now_ns();
	for (int i = 0; i < 1000000 && *flags; i++)
		vgpu_mediator_turn(&f->m, &until);
	assert_int_equal(*flags, 0);
	put_desc(r.mem, 3, 4, 0, 0, r.a, r.b, r.out);
	assert_true(vgpu_ring_publish(r.mem, 4));
	rung = 1;
	assert_int_equal(write(r.doorbell, &rung, sizeof(rung)), sizeof(rung));
	turn_until(f, r.mem, 4);
	__atomic_store_n(ring_index(r.mem, VGPU_RING_OFF_CQ_HEAD), 4, __ATOMIC_RELEASE);

	/* A second window of the VM, whose client breaks the rules with no
	 * doorbell at all (its tail past the ring), while the first
	 * publishes without one; then the loop stops watching. The turn
	 * takes both: the bad ring (the list's first) leaves the list, its
	 * service stops, and the walk still reaches the good one. */
	struct tr_ring bad;

	ring_open(f, &bad);
	assert_ptr_equal(f->m.rings, &bad.srv.rs);
	watch_now(f, r.mem);
	assert_int_equal(*ring_index(bad.mem, VGPU_RING_OFF_SQ_FLAGS), VGPU_RING_SQ_WATCHED);
	__atomic_store_n(ring_index(bad.mem, VGPU_RING_OFF_SQ_TAIL), VGPU_RING_ENTRIES + 1,
			 __ATOMIC_SEQ_CST);
	put_desc(r.mem, 4, 5, 0, 0, r.a, r.b, r.out);
	assert_false(vgpu_ring_publish(r.mem, 5));
	until = 0;
	vgpu_mediator_turn(&f->m, &until);
	assert_int_equal(bad.srv.abused, 1);
	assert_int_equal(*ring_index(bad.mem, VGPU_RING_OFF_SQ_FLAGS), 0);
	assert_int_equal(*ring_index(r.mem, VGPU_RING_OFF_SQ_HEAD), 5);
	assert_ptr_equal(f->m.rings, &r.srv.rs);
	turn_until(f, r.mem, 5);
	ring_close(f, &bad);
	/* The one doorbell written, never read. */
	assert_int_equal(read(r.doorbell, &rung, sizeof(rung)), sizeof(rung));
	assert_int_equal(rung, 1);
	ring_close(f, &r);
	stop(f);
}

/* Publish bad descriptors (reserved flags: answered at once, no backend
 * work) [from, to) with no doorbell, and poll until every one is taken. */
static void publish_bad(struct fixture *f, struct tr_ring *r, uint32_t from, uint32_t to)
{
	uint64_t until = vgpu_now_ns() + 1000000000u;

	for (uint32_t i = from; i < to; i++)
		put_desc(r->mem, i, i + 1, 1, 0, r->a, r->b, r->out);
	vgpu_ring_publish(r->mem, to);
	for (int i = 0; i < 100000 && *ring_index(r->mem, VGPU_RING_OFF_SQ_HEAD) != to &&
			!r->srv.rs.stalled;
	     i++)
		vgpu_mediator_turn(&f->m, &until);
}

/* A client that takes no completions: once the completion ring is full
 * and 1024 answers wait behind it, its next descriptor stalls the ring;
 * polling turns pass it by (no activity, no rounds) until the client
 * takes its completions and rings, as the protocol asks. */
static void test_ring_stalled(void **state)
{
	(void)state;
	struct fixture *f = start(NULL);
	struct tr_ring r;
	uint64_t until;

	ring_open(f, &r);
	watch_now(f, r.mem);
	publish_bad(f, &r, 0, VGPU_RING_ENTRIES);              /* the completion ring full */
	assert_int_equal(*ring_index(r.mem, VGPU_RING_OFF_CQ_TAIL), VGPU_RING_ENTRIES);
	publish_bad(f, &r, VGPU_RING_ENTRIES, 2 * VGPU_RING_ENTRIES); /* answers held back */
	assert_int_equal(*ring_index(r.mem, VGPU_RING_OFF_SQ_HEAD), 2 * VGPU_RING_ENTRIES);
	assert_false(r.srv.rs.stalled);
	publish_bad(f, &r, 2 * VGPU_RING_ENTRIES, 2 * VGPU_RING_ENTRIES + 1);
	assert_true(r.srv.rs.stalled);
	assert_int_equal(*ring_index(r.mem, VGPU_RING_OFF_SQ_HEAD), 2 * VGPU_RING_ENTRIES);
	/* Polling turns: nothing taken, nothing counted as activity. */
	until = vgpu_now_ns() + 1000000000u;
	uint64_t was = until;
	for (int i = 0; i < 100; i++)
		vgpu_mediator_turn(&f->m, &until);
	assert_int_equal(until, was);
	assert_int_equal(*ring_index(r.mem, VGPU_RING_OFF_SQ_HEAD), 2 * VGPU_RING_ENTRIES);
	/* The client takes its completions and rings: the held answers go
	 * out, and the descriptor is taken. */
	__atomic_store_n(ring_index(r.mem, VGPU_RING_OFF_CQ_HEAD), VGPU_RING_ENTRIES,
			 __ATOMIC_SEQ_CST);
	uint64_t one = 1;
	assert_int_equal(write(r.doorbell, &one, sizeof(one)), sizeof(one));
	for (int i = 0; i < 1000 && *ring_index(r.mem, VGPU_RING_OFF_SQ_HEAD) !=
					    2 * VGPU_RING_ENTRIES + 1; i++)
		vgpu_mediator_turn(&f->m, &until);
	assert_int_equal(*ring_index(r.mem, VGPU_RING_OFF_SQ_HEAD), 2 * VGPU_RING_ENTRIES + 1);
	assert_int_equal(*ring_index(r.mem, VGPU_RING_OFF_CQ_TAIL), 2 * VGPU_RING_ENTRIES);
	assert_false(r.srv.rs.stalled);
	ring_close(f, &r);
	stop(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registered),
		cmocka_unit_test(test_request_served),
		cmocka_unit_test(test_refused_before_allocation),
		cmocka_unit_test(test_buffers_on_worker),
		cmocka_unit_test(test_ring_server),
		cmocka_unit_test(test_ring_watch),
		cmocka_unit_test(test_ring_stalled),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
