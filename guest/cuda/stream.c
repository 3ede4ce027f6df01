/* SPDX-License-Identifier: MIT */
/*
 * stream.c - streams and events: the host's worker holds the real ones
 * (handles from 1, 0 being the default stream); here each is a small
 * record with that handle and what the queries ask (flags, priority,
 * context), answered without the host.
 *
 * Both default streams (NULL or CU_STREAM_LEGACY, and
 * CU_STREAM_PER_THREAD) are the host's legacy default stream: per-thread
 * default streams are served as the legacy one, which orders more, never
 * less. The calls are ordered on the process's one connection, so work
 * reaches the host's streams in the order the program made it; records
 * and waits are posted, the rest wait for their replies.
 *
 * Never: take a handle that is not one of ours (a record is checked by
 * its magic before its handle is used), or free a record the host still
 * holds (destroy frees it once the host's answer is in, whatever it was).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"

#define STREAM_MAGIC 0x56535452u /* "VSTR" */
#define EVENT_MAGIC 0x56455654u  /* "VEVT" */

struct CUstream_st {
	uint32_t magic;
	unsigned int flags;
	int priority;
	CUcontext ctx;
	uint64_t host;
	_Atomic uint64_t capture_id; /* the capture under way on it (0: none) */
};

struct CUevent_st {
	uint32_t magic;
	unsigned int flags;
	uint64_t host;
};

CUresult vgpu_cuda_stream_host(CUstream stream, uint64_t *ret)
{
	*ret = 0;
	if (!stream || stream == CU_STREAM_LEGACY || stream == CU_STREAM_PER_THREAD)
		return CUDA_SUCCESS;
	if (!VGPU_CUDA_IS(stream, STREAM_MAGIC))
		return CUDA_ERROR_INVALID_HANDLE;
	*ret = stream->host;
	return CUDA_SUCCESS;
}

bool vgpu_cuda_is_event(CUevent event)
{
	return VGPU_CUDA_IS(event, EVENT_MAGIC);
}

uint64_t vgpu_cuda_stream_capture(CUstream stream)
{
	uint64_t host;

	if (vgpu_cuda_stream_host(stream, &host) != CUDA_SUCCESS || !host)
		return 0;
	return atomic_load(&stream->capture_id);
}

void vgpu_cuda_stream_set_capture(CUstream stream, uint64_t id)
{
	atomic_store(&stream->capture_id, id);
}

/* The host's range, asked once per device. */
CUresult cuCtxGetStreamPriorityRange(int *leastPriority, int *greatestPriority)
{
	static int least[VGPU_CUDA_MAX_DEVICES], greatest[VGPU_CUDA_MAX_DEVICES];
	static _Atomic bool known[VGPU_CUDA_MAX_DEVICES];
	CUdevice dev = vgpu_cuda_current_device();
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS || dev < 0 || dev >= VGPU_CUDA_MAX_DEVICES)
		return rc != CUDA_SUCCESS ? rc : CUDA_ERROR_INVALID_CONTEXT;
	if (!atomic_load(&known[dev])) {
		struct vgpu_cuda_msg m = { .call = VGPU_CUDA_PRIORITY_RANGE }, r;

		rc = vgpu_cuda_call(&m, NULL, &r, NULL, 0);
		if (rc != CUDA_SUCCESS)
			return rc;
		least[dev] = (int)(int32_t)(uint32_t)r.v[0];
		greatest[dev] = (int)(int32_t)(uint32_t)r.v[1];
		atomic_store(&known[dev], true);
	}
	if (leastPriority)
		*leastPriority = least[dev];
	if (greatestPriority)
		*greatestPriority = greatest[dev];
	return CUDA_SUCCESS;
}

CUresult cuStreamCreateWithPriority(CUstream *phStream, unsigned int flags, int priority)
{
	struct CUstream_st *s;
	CUresult rc;

	if (!phStream || (flags & ~(unsigned)CU_STREAM_NON_BLOCKING))
		return CUDA_ERROR_INVALID_VALUE;
	s = calloc(1, sizeof(*s));
	if (!s)
		return CUDA_ERROR_OUT_OF_MEMORY;
	rc = vgpu_cuda_call_args(VGPU_CUDA_STREAM_CREATE, flags, (uint32_t)priority, 0, &s->host);
	if (rc != CUDA_SUCCESS || s->host == 0) {
		free(s);
		return rc != CUDA_SUCCESS ? rc : CUDA_ERROR_UNKNOWN;
	}
	s->magic = STREAM_MAGIC;
	s->flags = flags;
	s->priority = priority;
	s->ctx = vgpu_cuda_primary(vgpu_cuda_current_device());
	*phStream = s;
	return CUDA_SUCCESS;
}

