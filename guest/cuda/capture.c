/* SPDX-License-Identifier: MIT */
/*
 * capture.c - stream capture, recorded here beside the host's.
 *
 * The host's worker captures for real (stream.c): its driver records what
 * the capturing streams get into a graph that launches as one call. Some
 * work cannot go there: a copy from or to memory outside the window
 * (pageable memory; the worker only has the bytes while the call lasts),
 * a host function (it runs in this process, not in the worker), a
 * stream-ordered allocation or free (the worker's driver would own the
 * graph's memory, outside the VM's quota). So every call on a capturing
 * stream is also recorded here as a node of a graph built here (graph.h),
 * with the dependencies CUDA's capture gives it: the stream's last node,
 * joined across streams by events recorded and waited for during the
 * capture. A capture that meets such work ends with that graph, which a
 * launch replays call by call (graph_exec.c; its memory nodes are
 * graph_mem.c's, against the quota); from that call on nothing more of
 * the capture goes to the host. A capture that never meets any ends with
 * the host's graph, as before. A call this file cannot record (a launch
 * with attributes, a wait for an event from outside the capture, the
 * other stream-ordered calls) makes the capture the host's: if it needs
 * this file's graph as well, the call fails and the capture is
 * invalidated, as CUDA invalidates a capture on an unsupported call.
 *
 * Streams that join a capture by waiting for an event recorded in it are
 * capturing (stream.c's capture id set to the capture's) until it ends.
 *
 * Not served (docs/specs/cuda-remoting.md): the graph and dependencies
 * that cuStreamGetCaptureInfo gives out (none), cuStreamUpdateCapture-
 * Dependencies, capturing into an existing graph; a capture's forks need
 * not be joined back before it ends.
 *
 * Never: use a capture after its end (records are looked up under the
 * lock by stream and event), or post to the host a call of a capture
 * that already holds work only this file's graph can do.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"

/* One stream in a capture: the nodes its next work depends on. */
struct member {
	CUstream s;
	CUgraphNode *deps;
	size_t n, cap;
};

struct capture {
	uint64_t id;       /* the host's (stream.c) */
	CUstream origin;
	CUgraph graph;     /* built here */
	bool guest;        /* holds work only this graph can do: it is the result */
	bool host;         /* holds work only the host's graph has */
	bool invalid;      /* both: the capture fails */
	struct member *m;
	size_t n_m;
	struct capture *next;
};

/* An event recorded during a capture: what waiting for it joins. */
struct snapshot {
	CUevent ev;
	struct capture *c;
	CUgraphNode *deps;
	size_t n;
	struct snapshot *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct capture *captures;
static struct snapshot *snapshots;
static _Atomic unsigned int n_captures; /* quick test for events outside captures */
/* Inside a copy already recorded, whose own pieces go out through the
 * public calls (array.c, pointer.c): those are not recorded again. */
static _Thread_local unsigned int nested;

void vgpu_capture_nest(bool in)
{
	nested += in ? 1u : -1u;
}

/* Under the lock: @s's capture and its member record, or NULL. */
static struct capture *find(CUstream s, struct member **mem)
{
	for (struct capture *c = captures; c; c = c->next)
		for (size_t i = 0; i < c->n_m; i++)
			if (c->m[i].s == s) {
				*mem = &c->m[i];
				return c;
			}
	return NULL;
}

/* @s's capture and member record with the lock taken; NULL, the lock
 * not taken, when @s is not capturing (or its capture just ended). */
static struct capture *enter(CUstream s, struct member **m)
{
	struct capture *c;

