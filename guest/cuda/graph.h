/* SPDX-License-Identifier: MIT */
/*
 * graph.h - CUDA graphs in the guest (graph.c, graph_node.c,
 * graph_exec.c). Two kinds share CUgraph and CUgraphExec:
 *  - made by stream capture: the host's worker holds the real graph and
 *    executable graph (host handles from 1);
 *  - built node by node (cuGraphCreate, cuGraphAdd*Node): held here, each
 *    node what it does with its dependencies; an executable graph of one
 *    is its nodes in an order their dependencies allow (child graphs
 *    flattened in), which a launch posts on the stream one by one as the
 *    program would have (docs/specs/cuda-remoting.md says what that gives
 *    up). The host sees ordinary launches, copies and memsets, admitted,
 *    checked and budgeted as those are.
 * Memory allocation and free nodes: graph_mem.c.
 * Internal to guest/cuda/. Like CUDA's, these objects are not safe to use
 * from two threads at once.
 */
#ifndef VGPU_CUDA_GRAPH_H
#define VGPU_CUDA_GRAPH_H

#include "kernel.h"

#define VGPU_GRAPH_MAGIC 0x56475250u /* "VGRP" */
#define VGPU_EXEC_MAGIC 0x56475845u  /* "VGXE" */
#define VGPU_NODE_MAGIC 0x56474e44u  /* "VGND" */

/* The allocation of an allocation node (graph_mem.c). */
struct vgpu_graph_alloc {
	CUdeviceptr dptr;
	size_t bytes;
	bool live;                    /* made by a launch, not freed since */
	CUgraph owner;                /* the graph of its node, NULL once that is gone */
	bool owner_frees;             /* its own graph has a free node of it */
	unsigned int other_frees;     /* free nodes of it in other graphs */
	unsigned int refs;            /* its nodes and the steps of executable graphs */
	unsigned int execs;           /* steps of its allocation node */
	struct vgpu_graph_alloc *next;
};

/* What a node does when its graph runs: kernel, memcpy, memset, host,
 * child graph, empty, event record, event wait, memory allocation and
 * memory free nodes are served. */
struct vgpu_graph_op {
	CUgraphNodeType type;
	union {
		struct {
			struct CUfunc_st *k;
			CUfunction func;      /* as given, for the queries */
			CUkernel kern;
			CUcontext ctx;
			unsigned int dims[6]; /* grid, then block */
			unsigned int shared;
			uint8_t *args;        /* k->param_bytes, as a launch sends them */
		} kernel;
		CUDA_MEMCPY3D copy;
		CUDA_MEMSET_NODE_PARAMS memset;
		CUDA_HOST_NODE_PARAMS host;
		CUgraph child;                /* the node's own clone */
		CUevent event;
		struct {
			struct vgpu_graph_alloc *a;
			CUDA_MEM_ALLOC_NODE_PARAMS params; /* as given, dptr set */
			CUmemAccessDesc *access;      /* the node's copy of params' */
			CUgraph graph;                /* the node's; NULL in a step */
		} alloc;
		struct {
			struct vgpu_graph_alloc *a;   /* held */
			CUdeviceptr ptr;
			CUgraph graph;                /* likewise */
			bool by_owner;                /* in the allocation's own graph */
		} mfree;
	};
};

struct CUgraphNode_st {
	uint32_t magic;
	CUgraph graph;
	const struct CUgraphNode_st *origin; /* cloned from (compared, never read) */
	struct vgpu_graph_op op;
	void **argv;                  /* a kernel node's parameters, into op.kernel.args */
	CUgraphNode *deps;
	size_t n_deps;
};

struct CUgraph_st {
	uint32_t magic;
	uint64_t host;                /* a captured graph's; 0: built here */
	bool child;                   /* a child graph node's (no memory nodes) */
	CUgraphNode *nodes;           /* in the order they were added */
	size_t n_nodes, cap_nodes;
};

/* A node of the graph an executable graph was made from, its type and
 * its dependencies (indexes) then, for cuGraphExecUpdate. */
struct vgpu_exec_top {
	CUgraphNode node;
	CUgraphNodeType type;
	size_t *deps;
	size_t n_deps;
};

/* One step of a built graph's executable graph. */
struct vgpu_graph_step {
	struct vgpu_graph_op op;      /* its own copy */
	CUgraphNode node;             /* the node of the instantiated graph it runs for */
	bool enabled;
};

struct CUgraphExec_st {
	uint32_t magic;
	uint64_t host;                /* a captured graph's; 0: steps here */
	unsigned long long flags;
	struct vgpu_graph_step *steps;
	size_t n_steps;
	struct vgpu_exec_top *top;    /* the instantiated graph's nodes */
	size_t n_top;
};

/* graph.c: @g if it is a graph built here (*@rc CUDA_SUCCESS), else NULL
 * with *@rc the error (a captured graph: CUDA_ERROR_NOT_SUPPORTED, logged). */
struct CUgraph_st *vgpu_graph_built(CUgraph g, CUresult *rc);
/* graph.c: a deep copy of built graph @g into *@out, each node's origin
 * the node it copies. */
CUresult vgpu_graph_clone(CUgraph g, CUgraph *out);
/* graph.c: free built graph @g and its nodes. */
void vgpu_graph_free(CUgraph g);
/* graph.c: a node doing @op (whose contents it takes, or frees on an
 * error) added to @g after the @n nodes @deps (edge data @edges: NULL or
 * ordinary dependencies only), into *@out. */
