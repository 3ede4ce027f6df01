/* SPDX-License-Identifier: MIT */
/*
 * graph_node.c - what the nodes of a graph built here do (graph.h):
 * made from the parameters each cuGraphAdd*Node takes, checked as the
 * program's own call would be where that can be told without running it,
 * read back and changed, and run as that call on a stream.
 *
 * A kernel node keeps its parameters' bytes, packed as a launch sends them
 * when it is made (CUDA copies them then too); a child graph node keeps a
 * clone of its graph. Served: kernel, memcpy, memset, host, child graph,
 * empty, event record and event wait nodes, and memory allocation and
 * free nodes (graph_mem.c); the others (external semaphores, batched
 * memory operations, conditional) are refused CUDA_ERROR_NOT_SUPPORTED.
 */
#include <stdlib.h>
#include <string.h>

#include "graph.h"

static CUresult kernel_op(struct vgpu_graph_op *op, const CUDA_KERNEL_NODE_PARAMS *p)
{
	struct CUfunc_st *k;
	uint8_t *args;
	CUresult rc;

	if (!p)
		return CUDA_ERROR_INVALID_VALUE;
	if (!p->func && !p->kern)
		return CUDA_ERROR_INVALID_VALUE;
	k = vgpu_cuda_kernel(p->func ? (const void *)p->func : (const void *)p->kern);
	if (!k)
		return CUDA_ERROR_INVALID_HANDLE;
	if (!p->gridDimX || !p->gridDimY || !p->gridDimZ || !p->blockDimX || !p->blockDimY ||
	    !p->blockDimZ)
		return CUDA_ERROR_INVALID_VALUE;
	args = malloc(k->param_bytes ? k->param_bytes : 1);
	if (!args)
		return CUDA_ERROR_OUT_OF_MEMORY;
	rc = vgpu_cuda_kernel_pack(k, p->kernelParams, p->extra, args);
	if (rc != CUDA_SUCCESS) {
		free(args);
		return rc;
	}
	vgpu_cuda_kernel_hold(k); /* its record outlives an unloaded library */
	*op = (struct vgpu_graph_op){
		.type = CU_GRAPH_NODE_TYPE_KERNEL,
		.kernel = { .k = k, .func = p->func, .kern = p->kern, .ctx = p->ctx,
			    .dims = { p->gridDimX, p->gridDimY, p->gridDimZ, p->blockDimX,
				      p->blockDimY, p->blockDimZ },
			    .shared = p->sharedMemBytes, .args = args },
	};
	return CUDA_SUCCESS;
}

/* The copy itself is checked when it runs (array.c), as the program's. */
static CUresult memcpy_op(struct vgpu_graph_op *op, const CUDA_MEMCPY3D *p)
{
	if (!p)
		return CUDA_ERROR_INVALID_VALUE;
	*op = (struct vgpu_graph_op){ .type = CU_GRAPH_NODE_TYPE_MEMCPY, .copy = *p };
	return CUDA_SUCCESS;
}

static CUresult memset_op(struct vgpu_graph_op *op, const CUDA_MEMSET_NODE_PARAMS *p)
{
	size_t row;

	if (!p || !p->dst || !p->width || !p->height ||
	    (p->elementSize != 1 && p->elementSize != 2 && p->elementSize != 4) ||
	    __builtin_mul_overflow(p->width, (size_t)p->elementSize, &row) ||
	    (p->height > 1 && p->pitch < row))
		return CUDA_ERROR_INVALID_VALUE;
	*op = (struct vgpu_graph_op){ .type = CU_GRAPH_NODE_TYPE_MEMSET, .memset = *p };
	return CUDA_SUCCESS;
}

static CUresult host_op(struct vgpu_graph_op *op, const CUDA_HOST_NODE_PARAMS *p)
{
	if (!p || !p->fn)
		return CUDA_ERROR_INVALID_VALUE;
	*op = (struct vgpu_graph_op){ .type = CU_GRAPH_NODE_TYPE_HOST, .host = *p };
	return CUDA_SUCCESS;
}

