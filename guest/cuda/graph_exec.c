/* SPDX-License-Identifier: MIT */
/*
 * graph_exec.c - executable graphs (graph.h). One made from a captured
 * graph is the host's: instantiating and destroying it wait for the
 * host's answer, a launch (or upload) is posted like a kernel's. One made
 * from a graph built here is that graph's nodes in an order their
 * dependencies allow, child graphs' nodes in place of theirs, each a copy
 * of what its node did then; a launch posts them on the stream in that
 * order, each as the program's own call (a host node waits for the stream,
 * as cuLaunchHostFunc does here). Changing the graph afterwards changes
 * nothing here; cuGraphExec*NodeSetParams and cuGraphExecUpdate do.
 *
 * Never: take a handle that is not one of ours, or keep a step that
 * points into a graph's memory.
 */
#include <stdlib.h>
#include <string.h>

#include "graph.h"

#define MAX_DEPTH 64 /* child graphs within child graphs */

struct index_of {
	const struct CUgraphNode_st *node;
	size_t index;
};

static int by_node(const void *a, const void *b)
{
	const struct CUgraphNode_st *x = ((const struct index_of *)a)->node;
	const struct CUgraphNode_st *y = ((const struct index_of *)b)->node;

	return x < y ? -1 : x > y;
}

/* @node's index among the @n sorted by by_node in @map (it is there). */
static size_t lookup(const struct index_of *map, size_t n, const struct CUgraphNode_st *node)
{
	struct index_of key = { .node = node };

	return ((const struct index_of *)bsearch(&key, map, n, sizeof(*map), by_node))->index;
}

/* @g's nodes' indexes, each node's dependencies as indexes (*@ret_deps,
 * *@ret_first: where each node's begin), in an order they allow
 * (*@ret_order): CUDA_ERROR_INVALID_VALUE for a cycle, *@err_node one of
 * its nodes. */
static CUresult order(const struct CUgraph_st *g, size_t **ret_order, size_t **ret_deps,
		      size_t **ret_first, CUgraphNode *err_node)
{
	size_t n = g->n_nodes, edges = 0, done = 0, head = 0;
	struct index_of *map = calloc(n ? n : 1, sizeof(*map));
	size_t *left = calloc(n ? n : 1, sizeof(*left)), *ord = calloc(n ? n : 1, sizeof(*ord));
	size_t *first = calloc(n + 1, sizeof(*first)), *deps = NULL, *from = NULL, *out = NULL;
	CUresult rc = CUDA_ERROR_OUT_OF_MEMORY;

	for (size_t i = 0; i < n; i++)
		edges += g->nodes[i]->n_deps;
	deps = calloc(edges ? edges : 1, sizeof(*deps));
	if (!map || !left || !ord || !first || !deps)
		goto out;
	for (size_t i = 0; i < n; i++)
		map[i] = (struct index_of){ .node = g->nodes[i], .index = i };
	qsort(map, n, sizeof(*map), by_node);
	for (size_t i = 0, k = 0; i < n; i++) {
		first[i] = k;
		for (size_t d = 0; d < g->nodes[i]->n_deps; d++)
			deps[k++] = lookup(map, n, g->nodes[i]->deps[d]);
		left[i] = g->nodes[i]->n_deps;
	}
	first[n] = edges;
	/* Kahn's: the ready nodes in the order they were added, then each
	 * one's dependents (@out, from @from) as their last dependency is
	 * placed. */
	from = calloc(n + 1, sizeof(*from));
	out = calloc(edges ? edges : 1, sizeof(*out));
	if (!from || !out)
		goto out;
	for (size_t k = 0; k < edges; k++)
		from[deps[k] + 1]++;
	for (size_t i = 0; i < n; i++)
		from[i + 1] += from[i];
	for (size_t j = 0, *at = left; j < n; j++) /* left: each list's fill, for now */
		at[j] = from[j];
	for (size_t j = 0; j < n; j++)
		for (size_t k = first[j]; k < first[j + 1]; k++)
			out[left[deps[k]]++] = j;
	for (size_t i = 0; i < n; i++)
		left[i] = g->nodes[i]->n_deps;
	for (size_t i = 0; i < n; i++)
		if (!left[i])
			ord[done++] = i;
	while (head < done) {
		size_t at = ord[head++];

		for (size_t k = from[at]; k < from[at + 1]; k++)
			if (--left[out[k]] == 0)
				ord[done++] = out[k];
	}
	rc = CUDA_SUCCESS;
	if (done < n) {
		for (size_t i = 0; i < n && rc == CUDA_SUCCESS; i++)
			if (left[i]) {
				*err_node = g->nodes[i];
				rc = CUDA_ERROR_INVALID_VALUE;
			}
		vgpu_cuda_log(true, "a graph with a cycle cannot be instantiated: "
				    "CUDA_ERROR_INVALID_VALUE");
	}
out:
	free(map);
	free(left);
	free(from);
	free(out);
	if (rc != CUDA_SUCCESS) {
		free(ord);
		free(deps);
		free(first);
		return rc;
	}
	*ret_order = ord;
	*ret_deps = deps;
	*ret_first = first;
	return CUDA_SUCCESS;
}

