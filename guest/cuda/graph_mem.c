/* SPDX-License-Identifier: MIT */
/*
 * graph_mem.c - memory allocation and free nodes of graphs built here
 * (graph.h), and the device's graph memory figures.
 *
 * CUDA gives an allocation node its address when the node is made, fixed
 * for every launch after. Here the memory itself is allocated then (a
 * cuMemAlloc through the host, against the VM's quota) and held until its
 * node is gone and the allocation is not in use: a launch that reaches
 * the node makes the allocation live (the program's to use), a free node
 * or cuMemFree/cuMemFreeAsync outside the graph ends that. What differs
 * from NVIDIA's driver (docs/specs/cuda-remoting.md): the memory is held
 * between a free and the next launch, where the driver keeps only the
 * address and may hand the memory to other allocations; and liveness
 * changes when a launch is posted, not when the GPU reaches the node
 * (the memory is there either way).
 *
 * As CUDA's: a graph with memory nodes cannot be cloned, be a child graph
 * (only its clone would be), lose nodes or edges, or have two executable
 * graphs at once (checked for graphs with allocation nodes); an allocation
 * freed by its own graph is freed nowhere else, else other graphs may
 * free it (each once, as NVIDIA's driver allows); a launch that would
 * allocate what is still live fails (CUDA_ERROR_INVALID_VALUE) unless the
 * executable graph frees it on launch (AUTO_FREE_ON_LAUNCH).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"

/* The allocations of allocation nodes, and the figures of them. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct vgpu_graph_alloc *allocs;
static uint64_t reserved, reserved_high, used, used_high;

/* Under the lock. */
static struct vgpu_graph_alloc *find(CUdeviceptr dptr)
{
	for (struct vgpu_graph_alloc *a = allocs; a; a = a->next)
		if (a->dptr == dptr)
			return a;
	return NULL;
}

/* Under the lock: @a's live state set, the figures kept. */
static void set_live(struct vgpu_graph_alloc *a, bool live)
{
	if (a->live == live)
		return;
	a->live = live;
	if (live) {
		used += a->bytes;
		if (used > used_high)
			used_high = used;
	} else {
		used -= a->bytes;
	}
}

/* Under the lock: @a unlinked once nothing names it and it is not in use;
 * then the caller, unlocked, gives it back (give_back). */
static struct vgpu_graph_alloc *settle(struct vgpu_graph_alloc *a)
{
	struct vgpu_graph_alloc **p = &allocs;

	if (a->refs || a->live)
		return NULL;
	while (*p != a)
		p = &(*p)->next;
	*p = a->next;
	reserved -= a->bytes;
	return a;
}

/* Unlocked: @a's memory back to the host (a call there, which other
 * threads' frees and launches need not wait for). */
static void give_back(struct vgpu_graph_alloc *a)
{
	if (a) {
		(void)vgpu_cuda_free_device(a->dptr);
		free(a);
	}
}

