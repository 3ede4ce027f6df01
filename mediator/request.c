/* SPDX-License-Identifier: MIT */
/*
 * request.c - admission and completion: the part of a request's life that
 * is the same whatever transport it came on.
 *
 * Admission checks, in this order, before anything is allocated for the
 * request's data: the head parses (header, then the parameter block:
 * checksum, sizes against the limits, payload length), the vm_id inside it
 * (if any) is the channel's own (identity comes from the channel, never
 * from the request), the mediator is not stopping, the queue has room,
 * and the VM's budget (budget.h) has room for the request and its buffers.
 * Only then are the payload and response buffers allocated (on a worker
 * thread when the backend must pin memory for them: vgpu_request_alloc())
 * and the rest read. Any failure is answered at once with a status from the error
 * space and counted as rejected; nothing a guest sends can stop the
 * mediator or reach another VM.
 *
 * Every request holds what it took from its VM's budget until it is freed
 * (its answer written or dropped), on whichever thread that happens.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mediator.h"

/* Give back the payload and what it took from the budget. */
static void release_payload(struct vgpu_request *req)
{
	struct mediator *m = req->m;

	if (req->payload)
		m->backend->host_free(m->backend_ctx, req->payload, req->payload_len);
	req->payload = NULL;
	vgpu_budget_give(m->budget, req->vm_slot, VGPU_BUDGET_BYTES, req->payload_held);
	req->payload_held = 0;
}

void vgpu_request_free(struct vgpu_request *req)
{
	if (!req)
		return;
	struct mediator *m = req->m;

	release_payload(req);
	if (req->resp != req->prefix)
		m->backend->host_free(m->backend_ctx, req->resp, req->resp_cap);
	vgpu_budget_give(m->budget, req->vm_slot, VGPU_BUDGET_BYTES, req->resp_held);
	if (req->counted)
		vgpu_budget_give(m->budget, req->vm_slot, VGPU_BUDGET_REQUESTS, 1);
	free(req);
}

/* Hand @req's outcome to its transport (loop thread). A stream transport
 * gets the response prefix built in req->resp (a bare one is allocated for
 * errors); a zero-copy transport reads req's fields itself. */
static void respond(struct vgpu_request *req)
{
	struct mediator *m = req->m;
	uint64_t out_count = req->status == VGPU_OK ? req->work.out_count : 0;

	if (!req->transport->zero_copy) {
		if (!req->resp)
			req->resp = req->prefix; /* an error answer: no allocation */
		vgpu_proto_encode_response(req->request_id, req->op, req->status, req->queue_ns,
					   req->exec_ns, out_count, req->resp);
		req->resp_len = VGPU_PROTO_RESPONSE_PREFIX + out_count * sizeof(float);
	}
	/* The payload is not needed any more; free it before the write. */
	release_payload(req);
	req->transport->respond(m, req);
}

void vgpu_request_fail(struct vgpu_request *req, int status)
{
	req->status = status;
	respond(req);
}

void vgpu_request_reject(struct vgpu_request *req, struct vgpu_vm *vm, int status, const char *why)
{
	struct mediator *m = req->m;

	vgpu_log_guest(&vm->rl, LOG_WARNING, "VM %s: request %016llx refused: %s", vm->uuid,
		       (unsigned long long)req->request_id, why);
	vgpu_stats_record(m->stats, vm->slot, vm->priority, VGPU_OUTCOME_REJECTED, 0, 0, 0, 0);
	req->status = status;
	respond(req);
}

struct vgpu_request *vgpu_request_new(struct mediator *m, struct vgpu_vm *vm,
				      const struct vgpu_transport *t, void *reply_ctx,
				      uint64_t request_id, int op)
{
	struct vgpu_request *req = calloc(1, sizeof(*req));

	if (!req) {
		vgpu_log_guest(&vm->rl, LOG_ERR, "out of memory admitting a request of VM %s",
			       vm->uuid);
		return NULL;
	}
	req->m = m;
	req->transport = t;
	req->reply_ctx = reply_ctx;
	req->vm_slot = vm->slot;
	req->request_id = request_id;
	req->op = op;
	return req;
}