static CUresult step_room(struct CUgraphExec_st *e, size_t *cap)
{
	struct vgpu_graph_step *grown;
	size_t more;

	if (e->n_steps < *cap)
		return CUDA_SUCCESS;
	more = *cap ? 2 * *cap : 16;
	grown = more > SIZE_MAX / sizeof(*grown) ? NULL : realloc(e->steps, more * sizeof(*grown));
	if (!grown)
		return CUDA_ERROR_OUT_OF_MEMORY;
	e->steps = grown;
	*cap = more;
	return CUDA_SUCCESS;
}

/* @g's steps appended to @e's (room for *@cap), each for node @top of the
 * instantiated graph (NULL: its own node, at @depth 0). */
static CUresult flatten(struct CUgraphExec_st *e, size_t *cap, const struct CUgraph_st *g,
			CUgraphNode top, int depth, CUgraphNode *err_node)
{
	size_t *ord, *deps, *first;
	CUresult rc;

	if (depth > MAX_DEPTH)
		return CUDA_ERROR_INVALID_VALUE;
	rc = order(g, &ord, &deps, &first, err_node);
	if (rc != CUDA_SUCCESS)
		return rc;
	free(deps);
	free(first);
	for (size_t i = 0; i < g->n_nodes && rc == CUDA_SUCCESS; i++) {
		const struct CUgraphNode_st *node = g->nodes[ord[i]];
		CUgraphNode owner = top ? top : (CUgraphNode)node;

		if (node->op.type == CU_GRAPH_NODE_TYPE_GRAPH) {
			rc = flatten(e, cap, node->op.child, owner, depth + 1, err_node);
			continue;
		}
		if (node->op.type == CU_GRAPH_NODE_TYPE_EMPTY)
			continue;
		rc = step_room(e, cap);
		if (rc == CUDA_SUCCESS)
			rc = vgpu_graph_op_copy(&e->steps[e->n_steps].op, &node->op);
		if (rc == CUDA_SUCCESS) {
			e->steps[e->n_steps].node = owner;
			e->steps[e->n_steps].enabled = true;
			e->n_steps++;
		}
	}
	free(ord);
	return rc;
}

static void steps_free(struct vgpu_graph_step *steps, size_t n)
{
	for (size_t i = 0; i < n; i++)
		vgpu_graph_op_free(&steps[i].op);
	free(steps);
}

static void tops_free(struct vgpu_exec_top *top, size_t n)
{
	for (size_t i = 0; top && i < n; i++)
		free(top[i].deps);
	free(top);
}

