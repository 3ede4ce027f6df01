/* SPDX-License-Identifier: MIT */
/*
 * cuda_call.c - the calls' encoding (cuda_call.h).
 */
#include <stdbool.h>
#include <string.h>

#include "cuda_call.h"
#include "le.h"
#include "vgpu_error.h"

/* The arguments (@reply false) or results each call uses, as bits of v[].
 * Every call after OPEN also carries a5, the guest's device (numbered as
 * its description numbers them). */
static unsigned used(uint16_t call, bool reply)
{
	unsigned device = !reply && call != VGPU_CUDA_OPEN ? 1u << 5 : 0u;

	switch (call) {
	case VGPU_CUDA_MEM_ALLOC: return device | (reply ? 1u : 3u); /* bytes, managed; the pointer */
	case VGPU_CUDA_MEM_FREE:  return device | (reply ? 0u : 1u);
	case VGPU_CUDA_MEM_INFO:  return device | (reply ? 3u : 0u); /* -; free, total */
	case VGPU_CUDA_PRIORITY_RANGE: return device | (reply ? 3u : 0u); /* -; least, greatest */
	case VGPU_CUDA_HTOD:      return device | (reply ? 0u : 3u); /* destination, stream */
	case VGPU_CUDA_DTOH:      return device | (reply ? 0u : 7u); /* source, bytes, stream */
	case VGPU_CUDA_LIB_LOAD:  return device | (reply ? 1u : 0u); /* -; the library */
	case VGPU_CUDA_LIB_UNLOAD: return device | (reply ? 0u : 1u);
	case VGPU_CUDA_GET_KERNEL: return device | (reply ? 7u : 1u); /* library; kernel, n, bytes */
	case VGPU_CUDA_LAUNCH:    return device | (reply ? 0u : 31u); /* kernel, dimensions, shared */
	case VGPU_CUDA_STREAM_CREATE: return device | (reply ? 1u : 3u); /* flags, priority; stream */
	case VGPU_CUDA_EVENT_CREATE:  return device | 1u;                /* flags; event */
	case VGPU_CUDA_EVENT_ELAPSED: return device | (reply ? 1u : 3u); /* start, end; ms */
	case VGPU_CUDA_STREAM_WAIT:   /* stream, event */
	case VGPU_CUDA_EVENT_RECORD:  return device | (reply ? 0u : 3u); /* event, stream */
	case VGPU_CUDA_MEMSET:    return device | (reply ? 0u : 31u); /* dst, value, n, size, stream */
	case VGPU_CUDA_DTOD:      return device | (reply ? 0u : 15u); /* dst, src, bytes, stream */
	case VGPU_CUDA_FUNC_ATTR: return device | (reply ? 1u : 15u); /* kernel, attr, set, value */
	case VGPU_CUDA_OCCUPANCY: return device | (reply ? 1u : 31u); /* kernel, what, args */
	case VGPU_CUDA_GLOBAL:    return device | (reply ? 3u : 1u);  /* library; address, bytes */
	case VGPU_CUDA_CTX_INFO:  return device | (reply ? 1u : 7u);  /* what, limit, value;
								       * value */
	case VGPU_CUDA_WINDOW:    return device | (reply ? 1u : 7u);  /* bytes, ring, where;
								       * address */
	case VGPU_CUDA_HTOD_WIN:
	case VGPU_CUDA_DTOH_WIN:  return device | (reply ? 0u : 31u); /* ptr, offset, bytes,
								       * stream, async */
	case VGPU_CUDA_CAPTURE_BEGIN: return device | (reply ? 1u : 3u);  /* stream, mode; id */
	case VGPU_CUDA_CAPTURE_END:   return device | 1u;                 /* stream; graph */
	case VGPU_CUDA_GRAPH_INSTANTIATE: return device | (reply ? 1u : 3u); /* graph, flags; exec */
	case VGPU_CUDA_GRAPH_LAUNCH:  return device | (reply ? 0u : 7u);  /* exec, stream, upload */
	case VGPU_CUDA_GRAPH_DESTROY: return device | (reply ? 0u : 3u);  /* handle, kind */
	case VGPU_CUDA_MEM_ALLOC_ASYNC: return device | (reply ? 1u : 7u); /* bytes, stream, pool;
									 * pointer */
	case VGPU_CUDA_MEM_FREE_ASYNC: return device | (reply ? 0u : 3u); /* pointer, stream */
	case VGPU_CUDA_POOL:      return device | (reply ? 1u : 15u); /* what, pool, args; answer */
	case VGPU_CUDA_VMM:       return device | (reply ? 7u : 31u); /* what, args; answers */
	case VGPU_CUDA_ARRAY:     return device | (reply ? 3u : 31u); /* what, args; array, bytes */
	case VGPU_CUDA_ARRAY_COPY: return device | (reply ? 0u : 3u); /* stream, direction */
	case VGPU_CUDA_TEX:       return device | (reply ? 1u : 3u);  /* what, object or view;
								       * object */
	case VGPU_CUDA_STREAM_DESTROY:
	case VGPU_CUDA_STREAM_SYNC:
	case VGPU_CUDA_STREAM_QUERY:
	case VGPU_CUDA_EVENT_DESTROY:
	case VGPU_CUDA_EVENT_SYNC:
	case VGPU_CUDA_EVENT_QUERY:   return device | (reply ? 0u : 1u); /* the handle */
	default:                  return device;              /* OPEN, SYNC */
	}
}