static CUresult child_op(struct vgpu_graph_op *op, CUgraph child)
{
	CUresult rc;
	struct CUgraph_st *g = vgpu_graph_built(child, &rc);
	CUgraph clone;

	if (!g)
		return rc;
	rc = vgpu_graph_clone(g, &clone);
	if (rc == CUDA_SUCCESS) {
		clone->child = true; /* cuGraphChildGraphNodeGetGraph gives it out */
		*op = (struct vgpu_graph_op){ .type = CU_GRAPH_NODE_TYPE_GRAPH, .child = clone };
	}
	return rc;
}

static CUresult event_op(struct vgpu_graph_op *op, CUgraphNodeType type, CUevent event)
{
	if (!vgpu_cuda_is_event(event))
		return CUDA_ERROR_INVALID_HANDLE;
	*op = (struct vgpu_graph_op){ .type = type, .event = event };
	return CUDA_SUCCESS;
}

CUresult vgpu_graph_op_copy(struct vgpu_graph_op *dst, const struct vgpu_graph_op *src)
{
	CUresult rc = CUDA_SUCCESS;

	*dst = *src;
	if (src->type == CU_GRAPH_NODE_TYPE_MEM_ALLOC || src->type == CU_GRAPH_NODE_TYPE_MEM_FREE) {
		vgpu_graph_mem_step(dst, src); /* graphs with these are never cloned */
	} else if (src->type == CU_GRAPH_NODE_TYPE_GRAPH) {
		rc = vgpu_graph_clone(src->child, &dst->child);
	} else if (src->type == CU_GRAPH_NODE_TYPE_KERNEL) {
		size_t n = src->kernel.k->param_bytes;

		dst->kernel.args = malloc(n ? n : 1);
		if (dst->kernel.args) {
			memcpy(dst->kernel.args, src->kernel.args, n);
			vgpu_cuda_kernel_hold(src->kernel.k);
		} else {
			rc = CUDA_ERROR_OUT_OF_MEMORY;
		}
	}
	if (rc != CUDA_SUCCESS)
		*dst = (struct vgpu_graph_op){ .type = CU_GRAPH_NODE_TYPE_EMPTY }; /* holds nothing */
	return rc;
}

void vgpu_graph_op_free(struct vgpu_graph_op *op)
{
	if (op->type == CU_GRAPH_NODE_TYPE_KERNEL) {
		free(op->kernel.args);
		vgpu_cuda_kernel_release(op->kernel.k);
	} else if (op->type == CU_GRAPH_NODE_TYPE_GRAPH && op->child) {
		vgpu_graph_free(op->child);
	} else if (op->type == CU_GRAPH_NODE_TYPE_MEM_ALLOC ||
		   op->type == CU_GRAPH_NODE_TYPE_MEM_FREE) {
		vgpu_graph_mem_release(op);
	}
	op->type = CU_GRAPH_NODE_TYPE_EMPTY;
}

static CUresult run_memset(const CUDA_MEMSET_NODE_PARAMS *p, CUstream s)
{
	if (p->height == 1) {
		if (p->elementSize == 1)
			return cuMemsetD8Async(p->dst, (unsigned char)p->value, p->width, s);
		if (p->elementSize == 2)
			return cuMemsetD16Async(p->dst, (unsigned short)p->value, p->width, s);
		return cuMemsetD32Async(p->dst, p->value, p->width, s);
	}
	if (p->elementSize == 1)
		return cuMemsetD2D8Async(p->dst, p->pitch, (unsigned char)p->value, p->width,
					 p->height, s);
	if (p->elementSize == 2)
		return cuMemsetD2D16Async(p->dst, p->pitch, (unsigned short)p->value, p->width,
					  p->height, s);
	return cuMemsetD2D32Async(p->dst, p->pitch, p->value, p->width, p->height, s);
}