/* @g's nodes, types and edges as they are now, for cuGraphExecUpdate. */
static CUresult tops_of(const struct CUgraph_st *g, struct vgpu_exec_top **ret, CUgraphNode *err)
{
	size_t *ord, *deps, *first, n = g->n_nodes;
	struct vgpu_exec_top *top;
	CUresult rc = order(g, &ord, &deps, &first, err);

	if (rc != CUDA_SUCCESS)
		return rc;
	top = calloc(n ? n : 1, sizeof(*top));
	for (size_t i = 0; top && i < n; i++) {
		size_t k = first[i + 1] - first[i];

		top[i] = (struct vgpu_exec_top){ .node = g->nodes[i], .type = g->nodes[i]->op.type,
						 .n_deps = k };
		top[i].deps = malloc(k ? k * sizeof(size_t) : 1);
		if (!top[i].deps) {
			tops_free(top, n);
			top = NULL;
			break;
		}
		memcpy(top[i].deps, deps + first[i], k * sizeof(size_t));
	}
	free(ord);
	free(deps);
	free(first);
	if (!top)
		return CUDA_ERROR_OUT_OF_MEMORY;
	*ret = top;
	return CUDA_SUCCESS;
}

/* The executable graph of built graph @g. */
static CUresult instantiate_built(struct CUgraphExec_st *e, const struct CUgraph_st *g,
				  CUgraphNode *err_node)
{
	size_t cap = 0;
	CUresult rc = flatten(e, &cap, g, NULL, 0, err_node);

	if (rc == CUDA_SUCCESS)
		rc = tops_of(g, &e->top, err_node);
	if (rc != CUDA_SUCCESS) {
		steps_free(e->steps, e->n_steps);
		e->steps = NULL;
		e->n_steps = 0;
		return rc;
	}
	e->n_top = g->n_nodes;
	return CUDA_SUCCESS;
}

/* Flags an executable graph of a built graph may have (priorities are
 * the launches'). */
#define BUILT_FLAGS                                                                          \
	(CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH | CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD | \
	 CUDA_GRAPH_INSTANTIATE_FLAG_USE_NODE_PRIORITY)