/* Whether @m (its block decoded) may carry m->data_len bytes of data. */
static bool data_fits(const struct vgpu_cuda_msg *m, bool reply)
{
	uint64_t n = m->data_len;

	if (reply && m->status != 0)
		return n == 0;
	if (reply && m->call == VGPU_CUDA_DTOH)
		return true; /* at most VGPU_CUDA_MAX_DATA; its call's a1: the caller checks */
	if (reply && m->call == VGPU_CUDA_GET_KERNEL)
		return m->v[1] <= VGPU_CUDA_MAX_PARAMS && m->v[2] <= VGPU_CUDA_MAX_PARAM_BYTES &&
		       n == 8 * m->v[1];
	if (reply)
		return n == 0;
	switch (m->call) {
	case VGPU_CUDA_HTOD:
	case VGPU_CUDA_LIB_LOAD:   return n >= 1; /* at most VGPU_CUDA_MAX_DATA */
	case VGPU_CUDA_GET_KERNEL:
	case VGPU_CUDA_GLOBAL:     return n >= 1 && n <= VGPU_CUDA_MAX_NAME;
	case VGPU_CUDA_LAUNCH:
		return n <= VGPU_CUDA_MAX_PARAM_BYTES +
				    VGPU_CUDA_MAX_LAUNCH_ATTRS * VGPU_CUDA_LAUNCH_ATTR_BYTES;
	case VGPU_CUDA_ARRAY_COPY: return n == VGPU_CUDA_ARRAY_COPY_BYTES;
	case VGPU_CUDA_TEX:
		if (m->v[0] == VGPU_CUDA_SURF_CREATE)
			return n == VGPU_CUDA_RES_DESC_BYTES;
		if (m->v[0] == VGPU_CUDA_TEX_CREATE)
			return n == VGPU_CUDA_RES_DESC_BYTES + VGPU_CUDA_TEX_DESC_BYTES +
					    (m->v[1] ? VGPU_CUDA_VIEW_DESC_BYTES : 0);
		return n == 0;
	case VGPU_CUDA_OCCUPANCY:
		return m->v[1] == VGPU_CUDA_OCC_CLUSTERS
			       ? n >= VGPU_CUDA_LAUNCH_CONFIG_BYTES &&
					 n <= VGPU_CUDA_LAUNCH_CONFIG_BYTES +
						      VGPU_CUDA_MAX_LAUNCH_ATTRS *
							      VGPU_CUDA_LAUNCH_ATTR_BYTES &&
					 (n - VGPU_CUDA_LAUNCH_CONFIG_BYTES) %
							 VGPU_CUDA_LAUNCH_ATTR_BYTES == 0
			       : n == 0;
	default:                   return n == 0;
	}
}

