/* SPDX-License-Identifier: MIT */
/*
 * stream.c - a process's streams and events on the host's driver
 * (STREAM_* and EVENT_* of cuda_call.h), and the stream a copy or a
 * launch names.
 *
 * Handles given to the guest are indexes here (from 1; 0 is the default
 * stream), never the driver's pointers, each checked before use; a
 * process holds at most WORKER_MAX_STREAMS streams and WORKER_MAX_EVENTS
 * events, the VM's processes together WORKER_VM_MAX_STREAMS and
 * WORKER_VM_MAX_EVENTS, and what a process still holds when its
 * connection closes is destroyed. So are its graphs (made by capturing
 * one of its streams) and executable graphs, WORKER_MAX_GRAPHS of each,
 * WORKER_VM_MAX_GRAPHS of both for the VM. Every call runs in the calling thread's current context (the
 * call's device, serve.c): a stream or event of another device is the
 * driver's to refuse.
 */
#include <stdlib.h>
#include <string.h>

#include "worker.h"

/* Slot @handle of @slots (@n used), or NULL for a handle not live. */
static void **slot(void **slots, uint32_t n, uint64_t handle)
{
	return handle >= 1 && handle <= n && slots[handle - 1] ? &slots[handle - 1] : NULL;
}

/* A free slot of *@slots (made on first use, @max at most), or NULL. */
static void **take(void ***slots, uint32_t *n, uint32_t max)
{
	uint32_t i;

	for (i = 0; i < *n && (*slots)[i]; i++)
		;
	if (i == *n) {
		if (*n == max)
			return NULL;
		if (!*slots && !(*slots = calloc(max, sizeof(**slots))))
			return NULL;
		(*n)++;
	}
	return &(*slots)[i];
}

CUresult stream_of(struct streams *st, uint64_t handle, CUstream *ret)
{
	void **s;

	*ret = NULL;
	if (handle == 0)
		return CUDA_SUCCESS;
	s = slot(st->streams, st->n_streams, handle);
	if (!s)
		return CUDA_ERROR_INVALID_HANDLE;
	*ret = *s;
	return CUDA_SUCCESS;
}

/* The event of @handle, or NULL. */
static CUevent event_of(struct streams *st, uint64_t handle)
{
	void **e = slot(st->events, st->n_events, handle);

	return e ? *e : NULL;
}

/* The flags each create call may pass: CUDA's own. */
#define STREAM_FLAGS ((uint64_t)CU_STREAM_NON_BLOCKING)
#define EVENT_FLAGS ((uint64_t)(CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING))

static CUresult create(struct worker *w, struct streams *st, const struct vgpu_cuda_msg *m,
		       uint64_t *handle)
{
	bool stream = m->call == VGPU_CUDA_STREAM_CREATE;
	uint64_t *held = stream ? &w->streams : &w->events; /* the VM's */
	void **s;
	CUresult rc;

	if (m->v[0] & ~(stream ? STREAM_FLAGS : EVENT_FLAGS) || m->v[1] > UINT32_MAX)
		return CUDA_ERROR_INVALID_VALUE;
	s = stream ? take(&st->streams, &st->n_streams, WORKER_MAX_STREAMS)
		   : take(&st->events, &st->n_events, WORKER_MAX_EVENTS);
	if (!s || !worker_take(w, held, stream ? WORKER_VM_MAX_STREAMS : WORKER_VM_MAX_EVENTS, 1))
		return CUDA_ERROR_OUT_OF_MEMORY;
	if (stream)
		rc = w->drv.stream_create((CUstream *)s, (unsigned)m->v[0],
					  (int)(int32_t)(uint32_t)m->v[1]);
	else
		rc = w->drv.event_create((CUevent *)s, (unsigned)m->v[0]);
	if (rc == CUDA_SUCCESS && !*s)
		rc = CUDA_ERROR_UNKNOWN;
	if (rc != CUDA_SUCCESS) {
		*s = NULL;
		worker_give(w, held, 1);
		return rc;
	}
	*handle = (uint64_t)(s - (stream ? st->streams : st->events)) + 1;
	return CUDA_SUCCESS;
}