CUresult vgpu_graph_alloc_op(struct vgpu_graph_op *op, struct CUgraph_st *g,
			     const CUDA_MEM_ALLOC_NODE_PARAMS *p)
{
	const CUmemPoolProps *pp;
	struct vgpu_graph_alloc *a;
	CUmemAccessDesc *access = NULL;
	CUdeviceptr dptr;
	int n_devices = 0;
	CUresult rc;

	if (!p || !p->bytesize)
		return CUDA_ERROR_INVALID_VALUE;
	if (g->child) {
		vgpu_cuda_log(true, "a child graph cannot have memory nodes: "
				    "CUDA_ERROR_NOT_SUPPORTED");
		return CUDA_ERROR_NOT_SUPPORTED;
	}
	pp = &p->poolProps;
	(void)cuDeviceGetCount(&n_devices);
	if (pp->allocType != CU_MEM_ALLOCATION_TYPE_PINNED ||
	    pp->location.type != CU_MEM_LOCATION_TYPE_DEVICE || pp->location.id < 0 ||
	    pp->location.id >= n_devices || pp->handleTypes != CU_MEM_HANDLE_TYPE_NONE ||
	    p->accessDescCount > (size_t)n_devices || (p->accessDescCount && !p->accessDescs))
		return CUDA_ERROR_INVALID_VALUE;
	/* Allocated as cuMemAlloc is: on the current GPU. */
	if (pp->location.id != vgpu_cuda_current_device()) {
		vgpu_cuda_log(true, "a graph allocation on GPU %d while GPU %d is current: "
				    "CUDA_ERROR_NOT_SUPPORTED", pp->location.id,
			      (int)vgpu_cuda_current_device());
		return CUDA_ERROR_NOT_SUPPORTED;
	}
	for (size_t i = 0; i < p->accessDescCount; i++)
		if (p->accessDescs[i].location.type != CU_MEM_LOCATION_TYPE_DEVICE ||
		    p->accessDescs[i].location.id != pp->location.id)
			return CUDA_ERROR_NOT_SUPPORTED; /* no peer access between VMs' GPUs */
	a = calloc(1, sizeof(*a));
	if (p->accessDescCount)
		access = malloc(p->accessDescCount * sizeof(*access));
	if (!a || (p->accessDescCount && !access)) {
		free(a);
		free(access);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	rc = cuMemAlloc_v2(&dptr, p->bytesize);
	if (rc != CUDA_SUCCESS) {
		free(a);
		free(access);
		return rc;
	}
	if (p->accessDescCount)
		memcpy(access, p->accessDescs, p->accessDescCount * sizeof(*access));
	*a = (struct vgpu_graph_alloc){ .dptr = dptr, .bytes = p->bytesize, .owner = g, .refs = 1 };
	pthread_mutex_lock(&lock);
	a->next = allocs;
	allocs = a;
	reserved += a->bytes;
	if (reserved > reserved_high)
		reserved_high = reserved;
	pthread_mutex_unlock(&lock);
	*op = (struct vgpu_graph_op){ .type = CU_GRAPH_NODE_TYPE_MEM_ALLOC,
				      .alloc = { .a = a, .params = *p, .access = access, .graph = g } };
	op->alloc.params.accessDescs = access;
	op->alloc.params.dptr = dptr;
	return CUDA_SUCCESS;
}

CUresult vgpu_graph_free_op(struct vgpu_graph_op *op, struct CUgraph_st *g, CUdeviceptr dptr)
{
	struct vgpu_graph_alloc *a;
	bool by_owner = false;

	if (g->child) {
		vgpu_cuda_log(true, "a child graph cannot have memory nodes: "
				    "CUDA_ERROR_NOT_SUPPORTED");
		return CUDA_ERROR_NOT_SUPPORTED;
	}
	pthread_mutex_lock(&lock);
	a = find(dptr);
	/* As NVIDIA's driver: freed by its own graph, nowhere else; by other
	 * graphs (each once), not by its own. */
	if (a && (a->owner_frees || (g == a->owner && a->other_frees)))
		a = NULL;
	for (size_t i = 0; a && g != a->owner && i < g->n_nodes; i++)
		if (g->nodes[i]->op.type == CU_GRAPH_NODE_TYPE_MEM_FREE &&
		    g->nodes[i]->op.mfree.a == a)
			a = NULL;
	if (a) { /* the node holds it */
		a->refs++;
		by_owner = g == a->owner;
		if (by_owner)
			a->owner_frees = true;
		else
			a->other_frees++;
	}
	pthread_mutex_unlock(&lock);
	if (!a)
		return CUDA_ERROR_INVALID_VALUE;
	*op = (struct vgpu_graph_op){ .type = CU_GRAPH_NODE_TYPE_MEM_FREE,
				      .mfree = { .a = a, .ptr = dptr, .graph = g, .by_owner = by_owner } };
	return CUDA_SUCCESS;
}

void vgpu_graph_mem_step(struct vgpu_graph_op *dst, const struct vgpu_graph_op *src)
{
	struct vgpu_graph_alloc *a = src->type == CU_GRAPH_NODE_TYPE_MEM_FREE ? src->mfree.a
									      : src->alloc.a;

	*dst = *src;
	pthread_mutex_lock(&lock);
	a->refs++;
	if (src->type == CU_GRAPH_NODE_TYPE_MEM_FREE) {
		dst->mfree.graph = NULL;
	} else {
		dst->alloc.graph = NULL;
		a->execs++;
	}
	pthread_mutex_unlock(&lock);
}

void vgpu_graph_mem_release(struct vgpu_graph_op *op)
{
	bool is_free = op->type == CU_GRAPH_NODE_TYPE_MEM_FREE;
	CUgraph graph = is_free ? op->mfree.graph : op->alloc.graph;
	struct vgpu_graph_alloc *a = is_free ? op->mfree.a : op->alloc.a, *done;

	pthread_mutex_lock(&lock);
	a->refs--;
	if (!graph && !is_free)
		a->execs--;
	else if (graph && is_free && op->mfree.by_owner)
		a->owner_frees = false; /* the allocation may be freed elsewhere now */
	else if (graph && is_free)
		a->other_frees--;
	else if (graph && a->owner == graph)
		a->owner = NULL;
	done = settle(a);
	pthread_mutex_unlock(&lock);
	give_back(done);
	if (graph && !is_free)
		free(op->alloc.access); /* the node's; a step shares it */
}

bool vgpu_graph_mem_instantiated(const struct CUgraph_st *g)
{
	bool busy = false;

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < g->n_nodes && !busy; i++) {
		const struct vgpu_graph_op *op = &g->nodes[i]->op;

		/* An allocation has one allocation node: steps of it are this
		 * graph's. (A graph with free nodes only is not checked.) */
		busy = op->type == CU_GRAPH_NODE_TYPE_MEM_ALLOC && op->alloc.a->execs > 0;
	}
	pthread_mutex_unlock(&lock);
	return busy;
}

