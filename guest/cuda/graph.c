/* SPDX-License-Identifier: MIT */
/*
 * graph.c - CUDA graphs made by stream capture (stream.c begins and ends
 * the capture): the host's worker holds the real graphs and executable
 * graphs (handles from 1); here each is a small record with that handle,
 * checked by its magic before use. A launch (or upload) is posted like a
 * kernel's; instantiating and destroying wait for the host's answer.
 *
 * Building graphs node by node (cuGraphCreate, cuGraphAdd*Node) is not
 * served: those entry points are proc.c's stubs.
 *
 * Never: take a handle that is not one of ours, or free a record the
 * host still holds (destroy frees it once the host's answer is in).
 */
#include <stdlib.h>

#include "shim.h"

#define GRAPH_MAGIC 0x56475250u /* "VGRP" */
#define EXEC_MAGIC 0x56475845u  /* "VGXE" */

struct CUgraph_st {
	uint32_t magic;
	uint64_t host;
};

struct CUgraphExec_st {
	uint32_t magic;
	uint64_t host;
};

CUresult vgpu_cuda_graph_new(uint64_t host, CUgraph *out)
{
	struct CUgraph_st *g = host ? malloc(sizeof(*g)) : NULL;

	if (!g)
		return host ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_ERROR_UNKNOWN;
	*g = (struct CUgraph_st){ .magic = GRAPH_MAGIC, .host = host };
	*out = g;
	return CUDA_SUCCESS;
}

CUresult cuGraphInstantiateWithFlags(CUgraphExec *phGraphExec, CUgraph hGraph,
				     unsigned long long flags)
{
	struct CUgraphExec_st *e;
	CUresult rc;

	if (!phGraphExec)
		return CUDA_ERROR_INVALID_VALUE;
	if (!hGraph || hGraph->magic != GRAPH_MAGIC)
		return CUDA_ERROR_INVALID_HANDLE;
	e = calloc(1, sizeof(*e));
	if (!e)
		return CUDA_ERROR_OUT_OF_MEMORY;
	rc = vgpu_cuda_call_args(VGPU_CUDA_GRAPH_INSTANTIATE, hGraph->host, flags, 0, &e->host);
	if (rc == CUDA_SUCCESS && !e->host)
		rc = CUDA_ERROR_UNKNOWN;
	if (rc != CUDA_SUCCESS) {
		free(e);
		return rc;
	}
	e->magic = EXEC_MAGIC;
	*phGraphExec = e;
	return CUDA_SUCCESS;
}

/* CUDA 11.0's cuGraphInstantiate (cuda.h maps the name to the flags'
 * version since 12.0): no node is ever in error here, and no log. */
CUresult cuGraphInstantiate_v2(CUgraphExec *phGraphExec, CUgraph hGraph, CUgraphNode *phErrorNode,
			       char *logBuffer, size_t bufferSize)
{
	if (phErrorNode)
		*phErrorNode = NULL;
	if (logBuffer && bufferSize)
		logBuffer[0] = '\0';
	return cuGraphInstantiateWithFlags(phGraphExec, hGraph, 0);
}

/* GRAPH_LAUNCH of @exec on @stream (@upload: cuGraphUpload), posted. */
static CUresult launch(CUgraphExec exec, CUstream stream, uint64_t upload)
{
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_GRAPH_LAUNCH };
	uint64_t host;
	CUresult rc = vgpu_cuda_ready();

	if (rc == CUDA_SUCCESS)
		rc = vgpu_cuda_stream_host(stream, &host);
	if (rc != CUDA_SUCCESS)
		return rc;
	if (!exec || exec->magic != EXEC_MAGIC)
		return CUDA_ERROR_INVALID_HANDLE;
	m.v[0] = exec->host;
	m.v[1] = host;
	m.v[2] = upload;
	return vgpu_cuda_post(&m, NULL);
}

CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream)
{
	return launch(hGraphExec, hStream, 0);
}

CUresult cuGraphUpload(CUgraphExec hGraphExec, CUstream hStream)
{
	return launch(hGraphExec, hStream, 1);
}

/* GRAPH_DESTROY of the record at @rec (its @magic, which must be @want;
 * the host's @host of @kind 0: graph, 1: executable), then the record. */
static CUresult destroy(void *rec, uint32_t *magic, uint32_t want, uint64_t host, uint64_t kind)
{
	CUresult rc;

	if (*magic != want)
		return CUDA_ERROR_INVALID_HANDLE;
	rc = vgpu_cuda_call_args(VGPU_CUDA_GRAPH_DESTROY, host, kind, 0, NULL);
	*magic = 0;
	free(rec);
	return rc;
}

CUresult cuGraphExecDestroy(CUgraphExec hGraphExec)
{
	return hGraphExec ? destroy(hGraphExec, &hGraphExec->magic, EXEC_MAGIC, hGraphExec->host, 1)
			  : CUDA_ERROR_INVALID_HANDLE;
}

CUresult cuGraphDestroy(CUgraph hGraph)
{
	return hGraph ? destroy(hGraph, &hGraph->magic, GRAPH_MAGIC, hGraph->host, 0)
		      : CUDA_ERROR_INVALID_HANDLE;
}
