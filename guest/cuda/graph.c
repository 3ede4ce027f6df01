/* SPDX-License-Identifier: MIT */
/*
 * graph.c - CUDA graphs (graph.h): the records of both kinds, and a built
 * graph's structure: its nodes and their dependencies, the queries of
 * both, clones, nodes and edges removed. What each node does is
 * graph_node.c's; executable graphs are graph_exec.c's.
 *
 * Never: take a handle that is not one of ours, leave an edge to a node
 * that is gone, or free a captured graph's record before the host's answer.
 */
#include <stdlib.h>
#include <string.h>

#include "graph.h"

CUresult vgpu_cuda_graph_new(uint64_t host, CUgraph *out)
{
	struct CUgraph_st *g = host ? calloc(1, sizeof(*g)) : NULL;

	if (!g)
		return host ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_ERROR_UNKNOWN;
	g->magic = VGPU_GRAPH_MAGIC;
	g->host = host;
	*out = g;
	return CUDA_SUCCESS;
}

CUresult cuGraphCreate(CUgraph *phGraph, unsigned int flags)
{
	struct CUgraph_st *g;

	if (!phGraph || flags != 0)
		return CUDA_ERROR_INVALID_VALUE;
	g = calloc(1, sizeof(*g));
	if (!g)
		return CUDA_ERROR_OUT_OF_MEMORY;
	g->magic = VGPU_GRAPH_MAGIC;
	*phGraph = g;
	return CUDA_SUCCESS;
}

struct CUgraph_st *vgpu_graph_built(CUgraph g, CUresult *rc)
{
	*rc = CUDA_SUCCESS;
	if (!VGPU_CUDA_IS(g, VGPU_GRAPH_MAGIC)) {
		*rc = CUDA_ERROR_INVALID_HANDLE;
		return NULL;
	}
	if (g->host) {
		vgpu_cuda_log(true, "a graph made by stream capture cannot be read or changed "
				    "node by node: CUDA_ERROR_NOT_SUPPORTED");
		*rc = CUDA_ERROR_NOT_SUPPORTED;
		return NULL;
	}
	return g;
}

struct CUgraphNode_st *vgpu_graph_node(CUgraphNode node, int type, CUresult *rc)
{
	*rc = CUDA_SUCCESS;
	if (!VGPU_CUDA_IS(node, VGPU_NODE_MAGIC)) {
		*rc = CUDA_ERROR_INVALID_HANDLE;
		return NULL;
	}
	if (type >= 0 && node->op.type != (CUgraphNodeType)type) {
		*rc = CUDA_ERROR_INVALID_VALUE;
		return NULL;
	}
	return node;
}

static void node_free(struct CUgraphNode_st *node)
{
	vgpu_graph_op_free(&node->op);
	free(node->argv);
	free(node->deps);
	node->magic = 0;
	free(node);
}

void vgpu_graph_free(CUgraph g)
{
	for (size_t i = 0; i < g->n_nodes; i++)
		node_free(g->nodes[i]);
	free(g->nodes);
	g->magic = 0;
	free(g);
}

CUresult cuGraphDestroy(CUgraph hGraph)
{
	CUresult rc;

	if (!VGPU_CUDA_IS(hGraph, VGPU_GRAPH_MAGIC))
		return CUDA_ERROR_INVALID_HANDLE;
	if (!hGraph->host) {
		vgpu_graph_free(hGraph);
		return CUDA_SUCCESS;
	}
	rc = vgpu_cuda_call_args(VGPU_CUDA_GRAPH_DESTROY, hGraph->host, 0, 0, NULL);
	hGraph->magic = 0;
	free(hGraph);
	return rc;
}

static bool has_dep(const struct CUgraphNode_st *node, const struct CUgraphNode_st *dep)
{
	for (size_t i = 0; i < node->n_deps; i++)
		if (node->deps[i] == dep)
			return true;
	return false;
}

/* Edge data other than an ordinary dependency is not served (a
 * programmatic edge is a kernel's early start). */
static CUresult plain_edges(const CUgraphEdgeData *edges, size_t n)
{
	static const CUgraphEdgeData plain;

	for (size_t i = 0; edges && i < n; i++)
		if (memcmp(&edges[i], &plain, sizeof(plain)) != 0) {
			vgpu_cuda_log(true, "graph edges other than full dependencies are not served: "
					    "CUDA_ERROR_NOT_SUPPORTED");
			return CUDA_ERROR_NOT_SUPPORTED;
		}
	return CUDA_SUCCESS;
}