/* The checks every request passes before it holds anything: its vm_id,
 * shutdown, the queue's room. VGPU_OK, or the request was answered. */
static int check_admission(struct vgpu_request *req, struct vgpu_vm *vm,
			   const struct vgpu_op_params *params)
{
	struct mediator *m = req->m;

	if (params->vm_id != 0 && params->vm_id != (uint32_t)vm->vm_id) {
		char why[96];

		snprintf(why, sizeof(why), "names vm_id %u, but the channel is vm_id %d",
			 params->vm_id, vm->vm_id);
		vgpu_request_reject(req, vm, VGPU_DENIED, why);
		return VGPU_DENIED;
	}
	if (m->stopping) {
		vgpu_request_reject(req, vm, VGPU_SHUTDOWN, "the mediator is stopping");
		return VGPU_SHUTDOWN;
	}
	int rc = vgpu_queue_room(m->queue, vm->slot);
	if (rc != VGPU_OK) {
		vgpu_request_reject(req, vm, rc,
				    rc == VGPU_BUSY ? "queue full (back-pressure)" : "queue closed");
		return rc;
	}
	return VGPU_OK;
}

/* Take @kind's @amount from @vm's budget for @req; on a refusal answer it. */
static int take(struct vgpu_request *req, struct vgpu_vm *vm, enum vgpu_budget_kind kind,
		uint64_t amount)
{
	int rc = vgpu_budget_take(req->m->budget, vm->slot, kind, amount);

	if (rc != VGPU_OK) {
		char why[128];

		snprintf(why, sizeof(why), "%s its budget of %s (%llu needed)",
			 rc == VGPU_LIMIT ? "more than" : "over", vgpu_budget_kind_name(kind),
			 (unsigned long long)amount);
		vgpu_request_reject(req, vm, rc, why);
	}
	return rc;
}

/* Under a backend that pins host buffers, the bytes of @req's buffers
 * that no pinned block cached now can serve come from the VM's rate of
 * new pinned memory (budget.h: pinning holds back every VM's GPU work).
 * A payload and an answer of one size class count as cached if one block
 * is: a small undercount. On a refusal answer it. */
static int pin(struct vgpu_request *req, struct vgpu_vm *vm, size_t payload, size_t resp)
{
	struct mediator *m = req->m;
	uint64_t fresh = 0;
	int rc;

	if (!m->backend->host_cached || m->set.pin_rate_mib_s == 0)
		return VGPU_OK; /* nothing to count: no pool lookups on the way */
	if (!m->backend->host_cached(m->backend_ctx, payload))
		fresh += payload;
	if (!m->backend->host_cached(m->backend_ctx, resp))
		fresh += resp;
	rc = vgpu_budget_pin(m->budget, vm->slot, fresh, vgpu_now_ns());
	if (rc != VGPU_OK) {
		char why[128];

		snprintf(why, sizeof(why), "%llu bytes of new pinned memory: over pin_rate_mib_s",
			 (unsigned long long)fresh);
		vgpu_request_reject(req, vm, rc, why);
	}
	return rc;
}

/* Fill @req's work from @view and queue it; answer it when the queue
 * refuses. */
static void enqueue(struct vgpu_request *req, struct vgpu_vm *vm,
		    const struct vgpu_request_view *view, float *out)
{
	struct mediator *m = req->m;
	int rc;

	req->work.op = view->op;
	req->work.params = view->params;
	memcpy(req->work.in, view->in, sizeof(view->in));
	memcpy(req->work.in_count, view->in_count, sizeof(view->in_count));
	req->work.out = out;
	req->work.out_count = view->out_count;
	req->work.priority = vm->priority;
	req->work.user = req;
	req->item.priority = vm->priority;
	req->item.sched.vm_slot = vm->slot;
	req->item.op = view->op;
	req->item.units = vgpu_cost_units(view->op, &view->params);
	/* What the work holds on the GPU while it runs: its arrays (the
	 * quota's unit; sizes were checked against the limits). */
	req->item.sched.mem_bytes = vgpu_work_bytes(&req->work);

	rc = vgpu_queue_push(m->queue, &req->item);
	if (rc != VGPU_OK) {
		char why[128];

		if (rc == VGPU_NO_MEMORY)
			snprintf(why, sizeof(why), "needs %llu bytes of device memory, more than "
				 "the VM's quota of %lld MiB", (unsigned long long)req->item.sched.mem_bytes,
				 vm->mem_quota_mib);
		else
			snprintf(why, sizeof(why), "%s",
				 rc == VGPU_BUSY ? "queue full (back-pressure)" : "queue closed");
		vgpu_request_reject(req, vm, rc, why);
		return;
	}
	/* From the push on, another thread may already run (and finish) the
	 * request: only the VM's fields are read from here. */
	vgpu_stats_record(m->stats, vm->slot, vm->priority, VGPU_OUTCOME_SUBMITTED, 0, 0, 0, 0);
	if (!vgpu_dispatch_now(m))
		vgpu_queue_wake(m->queue); /* the dispatcher takes it when a slot frees */
}