void vgpu_cuda_encode(const struct vgpu_cuda_msg *m, bool reply, uint8_t out[VGPU_CUDA_MSG_HEAD])
{
	struct vgpu_msg_header h = {
		.type = reply ? VGPU_MSG_CUDA_REPLY : VGPU_MSG_CUDA,
		.op = m->call,
		.request_id = m->id,
		.payload_len = VGPU_CUDA_BLOCK + m->data_len,
	};
	uint8_t *b = out + VGPU_PROTO_HEADER_SIZE;

	memset(b, 0, VGPU_CUDA_BLOCK);
	if (reply) {
		put32(b, (uint32_t)m->status);
		for (int i = 0; i < 5; i++)
			put64(b + 8 + 8 * i, m->v[i]);
	} else {
		for (int i = 0; i < 6; i++)
			put64(b + 8 * i, m->v[i]);
	}
	vgpu_proto_encode_header(&h, out);
	put32(out + 28, vgpu_proto_checksum(out, b, VGPU_CUDA_BLOCK));
}

int vgpu_cuda_decode(const uint8_t in[VGPU_CUDA_MSG_HEAD], bool reply, struct vgpu_cuda_msg *m)
{
	const struct vgpu_proto_limits lim = { .max_payload = VGPU_CUDA_BLOCK + VGPU_CUDA_MAX_DATA };
	const uint8_t *b = in + VGPU_PROTO_HEADER_SIZE;
	struct vgpu_msg_header h;
	int rc = vgpu_proto_decode_header(in, &lim, &h);
	unsigned use;

	memset(m, 0, sizeof(*m));
	if (rc != VGPU_OK)
		return rc;
	if (h.type != (reply ? VGPU_MSG_CUDA_REPLY : VGPU_MSG_CUDA) || h.op < VGPU_CUDA_OPEN ||
	    h.payload_len < VGPU_CUDA_BLOCK ||
	    vgpu_proto_checksum(in, b, VGPU_CUDA_BLOCK) != h.checksum)
		return VGPU_PROTOCOL;
	m->call = h.op;
	m->id = h.request_id;
	m->data_len = h.payload_len - VGPU_CUDA_BLOCK;
	use = used(h.op, reply);
	if (reply) {
		m->status = (int32_t)get32(b);
		if (get32(b + 4) != 0)
			return VGPU_PROTOCOL;
		for (int i = 0; i < 5; i++)
			m->v[i] = get64(b + 8 + 8 * i);
	} else {
		for (int i = 0; i < 6; i++)
			m->v[i] = get64(b + 8 * i);
	}
	for (int i = 0; i < 6; i++)
		if (!(use >> i & 1) && m->v[i] != 0)
			return VGPU_PROTOCOL;
	if (!data_fits(m, reply))
		return VGPU_PROTOCOL;
	return VGPU_OK;
}

unsigned vgpu_cuda_format_bytes(uint32_t format)
{
	switch (format) {
	case 0x01: /* CU_AD_FORMAT_UNSIGNED_INT8 */
	case 0x08: /* SIGNED_INT8 */
		return 1;
	case 0x02: /* UNSIGNED_INT16 */
	case 0x09: /* SIGNED_INT16 */
	case 0x10: /* HALF */
		return 2;
	case 0x03: /* UNSIGNED_INT32 */
	case 0x0a: /* SIGNED_INT32 */
	case 0x20: /* FLOAT */
		return 4;
	default:
		return 0;
	}
}