CUresult stream_call(struct worker *w, struct streams *st, const struct vgpu_cuda_msg *m,
		     uint64_t *res)
{
	const struct driver *d = &w->drv;
	CUevent e = event_of(st, m->call == VGPU_CUDA_STREAM_WAIT ? m->v[1] : m->v[0]);
	CUstream s = NULL;
	void **p;
	float ms = 0;
	CUresult rc;

	switch (m->call) {
	case VGPU_CUDA_STREAM_CREATE:
	case VGPU_CUDA_EVENT_CREATE:
		return create(w, st, m, res);
	case VGPU_CUDA_STREAM_DESTROY:
		p = slot(st->streams, st->n_streams, m->v[0]);
		if (!p)
			return CUDA_ERROR_INVALID_HANDLE;
		rc = d->stream_destroy(*p);
		/* Gone even while it has work; kept (for the process's end) only
		 * if the driver refused to let it go. */
		if (rc == CUDA_SUCCESS || rc == CUDA_ERROR_INVALID_HANDLE) {
			*p = NULL;
			worker_give(w, &w->streams, 1);
		}
		return rc;
	case VGPU_CUDA_EVENT_DESTROY:
		p = slot(st->events, st->n_events, m->v[0]);
		if (!p)
			return CUDA_ERROR_INVALID_HANDLE;
		rc = d->event_destroy(*p);
		if (rc == CUDA_SUCCESS || rc == CUDA_ERROR_INVALID_HANDLE) {
			*p = NULL;
			worker_give(w, &w->events, 1);
		}
		return rc;
	case VGPU_CUDA_STREAM_SYNC:
	case VGPU_CUDA_STREAM_QUERY:
		rc = stream_of(st, m->v[0], &s);
		if (rc != CUDA_SUCCESS)
			return rc;
		return m->call == VGPU_CUDA_STREAM_SYNC ? d->stream_sync(s) : d->stream_query(s);
	case VGPU_CUDA_STREAM_WAIT:
		rc = stream_of(st, m->v[0], &s);
		if (rc == CUDA_SUCCESS && !e)
			rc = CUDA_ERROR_INVALID_HANDLE;
		return rc == CUDA_SUCCESS ? d->stream_wait(s, e, 0) : rc;
	case VGPU_CUDA_EVENT_RECORD:
		rc = stream_of(st, m->v[1], &s);
		if (rc == CUDA_SUCCESS && !e)
			rc = CUDA_ERROR_INVALID_HANDLE;
		return rc == CUDA_SUCCESS ? d->event_record(e, s) : rc;
	case VGPU_CUDA_EVENT_SYNC:
		return e ? d->event_sync(e) : CUDA_ERROR_INVALID_HANDLE;
	case VGPU_CUDA_EVENT_QUERY:
		return e ? d->event_query(e) : CUDA_ERROR_INVALID_HANDLE;
	case VGPU_CUDA_EVENT_ELAPSED: {
		CUevent end = event_of(st, m->v[1]);

		if (!e || !end)
			return CUDA_ERROR_INVALID_HANDLE;
		rc = d->event_elapsed(&ms, e, end);
		if (rc == CUDA_SUCCESS) {
			uint32_t bits;

			memcpy(&bits, &ms, sizeof(bits));
			*res = bits;
		}
		return rc;
	}
	default:
		return CUDA_ERROR_INVALID_VALUE;
	}
}

bool stream_capturing(struct worker *w, CUstream s)
{
	CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;

	return s && w->drv.stream_is_capturing(s, &status) == CUDA_SUCCESS &&
	       status != CU_STREAM_CAPTURE_STATUS_NONE;
}

/* The flags cuGraphInstantiateWithFlags takes: CUDA's own. */
#define INSTANTIATE_FLAGS                                                                       \
	((uint64_t)(CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH |                          \
		    CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD | CUDA_GRAPH_INSTANTIATE_FLAG_DEVICE_LAUNCH | \
		    CUDA_GRAPH_INSTANTIATE_FLAG_USE_NODE_PRIORITY))

/* A free slot of a graph table, within the process's and the VM's
 * budgets; given back by put() if the driver makes nothing for it. */
static void **graph_slot(struct worker *w, void ***slots, uint32_t *n)
{
	void **g = take(slots, n, WORKER_MAX_GRAPHS);

	return g && worker_take(w, &w->graphs, WORKER_VM_MAX_GRAPHS, 1) ? g : NULL;
}

/* @rc of the driver's making *@g: the table's handle into *@res, or the
 * slot freed. */
static CUresult put(struct worker *w, void **slots, void **g, CUresult rc, uint64_t *res)
{
	if (rc == CUDA_SUCCESS && !*g)
		rc = CUDA_ERROR_UNKNOWN;
	if (rc != CUDA_SUCCESS) {
		*g = NULL;
		worker_give(w, &w->graphs, 1);
		return rc;
	}
	*res = (uint64_t)(g - slots) + 1;
	return CUDA_SUCCESS;
}