static CUresult instantiate(CUgraphExec *out, CUgraph g, unsigned long long flags,
			    CUgraphNode *err_node)
{
	struct CUgraphExec_st *e;
	CUresult rc;

	*err_node = NULL;
	if (!out)
		return CUDA_ERROR_INVALID_VALUE;
	if (!VGPU_CUDA_IS(g, VGPU_GRAPH_MAGIC))
		return CUDA_ERROR_INVALID_HANDLE;
	if (!g->host && (flags & ~(unsigned long long)BUILT_FLAGS)) {
		vgpu_cuda_log(true, "graph instantiation flags %#llx are not served for a graph "
				    "built node by node: CUDA_ERROR_NOT_SUPPORTED", flags);
		return CUDA_ERROR_NOT_SUPPORTED;
	}
	if (!g->host && vgpu_graph_mem_instantiated(g)) {
		vgpu_cuda_log(true, "a graph with memory allocation nodes has one executable graph "
				    "at a time: CUDA_ERROR_NOT_SUPPORTED");
		return CUDA_ERROR_NOT_SUPPORTED;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return CUDA_ERROR_OUT_OF_MEMORY;
	if (g->host) {
		rc = vgpu_cuda_call_args(VGPU_CUDA_GRAPH_INSTANTIATE, g->host, flags, 0, &e->host);
		if (rc == CUDA_SUCCESS && !e->host)
			rc = CUDA_ERROR_UNKNOWN;
	} else {
		rc = instantiate_built(e, g, err_node);
	}
	if (rc != CUDA_SUCCESS) {
		free(e);
		return rc;
	}
	e->magic = VGPU_EXEC_MAGIC;
	e->flags = flags;
	*out = e;
	return CUDA_SUCCESS;
}

CUresult cuGraphInstantiateWithFlags(CUgraphExec *phGraphExec, CUgraph hGraph,
				     unsigned long long flags)
{
	CUgraphNode err;

	if (flags & CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD)
		return CUDA_ERROR_INVALID_VALUE; /* cuGraphInstantiateWithParams' only */
	return instantiate(phGraphExec, hGraph, flags, &err);
}

/* CUDA 11.0's cuGraphInstantiate (cuda.h maps the name to the flags'
 * version since 12.0): the node in error, no log. */
CUresult cuGraphInstantiate_v2(CUgraphExec *phGraphExec, CUgraph hGraph, CUgraphNode *phErrorNode,
			       char *logBuffer, size_t bufferSize)
{
	CUgraphNode err;
	CUresult rc = instantiate(phGraphExec, hGraph, 0, &err);

	if (phErrorNode)
		*phErrorNode = err;
	if (logBuffer && bufferSize)
		logBuffer[0] = '\0';
	return rc;
}

static CUresult launch(CUgraphExec exec, CUstream stream, bool upload);

CUresult cuGraphInstantiateWithParams(CUgraphExec *phGraphExec, CUgraph hGraph,
				      CUDA_GRAPH_INSTANTIATE_PARAMS *instantiateParams)
{
	CUDA_GRAPH_INSTANTIATE_PARAMS *p = instantiateParams;
	CUgraphNode err;
	CUresult rc;

	if (!p)
		return CUDA_ERROR_INVALID_VALUE;
	rc = instantiate(phGraphExec, hGraph, p->flags, &err);
	if (rc == CUDA_SUCCESS && (p->flags & CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD)) {
		rc = launch(*phGraphExec, p->hUploadStream, true);
		if (rc != CUDA_SUCCESS) { /* no executable graph made after all */
			cuGraphExecDestroy(*phGraphExec);
			*phGraphExec = NULL;
		}
	}
	p->hErrNode_out = err;
	p->result_out = rc == CUDA_SUCCESS ? CUDA_GRAPH_INSTANTIATE_SUCCESS
			: err		   ? CUDA_GRAPH_INSTANTIATE_INVALID_STRUCTURE
					   : CUDA_GRAPH_INSTANTIATE_ERROR;
	return rc;
}

static CUresult exec_of(CUgraphExec exec)
{
	return VGPU_CUDA_IS(exec, VGPU_EXEC_MAGIC) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

/* GRAPH_LAUNCH of a captured graph's @exec on @stream (@upload:
 * cuGraphUpload), posted; or a built graph's steps, posted in order (an
 * upload has nothing to do: nothing is kept on the GPU ahead). */
static CUresult launch(CUgraphExec exec, CUstream stream, bool upload)
{
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_GRAPH_LAUNCH };
	uint64_t host;
	CUresult rc = vgpu_cuda_ready();

	if (rc == CUDA_SUCCESS)
		rc = vgpu_cuda_stream_host(stream, &host);
	if (rc == CUDA_SUCCESS)
		rc = exec_of(exec);
	if (rc != CUDA_SUCCESS)
		return rc;
	/* Not into a capture: NVIDIA's driver refuses that too
	 * (CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, the capture invalidated;
	 * the probe run natively on driver 580 shows it). */
	if (!upload && vgpu_capture_refuse(stream, &rc) == VGPU_CAPTURE_DONE)
		return rc;
	if (!exec->host) {
		if (!upload)
			rc = vgpu_graph_mem_launch(exec);
		for (size_t i = 0; !upload && i < exec->n_steps && rc == CUDA_SUCCESS; i++)
			if (exec->steps[i].enabled)
				rc = vgpu_graph_op_run(&exec->steps[i].op, stream);
		return rc;
	}
	m.v[0] = exec->host;
	m.v[1] = host;
	m.v[2] = upload;
	return vgpu_cuda_post(&m, NULL);
}

CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream)
{
	return launch(hGraphExec, hStream, false);
}