CUresult vgpu_graph_op_run(const struct vgpu_graph_op *op, CUstream stream)
{
	switch (op->type) {
	case CU_GRAPH_NODE_TYPE_KERNEL:
		/* The kernel's library may have been unloaded since (the op
		 * holds the record, whose magic is then cleared). */
		if (!vgpu_cuda_kernel(op->kernel.k))
			return CUDA_ERROR_INVALID_HANDLE;
		return vgpu_cuda_kernel_launch(op->kernel.k, op->kernel.dims, op->kernel.shared,
					       stream, op->kernel.args);
	case CU_GRAPH_NODE_TYPE_MEMCPY:
		return cuMemcpy3DAsync(&op->copy, stream);
	case CU_GRAPH_NODE_TYPE_MEMSET:
		return run_memset(&op->memset, stream);
	case CU_GRAPH_NODE_TYPE_HOST:
		return cuLaunchHostFunc(stream, op->host.fn, op->host.userData);
	case CU_GRAPH_NODE_TYPE_EVENT_RECORD:
		return cuEventRecord(op->event, stream);
	case CU_GRAPH_NODE_TYPE_WAIT_EVENT:
		return cuStreamWaitEvent(stream, op->event, CU_EVENT_WAIT_DEFAULT);
	case CU_GRAPH_NODE_TYPE_EMPTY:
	case CU_GRAPH_NODE_TYPE_MEM_ALLOC: /* done as the launch began (graph_mem.c) */
	case CU_GRAPH_NODE_TYPE_MEM_FREE:
		return CUDA_SUCCESS;
	default:
		return CUDA_ERROR_UNKNOWN; /* child graphs are flattened (graph_exec.c) */
	}
}

/* A kernel node's parameters in the generic form (their layout is v2's). */
static CUDA_KERNEL_NODE_PARAMS kernel_v2(const CUDA_KERNEL_NODE_PARAMS_v3 *p)
{
	return (CUDA_KERNEL_NODE_PARAMS){
		.func = p->func, .gridDimX = p->gridDimX, .gridDimY = p->gridDimY,
		.gridDimZ = p->gridDimZ, .blockDimX = p->blockDimX, .blockDimY = p->blockDimY,
		.blockDimZ = p->blockDimZ, .sharedMemBytes = p->sharedMemBytes,
		.kernelParams = p->kernelParams, .extra = p->extra, .kern = p->kern, .ctx = p->ctx,
	};
}

/* Whether @p is there with its reserved fields 0, as CUDA asks. */
static bool params_ok(const CUgraphNodeParams *p)
{
	return p && !p->reserved0[0] && !p->reserved0[1] && !p->reserved0[2] && !p->reserved2;
}

CUresult vgpu_graph_op_from(struct vgpu_graph_op *op, const CUgraphNodeParams *p)
{
	if (!params_ok(p))
		return CUDA_ERROR_INVALID_VALUE;
	switch (p->type) {
	case CU_GRAPH_NODE_TYPE_KERNEL: {
		CUDA_KERNEL_NODE_PARAMS k = kernel_v2(&p->kernel);

		return kernel_op(op, &k);
	}
	case CU_GRAPH_NODE_TYPE_MEMCPY:
		if (p->memcpy.flags || p->memcpy.reserved)
			return CUDA_ERROR_INVALID_VALUE;
		return memcpy_op(op, &p->memcpy.copyParams);
	case CU_GRAPH_NODE_TYPE_MEMSET: {
		const CUDA_MEMSET_NODE_PARAMS_v2 *m = &p->memset;
		CUDA_MEMSET_NODE_PARAMS v1 = { .dst = m->dst, .pitch = m->pitch, .value = m->value,
					       .elementSize = m->elementSize, .width = m->width,
					       .height = m->height };

		return memset_op(op, &v1);
	}
	case CU_GRAPH_NODE_TYPE_HOST: {
		CUDA_HOST_NODE_PARAMS h = { .fn = p->host.fn, .userData = p->host.userData };

		return host_op(op, &h);
	}
	case CU_GRAPH_NODE_TYPE_GRAPH:
		if (p->graph.ownership != CU_GRAPH_CHILD_GRAPH_OWNERSHIP_CLONE)
			break;
		return child_op(op, p->graph.graph);
	case CU_GRAPH_NODE_TYPE_EMPTY:
		*op = (struct vgpu_graph_op){ .type = CU_GRAPH_NODE_TYPE_EMPTY };
		return CUDA_SUCCESS;
	case CU_GRAPH_NODE_TYPE_EVENT_RECORD:
		return event_op(op, p->type, p->eventRecord.event);
	case CU_GRAPH_NODE_TYPE_WAIT_EVENT:
		return event_op(op, p->type, p->eventWait.event);
	default:
		break;
	}
	vgpu_cuda_log(true, "graph node type %d is not served: CUDA_ERROR_NOT_SUPPORTED",
		      (int)p->type);
	return CUDA_ERROR_NOT_SUPPORTED;
}