/* Whether each of @deps (@n) is a node of @g, none twice. */
static CUresult deps_ok(const struct CUgraph_st *g, const CUgraphNode *deps, size_t n)
{
	CUresult rc;

	if (n && !deps)
		return CUDA_ERROR_INVALID_VALUE;
	if (n > g->n_nodes)
		return CUDA_ERROR_INVALID_VALUE;
	for (size_t i = 0; i < n; i++) {
		if (!vgpu_graph_node(deps[i], -1, &rc))
			return rc;
		if (deps[i]->graph != g)
			return CUDA_ERROR_INVALID_VALUE;
		for (size_t j = 0; j < i; j++)
			if (deps[j] == deps[i])
				return CUDA_ERROR_INVALID_VALUE;
	}
	return CUDA_SUCCESS;
}

/* Room for one more node in @g. */
static CUresult node_room(struct CUgraph_st *g)
{
	CUgraphNode *grown;
	size_t cap;

	if (g->n_nodes < g->cap_nodes)
		return CUDA_SUCCESS;
	cap = g->cap_nodes ? 2 * g->cap_nodes : 8;
	grown = cap > SIZE_MAX / sizeof(*grown) ? NULL : realloc(g->nodes, cap * sizeof(*grown));
	if (!grown)
		return CUDA_ERROR_OUT_OF_MEMORY;
	g->nodes = grown;
	g->cap_nodes = cap;
	return CUDA_SUCCESS;
}

CUresult vgpu_graph_add(CUgraph g, const CUgraphNode *deps, const CUgraphEdgeData *edges, size_t n,
			struct vgpu_graph_op *op, CUgraphNode *out)
{
	struct CUgraphNode_st *node = NULL;
	CUresult rc = out ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;

	if (rc == CUDA_SUCCESS && vgpu_graph_built(g, &rc))
		rc = deps_ok(g, deps, n);
	if (rc == CUDA_SUCCESS)
		rc = plain_edges(edges, n);
	if (rc == CUDA_SUCCESS)
		rc = node_room(g);
	if (rc == CUDA_SUCCESS) {
		node = calloc(1, sizeof(*node));
		if (node && n)
			node->deps = malloc(n * sizeof(*deps));
		if (!node || (n && !node->deps))
			rc = CUDA_ERROR_OUT_OF_MEMORY;
	}
	if (rc != CUDA_SUCCESS) {
		if (node)
			free(node->deps);
		free(node);
		vgpu_graph_op_free(op);
		return rc;
	}
	node->op.type = CU_GRAPH_NODE_TYPE_EMPTY;
	rc = vgpu_graph_node_set(node, op);
	if (rc != CUDA_SUCCESS) {
		free(node->deps);
		free(node);
		return rc;
	}
	node->magic = VGPU_NODE_MAGIC;
	node->graph = g;
	if (n)
		memcpy(node->deps, deps, n * sizeof(*deps));
	node->n_deps = n;
	g->nodes[g->n_nodes++] = node;
	*out = node;
	return CUDA_SUCCESS;
}

CUresult cuGraphAddEmptyNode(CUgraphNode *phGraphNode, CUgraph hGraph,
			     const CUgraphNode *dependencies, size_t numDependencies)
{
	struct vgpu_graph_op op = { .type = CU_GRAPH_NODE_TYPE_EMPTY };

	return vgpu_graph_add(hGraph, dependencies, NULL, numDependencies, &op, phGraphNode);
}

/* Up to *@num of @n values from @src into @dst (NULL: only the count);
 * entries past @n are NULL; *@num becomes how many there are. */
static CUresult fill(CUgraphNode *dst, const CUgraphNode *src, size_t n, size_t *num)
{
	if (!num)
		return CUDA_ERROR_INVALID_VALUE;
	if (dst) {
		for (size_t i = 0; i < *num; i++)
			dst[i] = i < n ? src[i] : NULL;
		if (*num < n)
			return CUDA_SUCCESS;
	}
	*num = n;
	return CUDA_SUCCESS;
}

CUresult cuGraphGetNodes(CUgraph hGraph, CUgraphNode *nodes, size_t *numNodes)
{
	CUresult rc;
	struct CUgraph_st *g = vgpu_graph_built(hGraph, &rc);

	return g ? fill(nodes, g->nodes, g->n_nodes, numNodes) : rc;
}