CUresult vgpu_graph_add(CUgraph g, const CUgraphNode *deps, const CUgraphEdgeData *edges, size_t n,
			struct vgpu_graph_op *op, CUgraphNode *out);
/* graph.c: @node if it is a node of a graph (*@rc CUDA_SUCCESS), of
 * @type unless that is -1; else NULL with *@rc the error. */
struct CUgraphNode_st *vgpu_graph_node(CUgraphNode node, int type, CUresult *rc);

/* graph_node.c: @src's deep copy into @dst (a kernel's parameters, a
 * child graph). */
CUresult vgpu_graph_op_copy(struct vgpu_graph_op *dst, const struct vgpu_graph_op *src);
/* graph_node.c: what @op holds. */
void vgpu_graph_op_free(struct vgpu_graph_op *op);
/* graph_node.c: post @op on @stream, as the program's own call would. */
CUresult vgpu_graph_op_run(const struct vgpu_graph_op *op, CUstream stream);
/* graph_node.c: @node's new @op: @node takes its contents, or on an
 * error they are freed and @node keeps its own. */
CUresult vgpu_graph_node_set(struct CUgraphNode_st *node, struct vgpu_graph_op *op);
/* graph_node.c: @op from the generic parameters @p (cuGraphAddNode's). */
CUresult vgpu_graph_op_from(struct vgpu_graph_op *op, const CUgraphNodeParams *p);

/* graph_mem.c: an allocation node's @op for graph @g, its memory
 * allocated (its address in @op->alloc.params.dptr). */
CUresult vgpu_graph_alloc_op(struct vgpu_graph_op *op, struct CUgraph_st *g,
			     const CUDA_MEM_ALLOC_NODE_PARAMS *p);
/* graph_mem.c: a free node's @op for graph @g: @dptr is an allocation
 * node's, not freed by a graph yet. */
CUresult vgpu_graph_free_op(struct vgpu_graph_op *op, struct CUgraph_st *g, CUdeviceptr dptr);
/* graph_mem.c: memory node @src's copy into @dst, a step of an
 * executable graph. */
void vgpu_graph_mem_step(struct vgpu_graph_op *dst, const struct vgpu_graph_op *src);
/* graph_mem.c: memory node @op (a node's or a step's) gone. */
void vgpu_graph_mem_release(struct vgpu_graph_op *op);
/* graph_mem.c: whether an executable graph of @g exists (one at a time
 * for a graph with allocation nodes). */
bool vgpu_graph_mem_instantiated(const struct CUgraph_st *g);
/* graph_mem.c: the allocations and frees of launching @e, or
 * CUDA_ERROR_INVALID_VALUE (nothing changed) when one it makes is still
 * live, unless @e frees on launch. */
CUresult vgpu_graph_mem_launch(const struct CUgraphExec_st *e);

/* graph_node.c: the first versions (their parameters without the kernel
 * and context, or without edge data), exported under the bare names
 * (cuda.h maps them to the later ones). */
CUresult cuGraphAddKernelNode_v1(CUgraphNode *phGraphNode, CUgraph hGraph,
				 const CUgraphNode *dependencies, size_t numDependencies,
				 const CUDA_KERNEL_NODE_PARAMS_v1 *nodeParams)
	__asm__("cuGraphAddKernelNode");
CUresult cuGraphKernelNodeGetParams_v1(CUgraphNode hNode, CUDA_KERNEL_NODE_PARAMS_v1 *nodeParams)
	__asm__("cuGraphKernelNodeGetParams");
CUresult cuGraphKernelNodeSetParams_v1(CUgraphNode hNode,
				       const CUDA_KERNEL_NODE_PARAMS_v1 *nodeParams)
	__asm__("cuGraphKernelNodeSetParams");
CUresult cuGraphAddNode_v1(CUgraphNode *phGraphNode, CUgraph hGraph,
			   const CUgraphNode *dependencies, size_t numDependencies,
			   CUgraphNodeParams *nodeParams) __asm__("cuGraphAddNode");
/* graph.c: likewise. */
CUresult cuGraphGetEdges_v1(CUgraph hGraph, CUgraphNode *from, CUgraphNode *to, size_t *numEdges)
	__asm__("cuGraphGetEdges");
CUresult cuGraphNodeGetDependencies_v1(CUgraphNode hNode, CUgraphNode *dependencies,
				       size_t *numDependencies)
	__asm__("cuGraphNodeGetDependencies");
CUresult cuGraphNodeGetDependentNodes_v1(CUgraphNode hNode, CUgraphNode *dependentNodes,
					 size_t *numDependentNodes)
	__asm__("cuGraphNodeGetDependentNodes");
CUresult cuGraphAddDependencies_v1(CUgraph hGraph, const CUgraphNode *from, const CUgraphNode *to,
				   size_t numDependencies) __asm__("cuGraphAddDependencies");
CUresult cuGraphRemoveDependencies_v1(CUgraph hGraph, const CUgraphNode *from,
				      const CUgraphNode *to, size_t numDependencies)
	__asm__("cuGraphRemoveDependencies");
/* graph_exec.c: likewise. */
CUresult cuGraphExecKernelNodeSetParams_v1(CUgraphExec hGraphExec, CUgraphNode hNode,
					   const CUDA_KERNEL_NODE_PARAMS_v1 *nodeParams)
	__asm__("cuGraphExecKernelNodeSetParams");
CUresult cuGraphExecUpdate_v1(CUgraphExec hGraphExec, CUgraph hGraph, CUgraphNode *hErrorNode_out,
			      CUgraphExecUpdateResult *updateResult_out)
	__asm__("cuGraphExecUpdate");

#endif