CUresult vgpu_graph_node_set(struct CUgraphNode_st *node, struct vgpu_graph_op *op)
{
	void **argv = NULL;

	if (op->type == CU_GRAPH_NODE_TYPE_KERNEL && op->kernel.k->n_params) {
		const struct CUfunc_st *k = op->kernel.k;

		argv = malloc(k->n_params * sizeof(*argv));
		if (!argv) {
			vgpu_graph_op_free(op);
			return CUDA_ERROR_OUT_OF_MEMORY;
		}
		for (uint32_t i = 0; i < k->n_params; i++)
			argv[i] = op->kernel.args + k->layout[2 * i];
	}
	vgpu_graph_op_free(&node->op);
	free(node->argv);
	node->op = *op;
	node->argv = argv;
	return CUDA_SUCCESS;
}

/* cuGraphAdd*Node's end: @op made (@rc) into a node of @g. */
static CUresult add(CUresult rc, struct vgpu_graph_op *op, CUgraph g, const CUgraphNode *deps,
		    size_t n, CUgraphNode *out)
{
	return rc == CUDA_SUCCESS ? vgpu_graph_add(g, deps, NULL, n, op, out) : rc;
}

CUresult cuGraphAddKernelNode(CUgraphNode *phGraphNode, CUgraph hGraph,
			      const CUgraphNode *dependencies, size_t numDependencies,
			      const CUDA_KERNEL_NODE_PARAMS *nodeParams)
{
	struct vgpu_graph_op op;

	return add(kernel_op(&op, nodeParams), &op, hGraph, dependencies, numDependencies,
		   phGraphNode);
}

/* CUDA_KERNEL_NODE_PARAMS_v1 is v2 without its last two fields. */
static const CUDA_KERNEL_NODE_PARAMS *from_v1(const CUDA_KERNEL_NODE_PARAMS_v1 *p,
					      CUDA_KERNEL_NODE_PARAMS *v2)
{
	if (!p)
		return NULL;
	memset(v2, 0, sizeof(*v2));
	memcpy(v2, p, sizeof(*p));
	return v2;
}

CUresult cuGraphAddKernelNode_v1(CUgraphNode *phGraphNode, CUgraph hGraph,
				 const CUgraphNode *dependencies, size_t numDependencies,
				 const CUDA_KERNEL_NODE_PARAMS_v1 *nodeParams)
{
	CUDA_KERNEL_NODE_PARAMS v2;

	return cuGraphAddKernelNode(phGraphNode, hGraph, dependencies, numDependencies,
				    from_v1(nodeParams, &v2));
}

/* @ctx is the current context's or one of its GPU: nodes run on the
 * stream their graph is launched on. */
CUresult cuGraphAddMemcpyNode(CUgraphNode *phGraphNode, CUgraph hGraph,
			      const CUgraphNode *dependencies, size_t numDependencies,
			      const CUDA_MEMCPY3D *copyParams, CUcontext ctx)
{
	struct vgpu_graph_op op;

	(void)ctx;
	return add(memcpy_op(&op, copyParams), &op, hGraph, dependencies, numDependencies,
		   phGraphNode);
}

CUresult cuGraphAddMemsetNode(CUgraphNode *phGraphNode, CUgraph hGraph,
			      const CUgraphNode *dependencies, size_t numDependencies,
			      const CUDA_MEMSET_NODE_PARAMS *memsetParams, CUcontext ctx)
{
	struct vgpu_graph_op op;

	(void)ctx;
	return add(memset_op(&op, memsetParams), &op, hGraph, dependencies, numDependencies,
		   phGraphNode);
}