CUresult cuGraphGetRootNodes(CUgraph hGraph, CUgraphNode *rootNodes, size_t *numRootNodes)
{
	CUresult rc;
	struct CUgraph_st *g = vgpu_graph_built(hGraph, &rc);
	size_t k = 0;

	if (!g)
		return rc;
	if (!numRootNodes)
		return CUDA_ERROR_INVALID_VALUE;
	for (size_t i = 0; i < g->n_nodes; i++)
		if (g->nodes[i]->n_deps == 0) {
			if (rootNodes && k < *numRootNodes)
				rootNodes[k] = g->nodes[i];
			k++;
		}
	for (size_t i = k; rootNodes && i < *numRootNodes; i++)
		rootNodes[i] = NULL;
	if (!rootNodes || *numRootNodes > k)
		*numRootNodes = k;
	return CUDA_SUCCESS;
}

/* Edge data for @n edges, where asked: all ordinary. */
static void plain_out(CUgraphEdgeData *edges, size_t n)
{
	if (edges)
		memset(edges, 0, n * sizeof(*edges));
}

CUresult cuGraphGetEdges(CUgraph hGraph, CUgraphNode *from, CUgraphNode *to,
			 CUgraphEdgeData *edgeData, size_t *numEdges)
{
	CUresult rc;
	struct CUgraph_st *g = vgpu_graph_built(hGraph, &rc);
	size_t k = 0;

	if (!g)
		return rc;
	if (!numEdges || !from != !to || (edgeData && !from))
		return CUDA_ERROR_INVALID_VALUE;
	for (size_t i = 0; i < g->n_nodes; i++)
		for (size_t d = 0; d < g->nodes[i]->n_deps; d++) {
			if (from && k < *numEdges) {
				from[k] = g->nodes[i]->deps[d];
				to[k] = g->nodes[i];
			}
			k++;
		}
	if (from) {
		plain_out(edgeData, *numEdges);
		for (size_t i = k; i < *numEdges; i++)
			from[i] = to[i] = NULL;
		if (*numEdges < k)
			return CUDA_SUCCESS;
	}
	*numEdges = k;
	return CUDA_SUCCESS;
}

CUresult cuGraphGetEdges_v1(CUgraph hGraph, CUgraphNode *from, CUgraphNode *to, size_t *numEdges)
{
	return cuGraphGetEdges(hGraph, from, to, NULL, numEdges);
}

CUresult cuGraphNodeGetDependencies(CUgraphNode hNode, CUgraphNode *dependencies,
				    CUgraphEdgeData *edgeData, size_t *numDependencies)
{
	CUresult rc;
	struct CUgraphNode_st *node = vgpu_graph_node(hNode, -1, &rc);

	if (!node)
		return rc;
	if (edgeData && !dependencies)
		return CUDA_ERROR_INVALID_VALUE; /* edge data only beside the nodes */
	if (edgeData && numDependencies)
		plain_out(edgeData, *numDependencies);
	return fill(dependencies, node->deps, node->n_deps, numDependencies);
}

CUresult cuGraphNodeGetDependencies_v1(CUgraphNode hNode, CUgraphNode *dependencies,
				       size_t *numDependencies)
{
	return cuGraphNodeGetDependencies(hNode, dependencies, NULL, numDependencies);
}

CUresult cuGraphNodeGetDependentNodes(CUgraphNode hNode, CUgraphNode *dependentNodes,
				      CUgraphEdgeData *edgeData, size_t *numDependentNodes)
{
	CUresult rc;
	struct CUgraphNode_st *node = vgpu_graph_node(hNode, -1, &rc);
	const struct CUgraph_st *g;
	size_t k = 0;

	if (!node)
		return rc;
	if (!numDependentNodes)
		return CUDA_ERROR_INVALID_VALUE;
	g = node->graph;
	for (size_t i = 0; i < g->n_nodes; i++)
		if (has_dep(g->nodes[i], node)) {
			if (dependentNodes && k < *numDependentNodes)
				dependentNodes[k] = g->nodes[i];
			k++;
		}
	if (dependentNodes) {
		plain_out(edgeData, *numDependentNodes);
		for (size_t i = k; i < *numDependentNodes; i++)
			dependentNodes[i] = NULL;
		if (*numDependentNodes < k)
			return CUDA_SUCCESS;
	}
	*numDependentNodes = k;
	return CUDA_SUCCESS;
}

CUresult cuGraphNodeGetDependentNodes_v1(CUgraphNode hNode, CUgraphNode *dependentNodes,
					 size_t *numDependentNodes)
{
	return cuGraphNodeGetDependentNodes(hNode, dependentNodes, NULL, numDependentNodes);
}

/* The @n edges @from[i] -> @to[i] of @g, checked: nodes of @g, no edge
 * from a node to itself, none twice in one call. */