/* Admission, the one path every request takes whatever its transport,
 * after its head or descriptor was checked (@view): the channel's checks,
 * then its place in the VM's budget of requests and, for a stream
 * transport, the @payload and @resp bytes of the buffers it will hold
 * (and the VM's rate of new pinned memory for them). Nothing is
 * allocated before it passes. VGPU_OK, or @req was answered. */
static int admit(struct vgpu_request *req, struct vgpu_vm *vm,
		 const struct vgpu_request_view *view, size_t payload, size_t resp)
{
	int rc = check_admission(req, vm, &view->params);

	if (rc != VGPU_OK || (rc = take(req, vm, VGPU_BUDGET_REQUESTS, 1)) != VGPU_OK)
		return rc;
	req->counted = true;
	if (payload + resp == 0)
		return VGPU_OK; /* zero-copy: the data stays in the client's window */
	if ((rc = take(req, vm, VGPU_BUDGET_BYTES, payload + resp)) != VGPU_OK)
		return rc;
	req->payload_held = payload;
	req->resp_held = resp;
	return pin(req, vm, payload, resp);
}

void vgpu_request_admit(struct vgpu_request *req, struct vgpu_vm *vm,
			const struct vgpu_request_view *view, float *out)
{
	if (admit(req, vm, view, 0, 0) == VGPU_OK)
		enqueue(req, vm, view, out);
}

int vgpu_request_head(struct mediator *m, struct vgpu_vm *vm, const struct vgpu_transport *t,
		      void *reply_ctx, const uint8_t raw[VGPU_PROTO_HEADER_SIZE],
		      const struct vgpu_msg_header *h, const uint8_t params[VGPU_PROTO_PARAMS_SIZE],
		      struct vgpu_request **ret_req)
{
	struct vgpu_request_view view;
	struct vgpu_request *req = vgpu_request_new(m, vm, t, reply_ctx, h->request_id, h->op);
	int rc;

	if (!req)
		return VGPU_ERROR; /* nothing answered: see mediator.h */
	rc = vgpu_proto_check_request_head(raw, h, params, &m->limits, &view);
	if (rc != VGPU_OK) {
		vgpu_request_reject(req, vm, rc,
				    rc == VGPU_LIMIT ? "over the size limits" : "malformed request");
		return rc;
	}
	size_t resp_cap = VGPU_PROTO_RESPONSE_PREFIX + view.out_count * sizeof(float);
	if ((rc = admit(req, vm, &view, h->payload_len, resp_cap)) != VGPU_OK)
		return rc;
	req->payload_len = h->payload_len;
	req->resp_cap = resp_cap;
	memcpy(req->params_raw, params, VGPU_PROTO_PARAMS_SIZE);
	req->work.op = view.op;
	req->work.params = view.params;
	memcpy(req->work.in_count, view.in_count, sizeof(view.in_count));
	req->work.out_count = view.out_count;
	*ret_req = req;
	return VGPU_OK;
}

/* Any thread: @req's payload buffer (parameter block copied in) and
 * answer buffer, from @alloc. */