CUresult cuGraphAddHostNode(CUgraphNode *phGraphNode, CUgraph hGraph,
			    const CUgraphNode *dependencies, size_t numDependencies,
			    const CUDA_HOST_NODE_PARAMS *nodeParams)
{
	struct vgpu_graph_op op;

	return add(host_op(&op, nodeParams), &op, hGraph, dependencies, numDependencies,
		   phGraphNode);
}

CUresult cuGraphAddChildGraphNode(CUgraphNode *phGraphNode, CUgraph hGraph,
				  const CUgraphNode *dependencies, size_t numDependencies,
				  CUgraph childGraph)
{
	struct vgpu_graph_op op = { .type = CU_GRAPH_NODE_TYPE_EMPTY };

	return add(child_op(&op, childGraph), &op, hGraph, dependencies, numDependencies,
		   phGraphNode);
}

CUresult cuGraphAddEventRecordNode(CUgraphNode *phGraphNode, CUgraph hGraph,
				   const CUgraphNode *dependencies, size_t numDependencies,
				   CUevent event)
{
	struct vgpu_graph_op op;

	return add(event_op(&op, CU_GRAPH_NODE_TYPE_EVENT_RECORD, event), &op, hGraph,
		   dependencies, numDependencies, phGraphNode);
}

CUresult cuGraphAddEventWaitNode(CUgraphNode *phGraphNode, CUgraph hGraph,
				 const CUgraphNode *dependencies, size_t numDependencies,
				 CUevent event)
{
	struct vgpu_graph_op op;

	return add(event_op(&op, CU_GRAPH_NODE_TYPE_WAIT_EVENT, event), &op, hGraph,
		   dependencies, numDependencies, phGraphNode);
}

/* A memory node's @op from @p, for graph @hGraph (cuGraphAddNode's). */
static CUresult mem_op_from(struct vgpu_graph_op *op, CUgraph hGraph, CUgraphNodeParams *p)
{
	CUresult rc;
	struct CUgraph_st *g = vgpu_graph_built(hGraph, &rc);
	CUDA_MEM_ALLOC_NODE_PARAMS v1;

	if (!g)
		return rc;
	if (p->type == CU_GRAPH_NODE_TYPE_MEM_FREE)
		return vgpu_graph_free_op(op, g, p->free.dptr);
	_Static_assert(sizeof(v1) == sizeof(p->alloc), "the alloc parameters' two versions");
	memcpy(&v1, &p->alloc, sizeof(v1));
	return vgpu_graph_alloc_op(op, g, &v1);
}

CUresult cuGraphAddNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
			const CUgraphEdgeData *dependencyData, size_t numDependencies,
			CUgraphNodeParams *nodeParams)
{
	struct vgpu_graph_op op;
	CUresult rc;

	if (params_ok(nodeParams) && (nodeParams->type == CU_GRAPH_NODE_TYPE_MEM_ALLOC ||
				      nodeParams->type == CU_GRAPH_NODE_TYPE_MEM_FREE))
		rc = mem_op_from(&op, hGraph, nodeParams);
	else
		rc = vgpu_graph_op_from(&op, nodeParams);
	if (rc == CUDA_SUCCESS)
		rc = vgpu_graph_add(hGraph, dependencies, dependencyData, numDependencies, &op,
				    phGraphNode);
	if (rc == CUDA_SUCCESS && nodeParams->type == CU_GRAPH_NODE_TYPE_MEM_ALLOC)
		nodeParams->alloc.dptr = (*phGraphNode)->op.alloc.params.dptr; /* once it is there */
	return rc;
}

CUresult cuGraphAddNode_v1(CUgraphNode *phGraphNode, CUgraph hGraph,
			   const CUgraphNode *dependencies, size_t numDependencies,
			   CUgraphNodeParams *nodeParams)
{
	return cuGraphAddNode(phGraphNode, hGraph, dependencies, NULL, numDependencies, nodeParams);
}