static CUresult edges_ok(const struct CUgraph_st *g, const CUgraphNode *from, const CUgraphNode *to,
			 size_t n)
{
	CUresult rc = CUDA_SUCCESS;

	if (n && (!from || !to))
		return CUDA_ERROR_INVALID_VALUE;
	for (size_t i = 0; i < n && rc == CUDA_SUCCESS; i++) {
		if (!vgpu_graph_node(from[i], -1, &rc) || !vgpu_graph_node(to[i], -1, &rc))
			break;
		if (from[i]->graph != g || to[i]->graph != g || from[i] == to[i])
			rc = CUDA_ERROR_INVALID_VALUE;
		for (size_t j = 0; j < i && rc == CUDA_SUCCESS; j++)
			if (from[j] == from[i] && to[j] == to[i])
				rc = CUDA_ERROR_INVALID_VALUE;
	}
	return rc;
}

CUresult cuGraphAddDependencies(CUgraph hGraph, const CUgraphNode *from, const CUgraphNode *to,
				const CUgraphEdgeData *edgeData, size_t numDependencies)
{
	CUresult rc;
	struct CUgraph_st *g = vgpu_graph_built(hGraph, &rc);

	if (g)
		rc = edges_ok(g, from, to, numDependencies);
	if (rc == CUDA_SUCCESS)
		rc = plain_edges(edgeData, numDependencies);
	for (size_t i = 0; rc == CUDA_SUCCESS && i < numDependencies; i++)
		if (has_dep(to[i], from[i]))
			rc = CUDA_ERROR_INVALID_VALUE; /* there already */
	/* Room first, so that either every edge is added or none. */
	for (size_t i = 0; rc == CUDA_SUCCESS && i < numDependencies; i++) {
		size_t more = 0;

		for (size_t j = 0; j < numDependencies; j++)
			more += to[j] == to[i];
		CUgraphNode *grown = realloc(to[i]->deps, (to[i]->n_deps + more) * sizeof(*grown));

		if (!grown)
			rc = CUDA_ERROR_OUT_OF_MEMORY;
		else
			to[i]->deps = grown;
	}
	for (size_t i = 0; rc == CUDA_SUCCESS && i < numDependencies; i++)
		to[i]->deps[to[i]->n_deps++] = from[i];
	return rc;
}

CUresult cuGraphAddDependencies_v1(CUgraph hGraph, const CUgraphNode *from, const CUgraphNode *to,
				   size_t numDependencies)
{
	return cuGraphAddDependencies(hGraph, from, to, NULL, numDependencies);
}

/* Whether @g has memory allocation or free nodes: then, as CUDA says, it
 * loses no nodes or edges and is not cloned (graph_mem.c). */
static bool has_mem(const struct CUgraph_st *g, const char *what)
{
	for (size_t i = 0; i < g->n_nodes; i++)
		if (g->nodes[i]->op.type == CU_GRAPH_NODE_TYPE_MEM_ALLOC ||
		    g->nodes[i]->op.type == CU_GRAPH_NODE_TYPE_MEM_FREE) {
			vgpu_cuda_log(true, "a graph with memory nodes cannot %s: "
					    "CUDA_ERROR_NOT_SUPPORTED", what);
			return true;
		}
	return false;
}

/* Drop @dep from @node's dependencies, if there. */
static void drop_dep(struct CUgraphNode_st *node, const struct CUgraphNode_st *dep)
{
	for (size_t i = 0; i < node->n_deps; i++)
		if (node->deps[i] == dep) {
			memmove(&node->deps[i], &node->deps[i + 1],
				(node->n_deps - i - 1) * sizeof(*node->deps));
			node->n_deps--;
			return;
		}
}

CUresult cuGraphRemoveDependencies(CUgraph hGraph, const CUgraphNode *from, const CUgraphNode *to,
				   const CUgraphEdgeData *edgeData, size_t numDependencies)
{
	CUresult rc;
	struct CUgraph_st *g = vgpu_graph_built(hGraph, &rc);

	if (g)
		rc = edges_ok(g, from, to, numDependencies);
	if (rc == CUDA_SUCCESS)
		rc = plain_edges(edgeData, numDependencies);
	if (rc == CUDA_SUCCESS && has_mem(g, "lose edges"))
		rc = CUDA_ERROR_NOT_SUPPORTED;
	for (size_t i = 0; rc == CUDA_SUCCESS && i < numDependencies; i++)
		if (!has_dep(to[i], from[i]))
			rc = CUDA_ERROR_INVALID_VALUE; /* not there: nothing removed */
	for (size_t i = 0; rc == CUDA_SUCCESS && i < numDependencies; i++)
		drop_dep(to[i], from[i]);
	return rc;
}