CUresult cuGraphUpload(CUgraphExec hGraphExec, CUstream hStream)
{
	return launch(hGraphExec, hStream, true);
}

CUresult cuGraphExecDestroy(CUgraphExec hGraphExec)
{
	CUresult rc = exec_of(hGraphExec);

	if (rc != CUDA_SUCCESS)
		return rc;
	if (hGraphExec->host)
		rc = vgpu_cuda_call_args(VGPU_CUDA_GRAPH_DESTROY, hGraphExec->host, 1, 0, NULL);
	steps_free(hGraphExec->steps, hGraphExec->n_steps);
	tops_free(hGraphExec->top, hGraphExec->n_top);
	hGraphExec->magic = 0;
	free(hGraphExec);
	return rc;
}

CUresult cuGraphExecGetFlags(CUgraphExec hGraphExec, cuuint64_t *flags)
{
	CUresult rc = exec_of(hGraphExec);

	if (rc == CUDA_SUCCESS && !flags)
		rc = CUDA_ERROR_INVALID_VALUE;
	if (rc == CUDA_SUCCESS)
		*flags = hGraphExec->flags;
	return rc;
}

/* The built graph's executable @exec and its instantiated graph's node
 * @node, of @type: into *@e. */
static CUresult exec_node(CUgraphExec exec, CUgraphNode node, int type, struct CUgraphExec_st **e)
{
	CUresult rc = exec_of(exec);

	if (rc == CUDA_SUCCESS && exec->host) {
		vgpu_cuda_log(true, "an executable graph made by stream capture cannot be changed "
				    "node by node: CUDA_ERROR_NOT_SUPPORTED");
		rc = CUDA_ERROR_NOT_SUPPORTED;
	}
	if (rc == CUDA_SUCCESS)
		vgpu_graph_node(node, type, &rc);
	for (size_t i = 0; rc == CUDA_SUCCESS && i < exec->n_top; i++)
		if (exec->top[i].node == node) {
			*e = exec;
			return CUDA_SUCCESS;
		}
	return rc == CUDA_SUCCESS ? CUDA_ERROR_INVALID_VALUE : rc;
}

/* @node's steps in @e take @op (made: @rc), a copy each. */
static CUresult exec_set(CUresult rc, struct vgpu_graph_op *op, CUgraphExec exec, CUgraphNode node)
{
	struct CUgraphExec_st *e;

	if (rc == CUDA_SUCCESS)
		rc = exec_node(exec, node, op->type, &e);
	for (size_t i = 0; rc == CUDA_SUCCESS && i < e->n_steps; i++) {
		struct vgpu_graph_op copy;

		if (e->steps[i].node != node)
			continue;
		rc = vgpu_graph_op_copy(&copy, op);
		if (rc == CUDA_SUCCESS) {
			vgpu_graph_op_free(&e->steps[i].op);
			e->steps[i].op = copy;
		}
	}
	vgpu_graph_op_free(op);
	return rc;
}

CUresult cuGraphExecKernelNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
					const CUDA_KERNEL_NODE_PARAMS *nodeParams)
{
	CUgraphNodeParams p = { .type = CU_GRAPH_NODE_TYPE_KERNEL };
	struct vgpu_graph_op op = { .type = CU_GRAPH_NODE_TYPE_EMPTY };

	_Static_assert(sizeof(p.kernel) == sizeof(*nodeParams), "v3 is v2's layout");
	if (!nodeParams)
		return CUDA_ERROR_INVALID_VALUE;
	memcpy(&p.kernel, nodeParams, sizeof(*nodeParams));
	return exec_set(vgpu_graph_op_from(&op, &p), &op, hGraphExec, hNode);
}

CUresult cuGraphExecKernelNodeSetParams_v1(CUgraphExec hGraphExec, CUgraphNode hNode,
					   const CUDA_KERNEL_NODE_PARAMS_v1 *nodeParams)
{
	CUDA_KERNEL_NODE_PARAMS v2 = { 0 };

	if (!nodeParams)
		return CUDA_ERROR_INVALID_VALUE;
	memcpy(&v2, nodeParams, sizeof(*nodeParams));
	return cuGraphExecKernelNodeSetParams(hGraphExec, hNode, &v2);
}

CUresult cuGraphExecMemcpyNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
					const CUDA_MEMCPY3D *copyParams, CUcontext ctx)
{
	CUgraphNodeParams p = { .type = CU_GRAPH_NODE_TYPE_MEMCPY };
	struct vgpu_graph_op op = { .type = CU_GRAPH_NODE_TYPE_EMPTY };

	(void)ctx;
	if (!copyParams)
		return CUDA_ERROR_INVALID_VALUE;
	p.memcpy.copyParams = *copyParams;
	return exec_set(vgpu_graph_op_from(&op, &p), &op, hGraphExec, hNode);
}

CUresult cuGraphExecMemsetNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
					const CUDA_MEMSET_NODE_PARAMS *memsetParams, CUcontext ctx)
{
	CUgraphNodeParams p = { .type = CU_GRAPH_NODE_TYPE_MEMSET };
	struct vgpu_graph_op op = { .type = CU_GRAPH_NODE_TYPE_EMPTY };

	(void)ctx;
	if (!memsetParams)
		return CUDA_ERROR_INVALID_VALUE;
	memcpy(&p.memset, memsetParams, sizeof(*memsetParams));
	return exec_set(vgpu_graph_op_from(&op, &p), &op, hGraphExec, hNode);
}

CUresult cuGraphExecHostNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
				      const CUDA_HOST_NODE_PARAMS *nodeParams)
{
	CUgraphNodeParams p = { .type = CU_GRAPH_NODE_TYPE_HOST };
	struct vgpu_graph_op op = { .type = CU_GRAPH_NODE_TYPE_EMPTY };

	if (!nodeParams)
		return CUDA_ERROR_INVALID_VALUE;
	p.host.fn = nodeParams->fn;
	p.host.userData = nodeParams->userData;
	return exec_set(vgpu_graph_op_from(&op, &p), &op, hGraphExec, hNode);
}

static CUresult exec_event(CUgraphExec exec, CUgraphNode node, CUgraphNodeType type, CUevent ev)
{
	CUgraphNodeParams p = { .type = type };
	struct vgpu_graph_op op = { .type = CU_GRAPH_NODE_TYPE_EMPTY };

	if (type == CU_GRAPH_NODE_TYPE_EVENT_RECORD)
		p.eventRecord.event = ev;
	else
		p.eventWait.event = ev;
	return exec_set(vgpu_graph_op_from(&op, &p), &op, exec, node);
}

CUresult cuGraphExecEventRecordNodeSetEvent(CUgraphExec hGraphExec, CUgraphNode hNode,
					    CUevent event)
{
	return exec_event(hGraphExec, hNode, CU_GRAPH_NODE_TYPE_EVENT_RECORD, event);
}

CUresult cuGraphExecEventWaitNodeSetEvent(CUgraphExec hGraphExec, CUgraphNode hNode,
					  CUevent event)
{
	return exec_event(hGraphExec, hNode, CU_GRAPH_NODE_TYPE_WAIT_EVENT, event);
}

CUresult cuGraphExecNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
				  CUgraphNodeParams *nodeParams)
{
	struct vgpu_graph_op op = { .type = CU_GRAPH_NODE_TYPE_EMPTY };

	if (!nodeParams)
		return CUDA_ERROR_INVALID_VALUE;
	if (nodeParams->type == CU_GRAPH_NODE_TYPE_GRAPH || nodeParams->type == CU_GRAPH_NODE_TYPE_EMPTY)
		return CUDA_ERROR_INVALID_VALUE; /* nothing of theirs to change here */
	return exec_set(vgpu_graph_op_from(&op, nodeParams), &op, hGraphExec, hNode);
}