CUresult graph_call(struct worker *w, struct streams *st, const struct vgpu_cuda_msg *m,
		    uint64_t *res)
{
	const struct driver *d = &w->drv;
	CUstream s = NULL;
	void **g;
	CUresult rc;

	switch (m->call) {
	case VGPU_CUDA_CAPTURE_BEGIN: {
		CUstreamCaptureStatus status;
		cuuint64_t id = 0;

		rc = stream_of(st, m->v[0], &s);
		if (rc == CUDA_SUCCESS && m->v[1] > CU_STREAM_CAPTURE_MODE_RELAXED)
			rc = CUDA_ERROR_INVALID_VALUE;
		/* Global mode would make the calls of the VM's other processes
		 * (other threads here) fail while it lasts: thread-local keeps
		 * the rule to this process, whose calls all run on this
		 * thread. */
		if (rc == CUDA_SUCCESS)
			rc = d->begin_capture(s, m->v[1] == CU_STREAM_CAPTURE_MODE_GLOBAL
							 ? CU_STREAM_CAPTURE_MODE_THREAD_LOCAL
							 : (CUstreamCaptureMode)m->v[1]);
		if (rc == CUDA_SUCCESS)
			rc = d->capture_info(s, &status, &id, NULL, NULL, NULL, NULL);
		*res = id;
		return rc;
	}
	case VGPU_CUDA_CAPTURE_END:
		rc = stream_of(st, m->v[0], &s);
		if (rc != CUDA_SUCCESS)
			return rc;
		g = graph_slot(w, &st->graphs, &st->n_graphs);
		if (!g) {
			/* The capture ends all the same (CUDA's would), its graph
			 * dropped. */
			CUgraph dropped = NULL;

			if (d->end_capture(s, &dropped) == CUDA_SUCCESS && dropped)
				d->graph_destroy(dropped);
			return CUDA_ERROR_OUT_OF_MEMORY;
		}
		return put(w, st->graphs, g, d->end_capture(s, (CUgraph *)g), res);
	case VGPU_CUDA_GRAPH_INSTANTIATE: {
		void **graph = slot(st->graphs, st->n_graphs, m->v[0]);

		if (!graph)
			return CUDA_ERROR_INVALID_HANDLE;
		if (m->v[1] & ~INSTANTIATE_FLAGS)
			return CUDA_ERROR_INVALID_VALUE;
		g = graph_slot(w, &st->execs, &st->n_execs);
		if (!g)
			return CUDA_ERROR_OUT_OF_MEMORY;
		return put(w, st->execs, g, d->graph_instantiate((CUgraphExec *)g, *graph, m->v[1]),
			   res);
	}
	case VGPU_CUDA_GRAPH_LAUNCH:
		g = slot(st->execs, st->n_execs, m->v[0]);
		if (!g)
			return CUDA_ERROR_INVALID_HANDLE;
		rc = stream_of(st, m->v[1], &s);
		if (rc == CUDA_SUCCESS && m->v[2] > 1)
			rc = CUDA_ERROR_INVALID_VALUE;
		if (rc != CUDA_SUCCESS)
			return rc;
		return m->v[2] ? d->graph_upload(*g, s) : d->graph_launch(*g, s);
	case VGPU_CUDA_GRAPH_DESTROY:
		if (m->v[1] > 1)
			return CUDA_ERROR_INVALID_VALUE;
		g = m->v[1] ? slot(st->execs, st->n_execs, m->v[0])
			    : slot(st->graphs, st->n_graphs, m->v[0]);
		if (!g)
			return CUDA_ERROR_INVALID_HANDLE;
		rc = m->v[1] ? d->graph_exec_destroy(*g) : d->graph_destroy(*g);
		if (rc == CUDA_SUCCESS || rc == CUDA_ERROR_INVALID_HANDLE) {
			*g = NULL;
			worker_give(w, &w->graphs, 1);
		}
		return rc;
	default:
		return CUDA_ERROR_INVALID_VALUE;
	}
}

void stream_release(struct worker *w, struct streams *st)
{
	uint64_t streams = 0, events = 0, graphs = 0;

	/* Captures the process left open end first (their graphs dropped),
	 * then its executable graphs (their graphs may go before them, but
	 * they may be running on the streams below). */
	for (uint32_t i = 0; i < st->n_streams; i++)
		if (st->streams[i] && stream_capturing(w, st->streams[i])) {
			CUgraph dropped = NULL;

			if (w->drv.end_capture(st->streams[i], &dropped) == CUDA_SUCCESS && dropped)
				w->drv.graph_destroy(dropped);
		}
	for (uint32_t i = 0; i < st->n_execs; i++)
		if (st->execs[i]) {
			w->drv.graph_exec_destroy(st->execs[i]);
			graphs++;
		}
	for (uint32_t i = 0; i < st->n_graphs; i++)
		if (st->graphs[i]) {
			w->drv.graph_destroy(st->graphs[i]);
			graphs++;
		}
	worker_give(w, &w->graphs, graphs);
	free(st->graphs);
	free(st->execs);

	for (uint32_t i = 0; i < st->n_streams; i++)
		if (st->streams[i]) {
			w->drv.stream_destroy(st->streams[i]);
			streams++;
		}
	for (uint32_t i = 0; i < st->n_events; i++)
		if (st->events[i]) {
			w->drv.event_destroy(st->events[i]);
			events++;
		}
	worker_give(w, &w->streams, streams);
	worker_give(w, &w->events, events);
	free(st->streams);
	free(st->events);
	*st = (struct streams){ 0 };
}