static int alloc_buffers(struct vgpu_request *req, void *(*alloc)(void *ctx, size_t size))
{
	struct mediator *m = req->m;

	req->payload = alloc(m->backend_ctx, req->payload_len);
	req->resp = req->payload ? alloc(m->backend_ctx, req->resp_cap) : NULL;
	if (!req->payload || !req->resp)
		return VGPU_NO_MEMORY;
	memcpy(req->payload, req->params_raw, VGPU_PROTO_PARAMS_SIZE);
	return VGPU_OK;
}

/* Loop thread: the buffers are there, or not: tell the transport, then
 * (when not) answer the request. */
static void buffers_done(struct vgpu_request *req)
{
	struct vgpu_vm *vm = &req->m->vms[req->vm_slot];
	int rc = req->alloc_rc;

	req->ready(req->reply_ctx, req, rc);
	if (rc == VGPU_OK)
		return;
	if (vm->in_use)
		vgpu_request_reject(req, vm, rc, "no memory for its buffers");
	else
		vgpu_request_fail(req, rc); /* the VM left meanwhile */
}

static struct vgpu_request *job_request(struct vgpu_job *job)
{
	return (struct vgpu_request *)(void *)((char *)job - offsetof(struct vgpu_request, job));
}

static void alloc_job(struct vgpu_job *job)
{
	struct vgpu_request *req = job_request(job);

	req->alloc_rc = alloc_buffers(req, req->m->backend->host_alloc);
}

static void alloc_job_done(struct vgpu_job *job)
{
	buffers_done(job_request(job));
}

void vgpu_request_alloc(struct vgpu_request *req, vgpu_request_ready_fn ready)
{
	struct mediator *m = req->m;
	const struct vgpu_backend_ops *b = m->backend;

	req->ready = ready;
	/* At once when the backend never pins, or has both blocks cached. */
	req->alloc_rc = alloc_buffers(req, b->host_alloc_cached ? b->host_alloc_cached
								: b->host_alloc);
	if (req->alloc_rc == VGPU_OK || !b->host_alloc_cached) {
		buffers_done(req);
		return;
	}
	b->host_free(m->backend_ctx, req->payload, req->payload_len); /* back to the cache */
	req->payload = NULL;
	req->job = (struct vgpu_job){ .run = alloc_job, .done = alloc_job_done,
				      .slot = req->vm_slot };
	vgpu_workers_submit(m->workers, &req->job);
}

void vgpu_request_submit(struct vgpu_request *req, struct vgpu_vm *vm)
{
	struct vgpu_request_view view = {
		.op = req->work.op,
		.params = req->work.params,
		.out_count = req->work.out_count,
	};

	memcpy(view.in_count, req->work.in_count, sizeof(view.in_count));
	vgpu_proto_request_inputs(&view, req->payload);
	if (req->m->stopping) {
		vgpu_request_reject(req, vm, VGPU_SHUTDOWN, "the mediator is stopping");
		return;
	}
	enqueue(req, vm, &view, (float *)(void *)(req->resp + VGPU_PROTO_RESPONSE_PREFIX));
}

void vgpu_request_record(struct vgpu_request *req)
{
	uint64_t bytes_in = 0;

	for (int i = 0; i < 3; i++)
		bytes_in += req->work.in_count[i] * sizeof(float);
	vgpu_stats_record(req->m->stats, req->vm_slot, req->item.priority,
			  req->status == VGPU_OK ? VGPU_OUTCOME_COMPLETED : VGPU_OUTCOME_FAILED,
			  req->queue_ns, req->exec_ns, bytes_in,
			  req->status == VGPU_OK ? req->work.out_count * sizeof(float) : 0);
}

void vgpu_deliver_done(void *ctx, uint32_t events)
{
	struct mediator *m = ctx;
	struct vgpu_request *list;
	uint64_t n;

	(void)events;
	if (read(m->done_efd, &n, sizeof(n)) < 0) {
		/* EAGAIN: another round already took them. */
	}
	pthread_mutex_lock(&m->done_lock);
	list = m->done_head;
	m->done_head = m->done_tail = NULL;
	pthread_mutex_unlock(&m->done_lock);

	while (list) {
		struct vgpu_request *req = list;

		list = req->next_done;
		respond(req);
	}
}