CUresult cuStreamCreate(CUstream *phStream, unsigned int Flags)
{
	return cuStreamCreateWithPriority(phStream, Flags, 0);
}

CUresult cuStreamDestroy_v2(CUstream hStream)
{
	CUresult rc;

	if (!hStream || hStream == CU_STREAM_LEGACY || hStream == CU_STREAM_PER_THREAD ||
	    !VGPU_CUDA_IS(hStream, STREAM_MAGIC))
		return CUDA_ERROR_INVALID_HANDLE;
	vgpu_capture_stream_gone(hStream);
	rc = vgpu_cuda_call_args(VGPU_CUDA_STREAM_DESTROY, hStream->host, 0, 0, NULL);
	hStream->magic = 0;
	free(hStream);
	return rc;
}

/* STREAM_SYNC or STREAM_QUERY of @stream. */
static CUresult on_stream(uint16_t call, CUstream stream)
{
	uint64_t host;
	CUresult rc = vgpu_cuda_stream_host(stream, &host);

	return rc == CUDA_SUCCESS ? vgpu_cuda_call_args(call, host, 0, 0, NULL) : rc;
}

CUresult cuStreamSynchronize(CUstream hStream)
{
	return on_stream(VGPU_CUDA_STREAM_SYNC, hStream);
}

CUresult cuStreamQuery(CUstream hStream)
{
	return on_stream(VGPU_CUDA_STREAM_QUERY, hStream);
}

/*
 * Host functions in a stream (cuLaunchHostFunc, cuStreamAddCallback): the
 * stream's work before it has to be done when it runs, and the work after
 * it waits for it. Here the caller waits for the stream and runs the
 * function itself, before its next call can add work after it: the order
 * CUDA gives, on the caller's thread rather than a driver's, and the
 * caller waits (a function that waits for something the caller does
 * after queuing it would wait for ever; CUDA forbids it to call CUDA).
 */
CUresult cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void *userData)
{
	CUgraphNodeParams p = { .type = CU_GRAPH_NODE_TYPE_HOST,
				.host = { .fn = fn, .userData = userData } };
	CUresult rc = fn ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;

	/* In a capture: a node of the graph built here (capture.c). */
	if (rc == CUDA_SUCCESS && vgpu_capture_node(hStream, &p, true, NULL, &rc) != VGPU_CAPTURE_OFF)
		return rc;
	if (rc == CUDA_SUCCESS)
		rc = cuStreamSynchronize(hStream);
	if (rc == CUDA_SUCCESS)
		fn(userData);
	return rc;
}

/* The callback is told the stream's status (its error, if the work
 * before it failed), and called either way. */
CUresult cuStreamAddCallback(CUstream hStream, CUstreamCallback callback, void *userData,
			     unsigned int flags)
{
	uint64_t host;
	CUresult rc = vgpu_cuda_ready();

	if (rc == CUDA_SUCCESS)
		rc = vgpu_cuda_stream_host(hStream, &host);
	if (rc == CUDA_SUCCESS && (!callback || flags != 0))
		rc = CUDA_ERROR_INVALID_VALUE;
	if (rc != CUDA_SUCCESS)
		return rc;
	/* Not into a capture (as CUDA's: cuLaunchHostFunc is for that). */
	if (vgpu_capture_refuse(hStream, &rc) == VGPU_CAPTURE_DONE)
		return rc;
	callback(hStream, cuStreamSynchronize(hStream), userData);
	return CUDA_SUCCESS;
}

/* @call (STREAM_WAIT or EVENT_RECORD) of @stream and @event, in the
 * call's order of arguments, posted (call.c). */
static CUresult stream_and_event(uint16_t call, CUstream stream, CUevent event)
{
	struct vgpu_cuda_msg m = { .call = call };
	uint64_t host;
	CUresult rc = vgpu_cuda_stream_host(stream, &host);

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!vgpu_cuda_is_event(event))
		return CUDA_ERROR_INVALID_HANDLE;
	m.v[0] = call == VGPU_CUDA_STREAM_WAIT ? host : event->host;
	m.v[1] = call == VGPU_CUDA_STREAM_WAIT ? event->host : host;
	return vgpu_cuda_post(&m, NULL);
}