CUresult cuGraphRemoveDependencies_v1(CUgraph hGraph, const CUgraphNode *from,
				      const CUgraphNode *to, size_t numDependencies)
{
	return cuGraphRemoveDependencies(hGraph, from, to, NULL, numDependencies);
}

CUresult cuGraphDestroyNode(CUgraphNode hNode)
{
	CUresult rc;
	struct CUgraphNode_st *node = vgpu_graph_node(hNode, -1, &rc);
	struct CUgraph_st *g;
	size_t at = 0;

	if (!node)
		return rc;
	g = node->graph;
	if (has_mem(g, "lose nodes"))
		return CUDA_ERROR_NOT_SUPPORTED;
	for (size_t i = 0; i < g->n_nodes; i++) {
		drop_dep(g->nodes[i], node);
		if (g->nodes[i] == node)
			at = i;
	}
	memmove(&g->nodes[at], &g->nodes[at + 1], (g->n_nodes - at - 1) * sizeof(*g->nodes));
	g->n_nodes--;
	node_free(node);
	return CUDA_SUCCESS;
}

CUresult cuGraphNodeGetType(CUgraphNode hNode, CUgraphNodeType *type)
{
	CUresult rc;
	struct CUgraphNode_st *node = vgpu_graph_node(hNode, -1, &rc);

	if (node && !type)
		rc = CUDA_ERROR_INVALID_VALUE;
	if (rc == CUDA_SUCCESS)
		*type = node->op.type;
	return rc;
}

/* The index of @node among @g's nodes (it is one). */
static size_t index_of(const struct CUgraph_st *g, const struct CUgraphNode_st *node)
{
	size_t i = 0;

	while (g->nodes[i] != node)
		i++;
	return i;
}

CUresult vgpu_graph_clone(CUgraph g, CUgraph *out)
{
	CUgraph c = NULL;
	CUresult rc;

	if (has_mem(g, "be cloned or made a child graph"))
		return CUDA_ERROR_NOT_SUPPORTED;
	rc = cuGraphCreate(&c, 0);

	/* The nodes first (a node may come before one it depends on: edges
	 * can be added later), then their edges, to the clone's nodes. */
	for (size_t i = 0; rc == CUDA_SUCCESS && i < g->n_nodes; i++) {
		struct vgpu_graph_op op;
		CUgraphNode node;

		rc = vgpu_graph_op_copy(&op, &g->nodes[i]->op);
		if (rc == CUDA_SUCCESS)
			rc = vgpu_graph_add(c, NULL, NULL, 0, &op, &node);
		if (rc == CUDA_SUCCESS)
			node->origin = g->nodes[i];
	}
	for (size_t i = 0; rc == CUDA_SUCCESS && i < g->n_nodes; i++) {
		const struct CUgraphNode_st *from = g->nodes[i];
		struct CUgraphNode_st *node = c->nodes[i];

		if (!from->n_deps)
			continue;
		node->deps = malloc(from->n_deps * sizeof(*node->deps));
		if (!node->deps) {
			rc = CUDA_ERROR_OUT_OF_MEMORY;
			break;
		}
		for (size_t d = 0; d < from->n_deps; d++)
			node->deps[d] = c->nodes[index_of(g, from->deps[d])];
		node->n_deps = from->n_deps;
	}
	if (rc != CUDA_SUCCESS) {
		if (c)
			vgpu_graph_free(c);
		return rc;
	}
	*out = c;
	return CUDA_SUCCESS;
}

CUresult cuGraphClone(CUgraph *phGraphClone, CUgraph originalGraph)
{
	CUresult rc;
	struct CUgraph_st *g = vgpu_graph_built(originalGraph, &rc);

	if (g && !phGraphClone)
		rc = CUDA_ERROR_INVALID_VALUE;
	return rc == CUDA_SUCCESS ? vgpu_graph_clone(g, phGraphClone) : rc;
}

CUresult cuGraphNodeFindInClone(CUgraphNode *phNode, CUgraphNode hOriginalNode,
				CUgraph hClonedGraph)
{
	CUresult rc;
	struct CUgraph_st *g = vgpu_graph_built(hClonedGraph, &rc);

	if (g && (!phNode || !hOriginalNode))
		rc = CUDA_ERROR_INVALID_VALUE;
	for (size_t i = 0; rc == CUDA_SUCCESS && i < g->n_nodes; i++)
		if (g->nodes[i]->origin == hOriginalNode) {
			*phNode = g->nodes[i];
			return CUDA_SUCCESS;
		}
	return rc == CUDA_SUCCESS ? CUDA_ERROR_INVALID_VALUE : rc;
}