CUresult vgpu_graph_mem_launch(const struct CUgraphExec_st *e)
{
	bool auto_free = e->flags & CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH;
	bool *changed, any = false;
	CUresult rc = CUDA_SUCCESS;
	size_t i;

	for (i = 0; i < e->n_steps && !any; i++)
		any = e->steps[i].op.type == CU_GRAPH_NODE_TYPE_MEM_ALLOC ||
		      e->steps[i].op.type == CU_GRAPH_NODE_TYPE_MEM_FREE;
	if (!any)
		return CUDA_SUCCESS;
	changed = calloc(e->n_steps, sizeof(*changed));
	if (!changed)
		return CUDA_ERROR_OUT_OF_MEMORY;
	pthread_mutex_lock(&lock);
	/* The steps in order (a free step may free what an earlier one made);
	 * on an error, what the earlier ones changed is changed back. */
	for (i = 0; i < e->n_steps && rc == CUDA_SUCCESS; i++) {
		const struct vgpu_graph_op *op = &e->steps[i].op;
		struct vgpu_graph_alloc *a;

		if (op->type == CU_GRAPH_NODE_TYPE_MEM_ALLOC) {
			a = op->alloc.a;
			if (a->live && !auto_free) { /* made by a launch, not freed since */
				rc = CUDA_ERROR_INVALID_VALUE;
			} else if (!a->live) { /* else freed on launch and made again */
				changed[i] = true;
				set_live(a, true);
			}
		} else if (op->type == CU_GRAPH_NODE_TYPE_MEM_FREE) {
			a = op->mfree.a;
			if (!a->live) { /* not allocated now */
				rc = CUDA_ERROR_INVALID_VALUE;
			} else {
				changed[i] = true;
				set_live(a, false);
			}
		}
	}
	while (rc != CUDA_SUCCESS && i-- > 0) {
		const struct vgpu_graph_op *op = &e->steps[i].op;

		if (changed[i])
			set_live(op->type == CU_GRAPH_NODE_TYPE_MEM_ALLOC ? op->alloc.a : op->mfree.a,
				 op->type != CU_GRAPH_NODE_TYPE_MEM_ALLOC);
	}
	pthread_mutex_unlock(&lock);
	free(changed);
	return rc;
}

bool vgpu_graph_mem_free_outside(CUdeviceptr dptr, CUresult *rc)
{
	struct vgpu_graph_alloc *a, *done = NULL;

	pthread_mutex_lock(&lock);
	a = find(dptr);
	if (a) {
		if (!a->live || a->owner_frees) {
			*rc = CUDA_ERROR_INVALID_VALUE;
		} else {
			set_live(a, false);
			done = settle(a);
			*rc = CUDA_SUCCESS;
		}
	}
	pthread_mutex_unlock(&lock);
	give_back(done);
	return a != NULL;
}