CUresult cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags)
{
	CUresult rc = CUDA_SUCCESS;

	if (Flags != CU_EVENT_WAIT_DEFAULT)
		return CUDA_ERROR_INVALID_VALUE;
	if (!vgpu_cuda_is_event(hEvent))
		return CUDA_ERROR_INVALID_HANDLE;
	/* A stream may join a capture here (capture.c). */
	if (vgpu_capture_wait(hStream, hEvent, &rc) == VGPU_CAPTURE_DONE)
		return rc;
	return stream_and_event(VGPU_CUDA_STREAM_WAIT, hStream, hEvent);
}

/* For a query of @stream into @out: its record, NULL for a default stream. */
static CUresult query(CUstream stream, const void *out, struct CUstream_st **ret)
{
	uint64_t host;
	CUresult rc = vgpu_cuda_stream_host(stream, &host);

	if (rc == CUDA_SUCCESS && !out)
		rc = CUDA_ERROR_INVALID_VALUE;
	*ret = rc == CUDA_SUCCESS && host ? stream : NULL;
	return rc;
}

CUresult cuStreamGetFlags(CUstream hStream, unsigned int *flags)
{
	struct CUstream_st *s;
	CUresult rc = query(hStream, flags, &s);

	if (rc == CUDA_SUCCESS)
		*flags = s ? s->flags : 0;
	return rc;
}

CUresult cuStreamGetPriority(CUstream hStream, int *priority)
{
	struct CUstream_st *s;
	CUresult rc = query(hStream, priority, &s);

	if (rc == CUDA_SUCCESS)
		*priority = s ? s->priority : 0;
	return rc;
}

CUresult cuStreamGetCtx(CUstream hStream, CUcontext *pctx)
{
	struct CUstream_st *s;
	CUresult rc = query(hStream, pctx, &s);

	if (rc == CUDA_SUCCESS && s)
		*pctx = s->ctx;
	return rc == CUDA_SUCCESS && !s ? cuCtxGetCurrent(pctx) : rc;
}

/* The flags an event may have here: an interprocess event would need the
 * host's IPC, which no guest gets. */
#define EVENT_FLAGS ((unsigned)(CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING))

CUresult cuEventCreate(CUevent *phEvent, unsigned int Flags)
{
	struct CUevent_st *e;
	CUresult rc;

	if (!phEvent || (Flags & ~EVENT_FLAGS))
		return CUDA_ERROR_INVALID_VALUE;
	e = calloc(1, sizeof(*e));
	if (!e)
		return CUDA_ERROR_OUT_OF_MEMORY;
	rc = vgpu_cuda_call_args(VGPU_CUDA_EVENT_CREATE, Flags, 0, 0, &e->host);
	if (rc != CUDA_SUCCESS || e->host == 0) {
		free(e);
		return rc != CUDA_SUCCESS ? rc : CUDA_ERROR_UNKNOWN;
	}
	e->magic = EVENT_MAGIC;
	e->flags = Flags;
	*phEvent = e;
	return CUDA_SUCCESS;
}

CUresult cuEventDestroy_v2(CUevent hEvent)
{
	CUresult rc;

	if (!vgpu_cuda_is_event(hEvent))
		return CUDA_ERROR_INVALID_HANDLE;
	vgpu_capture_event_gone(hEvent);
	rc = vgpu_cuda_call_args(VGPU_CUDA_EVENT_DESTROY, hEvent->host, 0, 0, NULL);
	hEvent->magic = 0;
	free(hEvent);
	return rc;
}

CUresult cuEventRecord(CUevent hEvent, CUstream hStream)
{
	CUresult rc = CUDA_SUCCESS;

	/* The event checked first (capture.c keeps it); the stream is
	 * capturing only if it is one of ours, else stream_and_event()
	 * refuses it. In a capture: what waiting for it joins. */
	if (!vgpu_cuda_is_event(hEvent))
		return CUDA_ERROR_INVALID_HANDLE;
	if (vgpu_capture_record(hEvent, hStream, &rc) == VGPU_CAPTURE_DONE)
		return rc;
	return stream_and_event(VGPU_CUDA_EVENT_RECORD, hStream, hEvent);
}