/* A node's new @op (made: @rc) for @node of @type. */
static CUresult set(CUresult rc, struct vgpu_graph_op *op, struct CUgraphNode_st *node)
{
	return rc == CUDA_SUCCESS ? vgpu_graph_node_set(node, op) : rc;
}

CUresult cuGraphNodeSetParams(CUgraphNode hNode, CUgraphNodeParams *nodeParams)
{
	CUresult rc;
	struct CUgraphNode_st *node = vgpu_graph_node(hNode, -1, &rc);
	struct vgpu_graph_op op;

	if (node && nodeParams && nodeParams->type != node->op.type)
		return CUDA_ERROR_INVALID_VALUE;
	return node ? set(vgpu_graph_op_from(&op, nodeParams), &op, node) : rc;
}

CUresult cuGraphKernelNodeGetParams(CUgraphNode hNode, CUDA_KERNEL_NODE_PARAMS *nodeParams)
{
	CUresult rc;
	struct CUgraphNode_st *node = vgpu_graph_node(hNode, CU_GRAPH_NODE_TYPE_KERNEL, &rc);

	if (node && !nodeParams)
		rc = CUDA_ERROR_INVALID_VALUE;
	if (rc != CUDA_SUCCESS)
		return rc;
	*nodeParams = (CUDA_KERNEL_NODE_PARAMS){
		.func = node->op.kernel.func,
		.gridDimX = node->op.kernel.dims[0], .gridDimY = node->op.kernel.dims[1],
		.gridDimZ = node->op.kernel.dims[2], .blockDimX = node->op.kernel.dims[3],
		.blockDimY = node->op.kernel.dims[4], .blockDimZ = node->op.kernel.dims[5],
		.sharedMemBytes = node->op.kernel.shared, .kernelParams = node->argv,
		.kern = node->op.kernel.kern, .ctx = node->op.kernel.ctx,
	};
	return CUDA_SUCCESS;
}

CUresult cuGraphKernelNodeGetParams_v1(CUgraphNode hNode, CUDA_KERNEL_NODE_PARAMS_v1 *nodeParams)
{
	CUDA_KERNEL_NODE_PARAMS v2;
	CUresult rc = nodeParams ? cuGraphKernelNodeGetParams(hNode, &v2)
				 : CUDA_ERROR_INVALID_VALUE;

	if (rc == CUDA_SUCCESS)
		memcpy(nodeParams, &v2, sizeof(*nodeParams));
	return rc;
}

CUresult cuGraphKernelNodeSetParams(CUgraphNode hNode, const CUDA_KERNEL_NODE_PARAMS *nodeParams)
{
	CUresult rc;
	struct CUgraphNode_st *node = vgpu_graph_node(hNode, CU_GRAPH_NODE_TYPE_KERNEL, &rc);
	struct vgpu_graph_op op;

	return node ? set(kernel_op(&op, nodeParams), &op, node) : rc;
}

CUresult cuGraphKernelNodeSetParams_v1(CUgraphNode hNode,
				       const CUDA_KERNEL_NODE_PARAMS_v1 *nodeParams)
{
	CUDA_KERNEL_NODE_PARAMS v2;

	return cuGraphKernelNodeSetParams(hNode, from_v1(nodeParams, &v2));
}

CUresult cuGraphMemcpyNodeGetParams(CUgraphNode hNode, CUDA_MEMCPY3D *nodeParams)
{
	CUresult rc;
	struct CUgraphNode_st *node = vgpu_graph_node(hNode, CU_GRAPH_NODE_TYPE_MEMCPY, &rc);

	if (node && !nodeParams)
		rc = CUDA_ERROR_INVALID_VALUE;
	if (rc == CUDA_SUCCESS)
		*nodeParams = node->op.copy;
	return rc;
}

CUresult cuGraphMemcpyNodeSetParams(CUgraphNode hNode, const CUDA_MEMCPY3D *nodeParams)
{
	CUresult rc;
	struct CUgraphNode_st *node = vgpu_graph_node(hNode, CU_GRAPH_NODE_TYPE_MEMCPY, &rc);
	struct vgpu_graph_op op;

	return node ? set(memcpy_op(&op, nodeParams), &op, node) : rc;
}