/* Kernel, memcpy and memset nodes may be turned off and on (CUDA's rule). */
static bool switchable(CUgraphNodeType t)
{
	return t == CU_GRAPH_NODE_TYPE_KERNEL || t == CU_GRAPH_NODE_TYPE_MEMCPY ||
	       t == CU_GRAPH_NODE_TYPE_MEMSET;
}

CUresult cuGraphNodeSetEnabled(CUgraphExec hGraphExec, CUgraphNode hNode, unsigned int isEnabled)
{
	struct CUgraphExec_st *e;
	CUresult rc = exec_node(hGraphExec, hNode, -1, &e);

	if (rc == CUDA_SUCCESS && !switchable(hNode->op.type))
		rc = CUDA_ERROR_INVALID_VALUE;
	for (size_t i = 0; rc == CUDA_SUCCESS && i < e->n_steps; i++)
		if (e->steps[i].node == hNode)
			e->steps[i].enabled = isEnabled != 0;
	return rc;
}

CUresult cuGraphNodeGetEnabled(CUgraphExec hGraphExec, CUgraphNode hNode, unsigned int *isEnabled)
{
	struct CUgraphExec_st *e;
	CUresult rc = exec_node(hGraphExec, hNode, -1, &e);

	if (rc == CUDA_SUCCESS && (!switchable(hNode->op.type) || !isEnabled))
		rc = CUDA_ERROR_INVALID_VALUE;
	for (size_t i = 0; rc == CUDA_SUCCESS && i < e->n_steps; i++)
		if (e->steps[i].node == hNode) {
			*isEnabled = e->steps[i].enabled;
			break;
		}
	return rc;
}

/* Whether @g has the topology @e was instantiated with: its nodes in the
 * same order, of the same types, with the same dependencies; else
 * *@result says what differs at *@err_node. */
static bool same_shape(const struct CUgraphExec_st *e, const struct vgpu_exec_top *now,
		       const struct CUgraph_st *g, CUgraphExecUpdateResult *result,
		       CUgraphNode *err_node)
{
	const struct vgpu_exec_top *was = e->top;

	*result = CU_GRAPH_EXEC_UPDATE_ERROR_TOPOLOGY_CHANGED;
	*err_node = NULL;
	if (g->n_nodes != e->n_top)
		return false;
	for (size_t i = 0; i < g->n_nodes; i++) {
		*err_node = g->nodes[i];
		if (now[i].type != was[i].type) {
			*result = CU_GRAPH_EXEC_UPDATE_ERROR_NODE_TYPE_CHANGED;
			return false;
		}
		if (now[i].n_deps != was[i].n_deps)
			return false;
		for (size_t d = 0; d < now[i].n_deps; d++) {
			bool found = false;

			for (size_t k = 0; k < was[i].n_deps && !found; k++)
				found = was[i].deps[k] == now[i].deps[d];
			if (!found)
				return false;
		}
	}
	*err_node = NULL;
	*result = CU_GRAPH_EXEC_UPDATE_SUCCESS;
	return true;
}

/* Whether step @now, if a memory node, is what step @was is. */
static bool same_mem(const struct vgpu_graph_op *now, const struct vgpu_graph_op *was)
{
	if (now->type != CU_GRAPH_NODE_TYPE_MEM_ALLOC && now->type != CU_GRAPH_NODE_TYPE_MEM_FREE)
		return true;
	if (!was || was->type != now->type)
		return false;
	return now->type == CU_GRAPH_NODE_TYPE_MEM_ALLOC ? now->alloc.a == was->alloc.a
							 : now->mfree.ptr == was->mfree.ptr;
}