/* CU_EVENT_RECORD_EXTERNAL is for graphs, which are not served. */
CUresult cuEventRecordWithFlags(CUevent hEvent, CUstream hStream, unsigned int flags)
{
	if (flags != CU_EVENT_RECORD_DEFAULT)
		return CUDA_ERROR_NOT_SUPPORTED;
	return cuEventRecord(hEvent, hStream);
}

/* EVENT_SYNC or EVENT_QUERY of @event. */
static CUresult on_event(uint16_t call, CUevent event)
{
	return vgpu_cuda_is_event(event) ? vgpu_cuda_call_args(call, event->host, 0, 0, NULL) : CUDA_ERROR_INVALID_HANDLE;
}

CUresult cuEventSynchronize(CUevent hEvent)
{
	return on_event(VGPU_CUDA_EVENT_SYNC, hEvent);
}

CUresult cuEventQuery(CUevent hEvent)
{
	return on_event(VGPU_CUDA_EVENT_QUERY, hEvent);
}

/* CUDA 12.8 made cuEventElapsedTime_v2, with the same arguments (cuda.h
 * maps the name to it); the first version is exported under its own. */
CUresult cuEventElapsedTime_v2(float *pMilliseconds, CUevent hStart, CUevent hEnd)
{
	uint64_t bits = 0;
	uint32_t low;
	CUresult rc;

	if (!pMilliseconds)
		return CUDA_ERROR_INVALID_VALUE;
	if (!vgpu_cuda_is_event(hStart) || !vgpu_cuda_is_event(hEnd))
		return CUDA_ERROR_INVALID_HANDLE;
	rc = vgpu_cuda_call_args(VGPU_CUDA_EVENT_ELAPSED, hStart->host, hEnd->host, 0, &bits);
	if (rc == CUDA_SUCCESS) {
		low = (uint32_t)bits;
		memcpy(pMilliseconds, &low, sizeof(*pMilliseconds));
	}
	return rc;
}

CUresult cuEventElapsedTime_v1(float *pMilliseconds, CUevent hStart, CUevent hEnd)
	__asm__("cuEventElapsedTime");
CUresult cuEventElapsedTime_v1(float *pMilliseconds, CUevent hStart, CUevent hEnd)
{
	return cuEventElapsedTime_v2(pMilliseconds, hStart, hEnd);
}

/*
 * Stream capture (CUDA graphs): the host's worker captures for real (its
 * driver records the work the stream gets meanwhile into a graph, which
 * cuStreamEndCapture hands back, graph.c); here each stream keeps the id
 * of its capture under way, so the checks PyTorch and cuBLAS make before
 * every launch are answered without the host. The default streams are
 * never capturing (the host's driver refuses them).
 */
static CUresult capture_status(CUstream hStream, CUstreamCaptureStatus *status, uint64_t *id)
{
	uint64_t host, now = 0;
	CUresult rc = vgpu_cuda_ready();

	if (rc == CUDA_SUCCESS)
		rc = vgpu_cuda_stream_host(hStream, &host);
	if (rc == CUDA_SUCCESS && !status)
		rc = CUDA_ERROR_INVALID_VALUE;
	if (rc != CUDA_SUCCESS)
		return rc;
	if (host)
		now = atomic_load(&hStream->capture_id);
	*status = !now				  ? CU_STREAM_CAPTURE_STATUS_NONE
		  : vgpu_capture_invalid(hStream) ? CU_STREAM_CAPTURE_STATUS_INVALIDATED
						  : CU_STREAM_CAPTURE_STATUS_ACTIVE;
	if (id)
		*id = now;
	return CUDA_SUCCESS;
}

CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode)
{
	uint64_t host, id = 0;
	CUresult rc = vgpu_cuda_ready();

	if (rc == CUDA_SUCCESS)
		rc = vgpu_cuda_stream_host(hStream, &host);
	if (rc == CUDA_SUCCESS && (unsigned)mode > CU_STREAM_CAPTURE_MODE_RELAXED)
		rc = CUDA_ERROR_INVALID_VALUE;
	if (rc == CUDA_SUCCESS)
		rc = vgpu_cuda_call_args(VGPU_CUDA_CAPTURE_BEGIN, host, (uint64_t)mode, 0, &id);
	if (rc == CUDA_SUCCESS && host) {
		rc = vgpu_capture_begin(hStream, id ? id : 1);
		if (rc != CUDA_SUCCESS) {
			/* No record here: the host's capture ends, its graph dropped. */
			uint64_t graph = 0;

			if (vgpu_cuda_call_args(VGPU_CUDA_CAPTURE_END, host, 0, 0, &graph) ==
				    CUDA_SUCCESS && graph)
				vgpu_cuda_call_args(VGPU_CUDA_GRAPH_DESTROY, graph, 0, 0, NULL);
		}
	}
	return rc;
}