CUresult cuGraphMemsetNodeGetParams(CUgraphNode hNode, CUDA_MEMSET_NODE_PARAMS *nodeParams)
{
	CUresult rc;
	struct CUgraphNode_st *node = vgpu_graph_node(hNode, CU_GRAPH_NODE_TYPE_MEMSET, &rc);

	if (node && !nodeParams)
		rc = CUDA_ERROR_INVALID_VALUE;
	if (rc == CUDA_SUCCESS)
		*nodeParams = node->op.memset;
	return rc;
}

CUresult cuGraphMemsetNodeSetParams(CUgraphNode hNode, const CUDA_MEMSET_NODE_PARAMS *nodeParams)
{
	CUresult rc;
	struct CUgraphNode_st *node = vgpu_graph_node(hNode, CU_GRAPH_NODE_TYPE_MEMSET, &rc);
	struct vgpu_graph_op op;

	return node ? set(memset_op(&op, nodeParams), &op, node) : rc;
}

CUresult cuGraphHostNodeGetParams(CUgraphNode hNode, CUDA_HOST_NODE_PARAMS *nodeParams)
{
	CUresult rc;
	struct CUgraphNode_st *node = vgpu_graph_node(hNode, CU_GRAPH_NODE_TYPE_HOST, &rc);

	if (node && !nodeParams)
		rc = CUDA_ERROR_INVALID_VALUE;
	if (rc == CUDA_SUCCESS)
		*nodeParams = node->op.host;
	return rc;
}

CUresult cuGraphHostNodeSetParams(CUgraphNode hNode, const CUDA_HOST_NODE_PARAMS *nodeParams)
{
	CUresult rc;
	struct CUgraphNode_st *node = vgpu_graph_node(hNode, CU_GRAPH_NODE_TYPE_HOST, &rc);
	struct vgpu_graph_op op;

	return node ? set(host_op(&op, nodeParams), &op, node) : rc;
}

/* The child graph itself (CUDA's too): changing it changes the node. */
CUresult cuGraphChildGraphNodeGetGraph(CUgraphNode hNode, CUgraph *phGraph)
{
	CUresult rc;
	struct CUgraphNode_st *node = vgpu_graph_node(hNode, CU_GRAPH_NODE_TYPE_GRAPH, &rc);

	if (node && !phGraph)
		rc = CUDA_ERROR_INVALID_VALUE;
	if (rc == CUDA_SUCCESS)
		*phGraph = node->op.child;
	return rc;
}

static CUresult get_event(CUgraphNode hNode, CUgraphNodeType type, CUevent *out)
{
	CUresult rc;
	struct CUgraphNode_st *node = vgpu_graph_node(hNode, type, &rc);

	if (node && !out)
		rc = CUDA_ERROR_INVALID_VALUE;
	if (rc == CUDA_SUCCESS)
		*out = node->op.event;
	return rc;
}

static CUresult set_event(CUgraphNode hNode, CUgraphNodeType type, CUevent event)
{
	CUresult rc;
	struct CUgraphNode_st *node = vgpu_graph_node(hNode, type, &rc);
	struct vgpu_graph_op op;

	return node ? set(event_op(&op, type, event), &op, node) : rc;
}

CUresult cuGraphEventRecordNodeGetEvent(CUgraphNode hNode, CUevent *event_out)
{
	return get_event(hNode, CU_GRAPH_NODE_TYPE_EVENT_RECORD, event_out);
}

CUresult cuGraphEventRecordNodeSetEvent(CUgraphNode hNode, CUevent event)
{
	return set_event(hNode, CU_GRAPH_NODE_TYPE_EVENT_RECORD, event);
}

CUresult cuGraphEventWaitNodeGetEvent(CUgraphNode hNode, CUevent *event_out)
{
	return get_event(hNode, CU_GRAPH_NODE_TYPE_WAIT_EVENT, event_out);
}

CUresult cuGraphEventWaitNodeSetEvent(CUgraphNode hNode, CUevent event)
{
	return set_event(hNode, CU_GRAPH_NODE_TYPE_WAIT_EVENT, event);
}