CUresult cuGraphAddMemAllocNode(CUgraphNode *phGraphNode, CUgraph hGraph,
				const CUgraphNode *dependencies, size_t numDependencies,
				CUDA_MEM_ALLOC_NODE_PARAMS *nodeParams)
{
	struct vgpu_graph_op op;
	CUresult rc;
	struct CUgraph_st *g = vgpu_graph_built(hGraph, &rc);

	if (g && !phGraphNode)
		rc = CUDA_ERROR_INVALID_VALUE;
	if (rc == CUDA_SUCCESS)
		rc = vgpu_graph_alloc_op(&op, g, nodeParams);
	if (rc == CUDA_SUCCESS)
		rc = vgpu_graph_add(g, dependencies, NULL, numDependencies, &op, phGraphNode);
	if (rc == CUDA_SUCCESS) /* the address once the node is there */
		nodeParams->dptr = (*phGraphNode)->op.alloc.params.dptr;
	return rc;
}

CUresult cuGraphAddMemFreeNode(CUgraphNode *phGraphNode, CUgraph hGraph,
			       const CUgraphNode *dependencies, size_t numDependencies,
			       CUdeviceptr dptr)
{
	struct vgpu_graph_op op;
	CUresult rc;
	struct CUgraph_st *g = vgpu_graph_built(hGraph, &rc);

	if (g && !phGraphNode)
		rc = CUDA_ERROR_INVALID_VALUE;
	if (rc == CUDA_SUCCESS)
		rc = vgpu_graph_free_op(&op, g, dptr);
	return rc == CUDA_SUCCESS
		       ? vgpu_graph_add(g, dependencies, NULL, numDependencies, &op, phGraphNode)
		       : rc;
}

CUresult cuGraphMemAllocNodeGetParams(CUgraphNode hNode, CUDA_MEM_ALLOC_NODE_PARAMS *params_out)
{
	CUresult rc;
	struct CUgraphNode_st *node = vgpu_graph_node(hNode, CU_GRAPH_NODE_TYPE_MEM_ALLOC, &rc);

	if (node && !params_out)
		rc = CUDA_ERROR_INVALID_VALUE;
	if (rc == CUDA_SUCCESS)
		*params_out = node->op.alloc.params;
	return rc;
}

CUresult cuGraphMemFreeNodeGetParams(CUgraphNode hNode, CUdeviceptr *dptr_out)
{
	CUresult rc;
	struct CUgraphNode_st *node = vgpu_graph_node(hNode, CU_GRAPH_NODE_TYPE_MEM_FREE, &rc);

	if (node && !dptr_out)
		rc = CUDA_ERROR_INVALID_VALUE;
	if (rc == CUDA_SUCCESS)
		*dptr_out = node->op.mfree.ptr;
	return rc;
}

static CUresult device_ok(CUdevice device)
{
	int n = 0;
	CUresult rc = cuDeviceGetCount(&n);

	if (rc != CUDA_SUCCESS)
		return rc;
	return device >= 0 && device < n ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

/* What allocation nodes hold is in use by their graphs: nothing to trim. */
CUresult cuDeviceGraphMemTrim(CUdevice device)
{
	return device_ok(device);
}

/* The figures are the process's, over all its GPUs (a VM's process has
 * one almost always). */
CUresult cuDeviceGetGraphMemAttribute(CUdevice device, CUgraphMem_attribute attr, void *value)
{
	CUresult rc = device_ok(device);
	cuuint64_t v;

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!value)
		return CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&lock);
	switch (attr) {
	case CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT:
		v = used;
		break;
	case CU_GRAPH_MEM_ATTR_USED_MEM_HIGH:
		v = used_high;
		break;
	case CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT:
		v = reserved;
		break;
	case CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH:
		v = reserved_high;
		break;
	default:
		rc = CUDA_ERROR_INVALID_VALUE;
		break;
	}
	pthread_mutex_unlock(&lock);
	if (rc == CUDA_SUCCESS)
		memcpy(value, &v, sizeof(v));
	return rc;
}

/* Only the high watermarks, only to 0 (back to the current figure). */
CUresult cuDeviceSetGraphMemAttribute(CUdevice device, CUgraphMem_attribute attr, void *value)
{
	CUresult rc = device_ok(device);
	cuuint64_t v;

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!value)
		return CUDA_ERROR_INVALID_VALUE;
	memcpy(&v, value, sizeof(v));
	if (v != 0 || (attr != CU_GRAPH_MEM_ATTR_USED_MEM_HIGH &&
		       attr != CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH))
		return CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&lock);
	if (attr == CU_GRAPH_MEM_ATTR_USED_MEM_HIGH)
		used_high = used;
	else
		reserved_high = reserved;
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}