/* CUDA 10.0's, in the global mode. */
CUresult cuStreamBeginCapture_v1(CUstream hStream)
{
	return cuStreamBeginCapture_v2(hStream, CU_STREAM_CAPTURE_MODE_GLOBAL);
}

/* The capture ends whatever the host says (an invalidated one too). */
CUresult cuStreamEndCapture(CUstream hStream, CUgraph *phGraph)
{
	uint64_t host, graph = 0;
	CUresult rc = vgpu_cuda_ready();

	if (rc == CUDA_SUCCESS)
		rc = vgpu_cuda_stream_host(hStream, &host);
	if (rc == CUDA_SUCCESS && !phGraph)
		rc = CUDA_ERROR_INVALID_VALUE;
	if (rc != CUDA_SUCCESS)
		return rc;
	rc = vgpu_cuda_call_args(VGPU_CUDA_CAPTURE_END, host, 0, 0, &graph);
	CUgraph hg = NULL;

	if (rc == CUDA_SUCCESS && (rc = vgpu_cuda_graph_new(graph, &hg)) != CUDA_SUCCESS && graph)
		vgpu_cuda_call_args(VGPU_CUDA_GRAPH_DESTROY, graph, 0, 0, NULL);
	/* Whichever graph the capture needs (capture.c); the streams leave it
	 * there, if @hStream is its origin. */
	return vgpu_capture_end(hStream, rc, hg, phGraph);
}

CUresult cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus *captureStatus)
{
	return capture_status(hStream, captureStatus, NULL);
}

/* CUDA 10.1's: status and id. */
CUresult cuStreamGetCaptureInfo_v1(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
				   cuuint64_t *id_out)
{
	uint64_t id = 0;
	CUresult rc = capture_status(hStream, captureStatus_out, &id);

	if (rc == CUDA_SUCCESS && id_out)
		*id_out = id;
	return rc;
}

/* CUDA 12.3's: also the graph, its dependencies and their edges (the
 * host's: not known here, given as none). */
CUresult cuStreamGetCaptureInfo_v3(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
				   cuuint64_t *id_out, CUgraph *graph_out,
				   const CUgraphNode **dependencies_out,
				   const CUgraphEdgeData **edgeData_out, size_t *numDependencies_out)
{
	CUresult rc = cuStreamGetCaptureInfo_v1(hStream, captureStatus_out, id_out);

	if (rc != CUDA_SUCCESS)
		return rc;
	if (graph_out)
		*graph_out = NULL;
	if (dependencies_out)
		*dependencies_out = NULL;
	if (edgeData_out)
		*edgeData_out = NULL;
	if (numDependencies_out)
		*numDependencies_out = 0;
	return CUDA_SUCCESS;
}

/* CUDA 11.3's: the same less the edges. */
CUresult cuStreamGetCaptureInfo_v2(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
				   cuuint64_t *id_out, CUgraph *graph_out,
				   const CUgraphNode **dependencies_out, size_t *numDependencies_out)
{
	return cuStreamGetCaptureInfo_v3(hStream, captureStatus_out, id_out, graph_out,
					 dependencies_out, NULL, numDependencies_out);
}

/* The calling thread's capture mode, kept for the programs that set it
 * around calls that must not be captured. The host's worker makes every
 * call of the process on one thread, whose mode is the one each capture
 * began with. */
CUresult cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode *mode)
{
	static _Thread_local CUstreamCaptureMode current = CU_STREAM_CAPTURE_MODE_GLOBAL;
	CUstreamCaptureMode old = current;

	if (!mode || (unsigned)*mode > CU_STREAM_CAPTURE_MODE_RELAXED)
		return CUDA_ERROR_INVALID_VALUE;
	current = *mode;
	*mode = old;
	return CUDA_SUCCESS;
}