	if (!vgpu_cuda_stream_capture(s))
		return NULL;
	pthread_mutex_lock(&lock);
	c = find(s, m);
	if (!c)
		pthread_mutex_unlock(&lock);
	return c;
}

/* Under the lock: @m's dependencies become @deps (@n of them). */
static bool set_deps(struct member *m, const CUgraphNode *deps, size_t n)
{
	if (n > m->cap) {
		CUgraphNode *d = realloc(m->deps, n * sizeof(*d));

		if (!d)
			return false;
		m->deps = d;
		m->cap = n;
	}
	if (n)
		memcpy(m->deps, deps, n * sizeof(*deps));
	m->n = n;
	return true;
}

/* Under the lock: @s joins @c with @deps. */
static bool join(struct capture *c, CUstream s, const CUgraphNode *deps, size_t n)
{
	struct member *m = realloc(c->m, (c->n_m + 1) * sizeof(*m));

	if (!m)
		return false;
	c->m = m;
	m = &c->m[c->n_m];
	*m = (struct member){ .s = s };
	if (!set_deps(m, deps, n))
		return false;
	c->n_m++;
	vgpu_cuda_stream_set_capture(s, c->id);
	return true;
}

static void drop_snapshot(struct snapshot **p)
{
	struct snapshot *sn = *p;

	*p = sn->next;
	free(sn->deps);
	free(sn);
}

/* Under the lock: @c's records gone (its graph is the caller's). */
static void forget(struct capture *c)
{
	for (struct capture **p = &captures; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	for (struct snapshot **p = &snapshots; *p;)
		if ((*p)->c == c)
			drop_snapshot(p);
		else
			p = &(*p)->next;
	for (size_t i = 0; i < c->n_m; i++) {
		vgpu_cuda_stream_set_capture(c->m[i].s, 0);
		free(c->m[i].deps);
	}
	free(c->m);
	atomic_fetch_sub(&n_captures, 1);
}

CUresult vgpu_capture_begin(CUstream s, uint64_t id)
{
	struct capture *c = calloc(1, sizeof(*c));
	CUresult rc = c ? cuGraphCreate(&c->graph, 0) : CUDA_ERROR_OUT_OF_MEMORY;

	if (rc != CUDA_SUCCESS) {
		free(c);
		return rc;
	}
	c->id = id;
	c->origin = s;
	pthread_mutex_lock(&lock);
	c->next = captures;
	captures = c;
	atomic_fetch_add(&n_captures, 1);
	if (!join(c, s, NULL, 0)) {
		forget(c);
		rc = CUDA_ERROR_OUT_OF_MEMORY;
	}
	pthread_mutex_unlock(&lock);
	if (rc != CUDA_SUCCESS) {
		cuGraphDestroy(c->graph);
		free(c);
	}
	return rc;
}

CUresult vgpu_capture_end(CUstream s, CUresult host_rc, CUgraph host_graph, CUgraph *out)
{
	struct member *m;
	struct capture *c;

	pthread_mutex_lock(&lock);
	c = find(s, &m);
	if (c && c->origin == s)
		forget(c);
	else
		c = NULL;
	pthread_mutex_unlock(&lock);
	if (!c) {
		/* Not begun here (or not its origin): the host's answer stands. */
		if (host_rc == CUDA_SUCCESS)
			*out = host_graph;
		return host_rc;
	}
	CUresult rc = c->invalid ? CUDA_ERROR_STREAM_CAPTURE_INVALIDATED : CUDA_SUCCESS;

	if (c->guest && !c->invalid) {
		*out = c->graph;
		c->graph = NULL;
	} else if (!c->invalid) {
		rc = host_rc;
		if (rc == CUDA_SUCCESS)
			*out = host_graph;
		host_graph = NULL;
	}
	if (host_graph && host_rc == CUDA_SUCCESS)
		cuGraphDestroy(host_graph);
	if (c->graph)
		cuGraphDestroy(c->graph);
	free(c);
	return rc;
}

/* Under the lock: @c can no longer end well; the call that made it so
 * fails CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, later ones _INVALIDATED. */
static int invalidate(struct capture *c, CUresult *rc)
{
	*rc = c->invalid ? CUDA_ERROR_STREAM_CAPTURE_INVALIDATED
			 : CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
	c->invalid = true;
	return VGPU_CAPTURE_DONE;
}

/* Under the lock: what becomes of a call the host's capture gets (@c
 * holds only work the host can do) or not. */
static int verdict(const struct capture *c, CUresult *rc)
{
	*rc = CUDA_SUCCESS;
	return c->guest ? VGPU_CAPTURE_DONE : VGPU_CAPTURE_POST;
}

/* Under the lock: records and waits of events go to the host's capture
 * whatever its graph becomes, so that its streams fork and join there as
 * here and its end finds them joined (then its graph is dropped). */
static int joins(CUresult *rc)
{
	*rc = CUDA_SUCCESS;
	return VGPU_CAPTURE_POST;
}

int vgpu_capture_node(CUstream s, CUgraphNodeParams *p, bool guest, CUdeviceptr *dptr,
		      CUresult *rc)
{
	struct member *m;
	struct capture *c;
	CUgraphNode node;
	int v;

	if (nested || !(c = enter(s, &m)))
		return VGPU_CAPTURE_OFF;
	if (c->invalid || (guest && c->host)) {
		v = invalidate(c, rc);
	} else if (c->host) {
		v = verdict(c, rc); /* this graph is not the result any more */
	} else {
		*rc = cuGraphAddNode(&node, c->graph, m->deps, NULL, m->n, p);
		if (*rc == CUDA_SUCCESS && !set_deps(m, &node, 1))
			*rc = CUDA_ERROR_OUT_OF_MEMORY;
		if (*rc == CUDA_SUCCESS && guest) {
			c->guest = true;
			if (dptr)
				*dptr = p->alloc.dptr;
		}
		if (*rc != CUDA_SUCCESS && (guest || c->guest)) {
			/* Not recorded, and only this graph can be the result: the
			 * call fails, as CUDA's would, and so does the capture. */
			c->invalid = true;
			v = VGPU_CAPTURE_DONE;
		} else {
			if (*rc != CUDA_SUCCESS)
				c->host = true; /* not recorded: the host's graph has it */
			v = verdict(c, rc);
		}
	}
	pthread_mutex_unlock(&lock);
	return v;
}

int vgpu_capture_host_call(CUstream s, CUresult *rc)
{
	struct member *m;
	struct capture *c;
	int v;

	if (nested || !(c = enter(s, &m)))
		return VGPU_CAPTURE_OFF;
	if (c->guest || c->invalid) {
		v = invalidate(c, rc);
	} else {
		c->host = true;
		v = verdict(c, rc);
	}
	pthread_mutex_unlock(&lock);
	return v;
}

int vgpu_capture_refuse(CUstream s, CUresult *rc)
{
	struct member *m;
	struct capture *c;
	int v;

	if (!(c = enter(s, &m)))
		return VGPU_CAPTURE_OFF;
	v = invalidate(c, rc);
	pthread_mutex_unlock(&lock);
	return v;
}

bool vgpu_capture_invalid(CUstream s)
{
	struct member *m;
	struct capture *c;
	bool invalid;

	if (!(c = enter(s, &m)))
		return false;
	invalid = c->invalid;
	pthread_mutex_unlock(&lock);
	return invalid;
}

void vgpu_capture_event_gone(CUevent ev)
{
	if (!atomic_load(&n_captures))
		return;
	pthread_mutex_lock(&lock);
	for (struct snapshot **p = &snapshots; *p; p = &(*p)->next)
		if ((*p)->ev == ev) {
			drop_snapshot(p);
			break;
		}
	pthread_mutex_unlock(&lock);
}

int vgpu_capture_record(CUevent ev, CUstream s, CUresult *rc)
{
	struct snapshot *sn = NULL;
	struct member *m;
	struct capture *c;
	int v;

	if (!(c = enter(s, &m))) {
		vgpu_capture_event_gone(ev); /* recorded outside: no capture to join */
		return VGPU_CAPTURE_OFF;
	}
	for (struct snapshot *x = snapshots; x; x = x->next)
		if (x->ev == ev)
			sn = x;
	/* The copy first: a snapshot is listed only with its capture set. */
	CUgraphNode *deps = m->n ? malloc(m->n * sizeof(*deps)) : NULL;
	bool fresh = !sn && (!m->n || deps);

	if (fresh)
		sn = calloc(1, sizeof(*sn));
	if (!sn || (m->n && !deps)) {
		free(deps);
		if (fresh)
			free(sn);
		c->host = true; /* no memory to record the join: the host's graph has it */
		v = c->guest ? invalidate(c, rc) : verdict(c, rc);
	} else {
		if (m->n)
			memcpy(deps, m->deps, m->n * sizeof(*deps));
		if (fresh) {
			sn->ev = ev;
			sn->next = snapshots;
			snapshots = sn;
		}
		free(sn->deps);
		sn->deps = deps;
		sn->n = m->n;
		sn->c = c;
		v = joins(rc);
	}
	pthread_mutex_unlock(&lock);
	return v;
}

int vgpu_capture_wait(CUstream s, CUevent ev, CUresult *rc)
{
	struct snapshot *sn = NULL;
	struct member *m;
	struct capture *c;
	int v = VGPU_CAPTURE_OFF;
	uint64_t host;

	if (!atomic_load(&n_captures) || vgpu_cuda_stream_host(s, &host) != CUDA_SUCCESS)
		return v; /* a stream not ours: the caller refuses it */
	pthread_mutex_lock(&lock);
	for (struct snapshot *x = snapshots; x; x = x->next)
		if (x->ev == ev)
			sn = x;
	c = host ? find(s, &m) : NULL;
	if (sn && !host) {
		v = invalidate(sn->c, rc); /* a default stream cannot join a capture */
	} else if (!sn) {
		/* An event from outside any capture: the host's capture waits for it. */
		if (c && (c->guest || c->invalid)) {
			v = invalidate(c, rc);
		} else if (c) {
			c->host = true;
			v = verdict(c, rc);
		}
	} else if (c && c != sn->c) {
		v = invalidate(sn->c, rc); /* two captures cannot merge */
		c->invalid = true;
	} else if (c) {
		/* Both dependencies, without repeats. */
		size_t n = m->n;
		CUgraphNode *all = malloc((m->n + sn->n) * sizeof(*all) + 1);

		if (!all) {
			v = invalidate(c, rc);
		} else {
			if (m->n)
				memcpy(all, m->deps, m->n * sizeof(*all));
			for (size_t i = 0; i < sn->n; i++) {
				size_t j = 0;

				while (j < n && all[j] != sn->deps[i])
					j++;
				if (j == n)
					all[n++] = sn->deps[i];
			}
			v = set_deps(m, all, n) ? joins(rc) : invalidate(c, rc);
			free(all);
		}
	} else {
		c = sn->c;
		v = join(c, s, sn->deps, sn->n) ? joins(rc) : invalidate(c, rc);
	}
	pthread_mutex_unlock(&lock);
	return v;
}

void vgpu_capture_stream_gone(CUstream s)
{
	struct member *m;
	struct capture *c;

	if (!(c = enter(s, &m)))
		return;
	if (c->origin != s) {
		free(m->deps);
		*m = c->m[--c->n_m];
		c = NULL;
	} else {
		forget(c); /* its origin gone: the capture can never end */
	}
	pthread_mutex_unlock(&lock);
	if (c) {
		cuGraphDestroy(c->graph);
		free(c);
	}
}

/* Whether one side of a copy (@type, @host or @dev, its first byte at
 * @x, @y, @z of rows @pitch bytes apart, @height rows a slice) is memory
 * only the guest's graph can copy when it runs: an array (the worker's
 * capture takes none), or host memory outside the window. The extent is
 * reckoned as the copy itself reckons it (array.c's side_of(): no pitch
 * means the width, no height the copy's); one that overflows is outside. */
static bool outside(CUmemorytype type, const void *host, CUdeviceptr dev, size_t x, size_t y,
		    size_t z, size_t pitch, size_t height, const CUDA_MEMCPY3D *c)
{
	const char *p = host;
	size_t h = c->Height ? c->Height : 1, d = c->Depth ? c->Depth : 1;
	size_t first, rows, len;
	uint64_t off;

	if (type == CU_MEMORYTYPE_ARRAY)
		return true;
	if (type == CU_MEMORYTYPE_UNIFIED) {
		if (vgpu_cuda_is_device(dev))
			return false;
		p = (const char *)(uintptr_t)dev;
	} else if (type != CU_MEMORYTYPE_HOST) {
		return false;
	}
	pitch = pitch ? pitch : c->WidthInBytes;
	height = height ? height : h;
	if (!p || __builtin_mul_overflow(z, height, &first) ||
	    __builtin_add_overflow(first, y, &first) ||
	    __builtin_mul_overflow(first, pitch, &first) ||
	    __builtin_add_overflow(first, x, &first) ||
	    __builtin_mul_overflow(d - 1, height, &rows) ||
	    __builtin_add_overflow(rows, h - 1, &rows) ||
	    __builtin_mul_overflow(rows, pitch, &len) ||
	    __builtin_add_overflow(len, c->WidthInBytes, &len) ||
	    (uintptr_t)p + first < (uintptr_t)p)
		return true;
	return !vgpu_cuda_window_offset(p + first, len ? len : 1, &off);
}

int vgpu_capture_copy(const CUDA_MEMCPY3D *c, CUstream s, CUresult *rc)
{
	CUgraphNodeParams p = { .type = CU_GRAPH_NODE_TYPE_MEMCPY, .memcpy = { .copyParams = *c } };

	if (nested || !vgpu_cuda_stream_capture(s))
		return VGPU_CAPTURE_OFF;
	bool guest = outside(c->srcMemoryType, c->srcHost, c->srcDevice, c->srcXInBytes, c->srcY,
			     c->srcZ, c->srcPitch, c->srcHeight, c) ||
		     outside(c->dstMemoryType, c->dstHost, c->dstDevice, c->dstXInBytes, c->dstY,
			     c->dstZ, c->dstPitch, c->dstHeight, c);

	return vgpu_capture_node(s, &p, guest, NULL, rc);
}

int vgpu_capture_copy_2d(const CUDA_MEMCPY2D *c, CUstream s, CUresult *rc)
{
	CUDA_MEMCPY3D c3 = vgpu_cuda_memcpy3d_of(c);

	return vgpu_capture_copy(&c3, s, rc);
}