CUresult cuGraphExecUpdate(CUgraphExec hGraphExec, CUgraph hGraph,
			   CUgraphExecUpdateResultInfo *resultInfo)
{
	struct CUgraphExec_st fresh = { 0 };
	struct vgpu_exec_top *now = NULL;
	CUgraphExecUpdateResult result = CU_GRAPH_EXEC_UPDATE_ERROR;
	CUgraphNode err = NULL;
	struct CUgraph_st *g;
	CUresult rc = exec_of(hGraphExec);

	if (rc == CUDA_SUCCESS && !resultInfo)
		rc = CUDA_ERROR_INVALID_VALUE;
	if (rc != CUDA_SUCCESS)
		return rc;
	g = vgpu_graph_built(hGraph, &rc);
	if ((g || rc == CUDA_ERROR_NOT_SUPPORTED) && (hGraphExec->host || hGraph->host)) {
		/* As the driver says of an update it cannot do, so that a program
		 * instantiates the graph anew (the host holds captured graphs). */
		vgpu_cuda_log(true, "a graph made by stream capture is not updated here: "
				    "CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE, instantiate it anew");
		resultInfo->result = CU_GRAPH_EXEC_UPDATE_ERROR_NOT_SUPPORTED;
		resultInfo->errorNode = NULL;
		resultInfo->errorFromNode = NULL;
		return CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE;
	}
	if (rc == CUDA_SUCCESS)
		rc = tops_of(g, &now, &err);
	if (rc == CUDA_SUCCESS && !same_shape(hGraphExec, now, g, &result, &err))
		rc = CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE;
	if (rc == CUDA_SUCCESS)
		rc = instantiate_built(&fresh, g, &err);
	tops_free(now, g ? g->n_nodes : 0);
	tops_free(fresh.top, fresh.n_top);
	/* Memory nodes keep their allocations (the same shape gives the same
	 * steps in the same order): an update does not change them. */
	for (size_t i = 0; rc == CUDA_SUCCESS && i < fresh.n_steps; i++)
		if (!same_mem(&fresh.steps[i].op, i < hGraphExec->n_steps ? &hGraphExec->steps[i].op
									  : NULL)) {
			steps_free(fresh.steps, fresh.n_steps);
			result = CU_GRAPH_EXEC_UPDATE_ERROR_NOT_SUPPORTED;
			rc = CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE;
		}
	if (rc == CUDA_SUCCESS) {
		/* The steps run for the instantiated graph's nodes, at the
		 * same indexes. */
		const struct vgpu_exec_top *was = hGraphExec->top;

		for (size_t i = 0; i < fresh.n_steps; i++)
			for (size_t k = 0; k < g->n_nodes; k++)
				if (fresh.steps[i].node == g->nodes[k]) {
					fresh.steps[i].node = was[k].node;
					break;
				}
		/* Nodes turned off stay off. */
		for (size_t i = 0; i < fresh.n_steps; i++)
			for (size_t k = 0; k < hGraphExec->n_steps; k++)
				if (hGraphExec->steps[k].node == fresh.steps[i].node) {
					fresh.steps[i].enabled = hGraphExec->steps[k].enabled;
					break;
				}
		steps_free(hGraphExec->steps, hGraphExec->n_steps);
		hGraphExec->steps = fresh.steps;
		hGraphExec->n_steps = fresh.n_steps;
	}
	resultInfo->result = rc == CUDA_SUCCESS ? CU_GRAPH_EXEC_UPDATE_SUCCESS : result;
	resultInfo->errorNode = err;
	resultInfo->errorFromNode = NULL;
	return rc;
}

CUresult cuGraphExecUpdate_v1(CUgraphExec hGraphExec, CUgraph hGraph, CUgraphNode *hErrorNode_out,
			      CUgraphExecUpdateResult *updateResult_out)
{
	CUgraphExecUpdateResultInfo info = { 0 };
	CUresult rc;

	if (!hErrorNode_out || !updateResult_out)
		return CUDA_ERROR_INVALID_VALUE;
	rc = cuGraphExecUpdate(hGraphExec, hGraph, &info);
	*hErrorNode_out = info.errorNode;
	*updateResult_out = info.result;
	return rc;
}
