/* SPDX-License-Identifier: MIT */
/*
 * vgpu_protocol.h - the one wire format between guests and the mediator.
 *
 * Every message is a 32-byte header followed by payload_len bytes of payload,
 * all little-endian (docs/protocol.md is the specification). A request's
 * payload is a fixed 24-byte parameter block and then the op's input arrays;
 * a response's payload is a fixed 24-byte status block and then the output
 * array. Sizes of the arrays follow from the parameters alone, so a decoder
 * checks every length before it touches any data.
 *
 * This file is shared by the guest library and the mediator; it never
 * allocates except where a function says so, and never trusts a byte it
 * decodes.
 */
#ifndef VGPU_PROTOCOL_H
#define VGPU_PROTOCOL_H

#ifdef __KERNEL__ /* the guest driver uses the ring's layout */
#include <linux/types.h>
#else
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#endif

#include "vgpu_error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VGPU_PROTO_MAGIC 0x55504756u /* "VGPU" as bytes on the wire */
#define VGPU_PROTO_VERSION 1
#define VGPU_PROTO_HEADER_SIZE 32
#define VGPU_PROTO_PARAMS_SIZE 24
#define VGPU_PROTO_STATUS_SIZE 24
/* Hard ceiling of any payload; deployments set lower limits. */
#define VGPU_PROTO_MAX_PAYLOAD (1u << 30)

enum vgpu_msg_type {
	VGPU_MSG_REQUEST = 1,
	VGPU_MSG_RESPONSE = 2,
	VGPU_MSG_ATTACH = 3,   /* ask for a shared-memory window (vgpu_ring.h); op 0 */
	VGPU_MSG_ATTACHED = 4, /* the mediator's answer to it; op 0 */
	VGPU_MSG_DEVICE = 5,   /* a vgpu-stub device introduces itself (vgpu_device.h); op 0 */
	VGPU_MSG_WINDOW = 6,   /* the device (un)registers a window in guest RAM; op 0 */
	VGPU_MSG_DEVICE_REPLY = 7, /* the mediator's answer to either; op 0 */
	VGPU_MSG_IDENTITY = 8, /* the mediator tells a device its VM's pool and priority; op 0 */
	VGPU_MSG_CUDA = 9,     /* a guest's libcuda.so.1 calls the host (cuda_desc.h, cuda_call.h); op: the call */
	VGPU_MSG_CUDA_REPLY = 10, /* the host's answer; op: the call */
};

/* The calls of VGPU_MSG_CUDA (the header's op). */
enum vgpu_cuda_call {
	VGPU_CUDA_DESCRIBE = 1, /* no payload; the reply: i32 status, then the description */
	/* The calls below carry an argument block (cuda_call.h). */
	VGPU_CUDA_OPEN = 2,     /* this connection carries the process's calls from now on */
	VGPU_CUDA_MEM_ALLOC = 3, /* a0 bytes, a1 0: device memory, CU_MEM_ATTACH_GLOBAL
				  * or _HOST: managed memory so attached; r0 the
				  * device pointer */
	VGPU_CUDA_MEM_FREE = 4, /* a0 the device pointer */
	VGPU_CUDA_MEM_INFO = 5, /* r0 free, r1 total (the VM's quota, not the card) */
	VGPU_CUDA_HTOD = 6,     /* a0 destination, a1 stream (0: the default stream);
				 * the bytes follow the block */
	VGPU_CUDA_DTOH = 7,     /* a0 source, a1 bytes, a2 stream; the bytes follow
				 * the reply's block */
	VGPU_CUDA_SYNC = 8,     /* the context's work done (cuCtxSynchronize) */
	VGPU_CUDA_LIB_LOAD = 9, /* the module image follows; r0 the library's handle */
	VGPU_CUDA_LIB_UNLOAD = 10, /* a0 the library's handle */
	VGPU_CUDA_GET_KERNEL = 11, /* a0 library; the name (NUL-terminated) follows;
				    * r0 the kernel's handle, r1 its parameter count n,
				    * r2 its parameter bytes; the reply's data: n pairs
				    * of u32 (offset, size) */
	VGPU_CUDA_LAUNCH = 12,  /* a0 kernel, a1 grid x | y << 32, a2 grid z | block x << 32,
				 * a3 block y | z << 32, a4 dynamic shared memory bytes |
				 * stream << 32; the parameter bytes follow (the
				 * kernel's r2 of them), then at most
				 * VGPU_CUDA_MAX_LAUNCH_ATTRS launch attributes of
				 * 16 bytes (cuLaunchKernelEx: u32 id, u32 values[3]) */
	/* Streams and events: handles the host gave (0 is the default stream). */
	VGPU_CUDA_STREAM_CREATE = 13,  /* a0 flags, a1 priority (i32 in the low half); r0 stream */
	VGPU_CUDA_STREAM_DESTROY = 14, /* a0 stream */
	VGPU_CUDA_STREAM_SYNC = 15,    /* a0 stream */
	VGPU_CUDA_STREAM_QUERY = 16,   /* a0 stream; CUDA_ERROR_NOT_READY while it has work */
	VGPU_CUDA_STREAM_WAIT = 17,    /* a0 stream, a1 event: the stream waits for the event */
	VGPU_CUDA_EVENT_CREATE = 18,   /* a0 flags; r0 event */
	VGPU_CUDA_EVENT_DESTROY = 19,  /* a0 event */
	VGPU_CUDA_EVENT_RECORD = 20,   /* a0 event, a1 stream */
	VGPU_CUDA_EVENT_SYNC = 21,     /* a0 event */
	VGPU_CUDA_EVENT_QUERY = 22,    /* a0 event; CUDA_ERROR_NOT_READY until it happened */
	VGPU_CUDA_EVENT_ELAPSED = 23,  /* a0 start, a1 end; r0 milliseconds, a float's bits */
	VGPU_CUDA_MEMSET = 24,  /* a0 destination, a1 value, a2 elements, a3 element
				 * bytes (1, 2 or 4), a4 stream */
	VGPU_CUDA_DTOD = 25,    /* a0 destination, a1 source, a2 bytes, a3 stream */
	VGPU_CUDA_PRIORITY_RANGE = 26, /* r0 least, r1 greatest stream priority (i32s
					* in the low halves) */
	VGPU_CUDA_FUNC_ATTR = 27, /* a0 kernel, a1 CUfunction_attribute, a2 1 to set it
				   * to a3 (an i32 in the low half), 0 to get it: r0 */
	VGPU_CUDA_OCCUPANCY = 28, /* a0 kernel, a1 what (enum vgpu_cuda_occupancy), a2,
				   * a3, a4 its arguments (there); r0 its answer;
				   * CLUSTERS' launch configuration follows */
	VGPU_CUDA_GLOBAL = 29,    /* a0 library; the name (NUL-terminated) follows;
				   * r0 the variable's device address, r1 its bytes */
	VGPU_CUDA_CTX_INFO = 30,  /* a0 what: 0 the context's API version, 1 the limit
				   * a1 (CUlimit), 2 set limit a1 to a2; r0 */
	/* The process's window: host memory it shares with the worker (a
	 * sealed memfd), which copies move through without carrying bytes. */
	VGPU_CUDA_WINDOW = 31,    /* a0 its bytes, a1 its call ring's (cuda_ring.h; 0:
				   * none), a2 its address in the process (0: not
				   * said); the memfd comes with the message
				   * (SCM_RIGHTS); r0 the device address of its first
				   * byte for mapped memory (0: none) */
	VGPU_CUDA_HTOD_WIN = 32,  /* a0 destination, a1 offset in the window, a2 bytes,
				   * a3 stream, a4 1: asynchronous, 0: done on reply */
	VGPU_CUDA_DTOH_WIN = 33,  /* a0 source, a1 offset in the window, a2 bytes,
				   * a3 stream, a4 as HTOD_WIN's */
	VGPU_CUDA_KICK = 34,      /* the call ring has entries (a sleeping worker's
				   * wake-up): no reply */
	/* CUDA graphs made by stream capture: handles the host gave, from 1. */
	VGPU_CUDA_CAPTURE_BEGIN = 35, /* a0 stream, a1 CUstreamCaptureMode; r0 the
				       * capture's id */
	VGPU_CUDA_CAPTURE_END = 36,   /* a0 stream; r0 the graph captured */
	VGPU_CUDA_GRAPH_INSTANTIATE = 37, /* a0 graph, a1 flags; r0 the executable graph */
	VGPU_CUDA_GRAPH_LAUNCH = 38,  /* a0 executable graph, a1 stream, a2 1: upload
				       * only (cuGraphUpload), 0: launch */
	VGPU_CUDA_GRAPH_DESTROY = 39, /* a0 graph (a1 0) or executable graph (a1 1) */
	/* Stream-ordered allocation: the process's memory pools on the host,
	 * handles from 1; pool 0 is the process's default pool of device a5. */
	VGPU_CUDA_MEM_ALLOC_ASYNC = 40, /* a0 bytes, a1 stream, a2 pool; r0 the pointer */
	VGPU_CUDA_MEM_FREE_ASYNC = 41,  /* a0 pointer, a1 stream */
	VGPU_CUDA_POOL = 42,      /* a0 what (enum vgpu_cuda_pool_op), a1 pool, a2, a3
				   * its arguments (there); r0 its answer */
	/* Virtual memory management (cuMemCreate, cuMemMap): physical
	 * allocations (handles from 1) mapped into address ranges the
	 * process reserved, on device a5. */
	VGPU_CUDA_VMM = 43,       /* a0 what (enum vgpu_cuda_vmm_op), a1..a4 its
				   * arguments (there); r0..r2 its answer */
	/* CUDA arrays (handles from 1) and the texture and surface objects
	 * made of them or of device memory (the driver's own values: kernels
	 * read them), on device a5. */
	VGPU_CUDA_ARRAY = 44,     /* a0 0: create, a1 width, a2 height, a3 depth
				   * (elements), a4 CUarray_format | channels << 16 |
				   * flags << 32; r0 the array, r1 the bytes it
				   * counts; a0 1: destroy array a1 */
	VGPU_CUDA_ARRAY_COPY = 45, /* a0 stream, a1 enum vgpu_cuda_array_dir; struct
				    * vgpu_cuda_array_copy follows */
	VGPU_CUDA_TEX = 46,       /* a0 enum vgpu_cuda_tex_op, a1 the object to
				   * destroy, or for a texture 1 when a view
				   * follows; a create's CUDA_RESOURCE_DESC
				   * (144 bytes, its array a handle here), then a
				   * texture's CUDA_TEXTURE_DESC (104) and view
				   * (112) follow; r0 the object */
};
#define VGPU_CUDA_CALL_MAX VGPU_CUDA_TEX

/* VGPU_CUDA_ARRAY_COPY: a box of an array to or from device memory (rows
 * of pitch bytes, slice_rows of them a slice), or to another array. */
enum vgpu_cuda_array_dir {
	VGPU_CUDA_TO_ARRAY = 0,    /* device memory to the array */
	VGPU_CUDA_FROM_ARRAY = 1,  /* the array to device memory */
	VGPU_CUDA_ARRAY_TO_ARRAY = 2, /* array to array2 */
};
struct vgpu_cuda_array_copy {
	uint64_t array, array2;    /* handles; array2 for ARRAY_TO_ARRAY only */
	uint64_t dptr, pitch, slice_rows; /* the device memory's side */
	uint64_t x, y, z;          /* in array (x in bytes) */
	uint64_t x2, y2, z2;       /* in array2 */
	uint64_t width, height, depth; /* the box: bytes, rows, slices */
};
#define VGPU_CUDA_ARRAY_COPY_BYTES 112u
_Static_assert(sizeof(struct vgpu_cuda_array_copy) == VGPU_CUDA_ARRAY_COPY_BYTES, "wire size");

/* VGPU_CUDA_TEX's operations. */
enum vgpu_cuda_tex_op {
	VGPU_CUDA_TEX_CREATE = 0,
	VGPU_CUDA_TEX_DESTROY = 1,
	VGPU_CUDA_SURF_CREATE = 2,
	VGPU_CUDA_SURF_DESTROY = 3,
};
#define VGPU_CUDA_RES_DESC_BYTES 144u
#define VGPU_CUDA_TEX_DESC_BYTES 104u
#define VGPU_CUDA_VIEW_DESC_BYTES 112u

/* VGPU_CUDA_POOL's operations, as the driver's cuMemPool* functions. */
enum vgpu_cuda_pool_op {
	VGPU_CUDA_POOL_CREATE = 0,  /* a1 0, a2 the pool's maximum size (0: the
				     * driver's default); r0 the new pool */
	VGPU_CUDA_POOL_DESTROY = 1, /* a1 the pool (not 0) */
	VGPU_CUDA_POOL_SET = 2,     /* a1 pool, a2 CUmemPool_attribute, a3 its value */
	VGPU_CUDA_POOL_GET = 3,     /* a1 pool, a2 CUmemPool_attribute; r0 its value */
	VGPU_CUDA_POOL_TRIM = 4,    /* a1 pool, a2 bytes to keep */
};

/* VGPU_CUDA_VMM's operations, as the driver's cuMem* functions. */
enum vgpu_cuda_vmm_op {
	VGPU_CUDA_VMM_CREATE = 0,   /* a1 bytes, a2 CUmemAllocationCompType; r0 the
				     * allocation's handle */
	VGPU_CUDA_VMM_RELEASE = 1,  /* a1 handle */
	VGPU_CUDA_VMM_RESERVE = 2,  /* a1 bytes, a2 alignment, a3 address asked for
				     * (0: any); r0 the range's address */
	VGPU_CUDA_VMM_FREE = 3,     /* a1 address, a2 bytes: a whole range */
	VGPU_CUDA_VMM_MAP = 4,      /* a1 address, a2 bytes, a3 offset, a4 handle */
	VGPU_CUDA_VMM_UNMAP = 5,    /* a1 address, a2 bytes */
	VGPU_CUDA_VMM_ACCESS = 6,   /* a1 address, a2 bytes, a3 CUmemAccess_flags for
				     * device a5 */
	VGPU_CUDA_VMM_RETAIN = 7,   /* a1 an address mapped; r0 its allocation's handle */
	VGPU_CUDA_VMM_PROPS = 8,    /* a1 handle; r0 its device, r1 its bytes, r2 its
				     * compression (what the driver granted) */
	VGPU_CUDA_VMM_GRANULARITY = 9, /* a1 CUmemAllocationGranularity_flags, a2
					* compression; r0 bytes */
};

/* VGPU_CUDA_OCCUPANCY's questions, as the driver's functions ask them. */
enum vgpu_cuda_occupancy {
	VGPU_CUDA_OCC_BLOCKS = 0,   /* a2 block size, a3 dynamic shared bytes, a4 flags;
				     * r0 active blocks per multiprocessor */
	VGPU_CUDA_OCC_SMEM = 1,     /* a2 blocks per multiprocessor, a3 block size;
				     * r0 dynamic shared bytes available per block */
	VGPU_CUDA_OCC_CLUSTERS = 2, /* the configuration follows: u32 grid x, y, z,
				     * block x, y, z, dynamic shared bytes, 0, then
				     * launch attributes as LAUNCH's; r0 clusters */
};

enum vgpu_op {
	VGPU_OP_VECTOR_ADD = 1, /* c[i] = a[i] + b[i]; inputs a, b; output c */
	VGPU_OP_SAXPY = 2,      /* y[i] = alpha * x[i] + y[i]; inputs x, y; output y */
	VGPU_OP_SGEMM = 3,      /* C = alpha * A(m x k) B(k x n) + beta * C, row-major */
	VGPU_OP_REDUCE_SUM = 4, /* one float: the sum of x[0..n) */
};
#define VGPU_OP_COUNT 4

/* A decoded header, in host order. */
struct vgpu_msg_header {
	uint16_t type;         /* enum vgpu_msg_type */
	uint16_t op;           /* enum vgpu_op */
	uint32_t flags;        /* none defined yet: must be 0 */
	uint64_t request_id;   /* chosen by the client, echoed in the response */
	uint32_t payload_len;  /* bytes after the header */
	uint32_t checksum;     /* CRC32C of header (checksum = 0) and the fixed block */
};

/* A request's parameter block. Fields an op does not use must be 0. */
struct vgpu_op_params {
	uint32_t vm_id;  /* 0, or the sender's vm_id: checked against the channel */
	uint32_t m;      /* sgemm: rows of A and C */
	uint32_t n;      /* vector length; sgemm: columns of B and C */
	uint32_t k;      /* sgemm: columns of A, rows of B */
	float alpha;     /* saxpy's a; sgemm's alpha */
	float beta;      /* sgemm's beta */
};

/* What a decoder accepts; every request is checked against these. */
struct vgpu_proto_limits {
	uint32_t max_payload;  /* bytes, <= VGPU_PROTO_MAX_PAYLOAD */
	uint32_t max_elems;    /* floats in any one array */
	uint32_t max_dim;      /* sgemm m, n and k each */
};
/* Defaults: 512 MiB payloads, 64 Mi floats per array, sgemm up to 8192. */
extern const struct vgpu_proto_limits vgpu_proto_default_limits;

/* A request checked by vgpu_proto_parse_request(): pointers into its payload. */
struct vgpu_request_view {
	enum vgpu_op op;
	struct vgpu_op_params params;
	const float *in[3];     /* the op's inputs, in order; unused ones NULL */
	uint64_t in_count[3];   /* floats in each input */
	uint64_t out_count;     /* floats in the output */
};

/* A response checked by vgpu_proto_parse_response(). */
struct vgpu_response_view {
	int32_t status;         /* VGPU_OK or a negative vgpu_error code */
	uint64_t queue_ns;      /* time spent queued in the mediator */
	uint64_t exec_ns;       /* time spent executing */
	const float *out;       /* NULL unless status is VGPU_OK */
	uint64_t out_count;
};

/* "vector_add", ...; NULL for an unknown op. */
const char *vgpu_op_name(int op);
/* The op named @name ("vector_add" or "vector-add", ...), or 0. */
int vgpu_op_from_name(const char *name);

/*
 * Input and output sizes of @op with @params, in floats, checked against
 * @limits: VGPU_INVALID_PARAM for an unknown op, a zero size or a field the
 * op does not use being non-zero; VGPU_LIMIT past a limit.
 */
int vgpu_proto_op_shape(int op, const struct vgpu_op_params *params,
			const struct vgpu_proto_limits *limits, int *ret_n_inputs,
			uint64_t ret_in_count[3], uint64_t *ret_out_count);

/* The input that @op's output may update in place (saxpy's y: 1, sgemm's
 * C: 2), or -1: the only input an output may share memory with. */
static inline int vgpu_proto_inplace_input(int op)
{
	return op == VGPU_OP_SAXPY ? 1 : op == VGPU_OP_SGEMM ? 2 : -1;
}

/* Write @h as the 32 wire bytes of a header (magic, version, checksum = @h's). */
void vgpu_proto_encode_header(const struct vgpu_msg_header *h, uint8_t out[VGPU_PROTO_HEADER_SIZE]);

/*
 * Decode and check the 32 bytes at @in: magic, version, type, reserved bytes,
 * flags and payload_len <= @limits->max_payload. The checksum is checked by
 * the parse functions, which see the fixed block too. VGPU_PROTOCOL on any
 * malformed field, VGPU_LIMIT for an oversized payload.
 */
int vgpu_proto_decode_header(const uint8_t in[VGPU_PROTO_HEADER_SIZE],
			     const struct vgpu_proto_limits *limits, struct vgpu_msg_header *ret);

/* The checksum of a message whose header bytes (checksum field ignored) are
 * @header and whose fixed block is @block (@block_len bytes, may be 0). */
uint32_t vgpu_proto_checksum(const uint8_t header[VGPU_PROTO_HEADER_SIZE], const uint8_t *block,
			     size_t block_len);
/* CRC32C of @len bytes at @p, continuing @crc (0 to start): with the
 * CPU's instruction when @hardware and the CPU has one, else a table
 * (the same value either way; tests compare them). */
uint32_t vgpu_proto_crc32c(uint32_t crc, const uint8_t *p, size_t len, bool hardware);

/* The 24 wire bytes of a parameter block, and back (no checks: see
 * vgpu_proto_op_shape()). */
void vgpu_proto_encode_params(const struct vgpu_op_params *p, uint8_t out[VGPU_PROTO_PARAMS_SIZE]);
void vgpu_proto_decode_params(const uint8_t in[VGPU_PROTO_PARAMS_SIZE], struct vgpu_op_params *ret);
/* The 24-byte status block that opens a response's payload and ends a
 * ring completion: status, a reserved word 0, queue and execution ns.
 * decode: VGPU_PROTOCOL for a positive status or a non-zero reserved word;
 * the outputs are written only on VGPU_OK. */
void vgpu_proto_encode_status(int32_t status, uint64_t queue_ns, uint64_t exec_ns,
			      uint8_t out[VGPU_PROTO_STATUS_SIZE]);
int vgpu_proto_decode_status(const uint8_t in[VGPU_PROTO_STATUS_SIZE], int32_t *ret_status,
			     uint64_t *ret_queue_ns, uint64_t *ret_exec_ns);

/*
 * Build a whole request in one malloc()ed buffer: header, parameter block
 * and the inputs @in[0..n_inputs) (sizes from vgpu_proto_op_shape()).
 * *ret_msg is freed by the caller with free().
 */
int vgpu_proto_build_request(uint64_t request_id, int op, const struct vgpu_op_params *params,
			     const float *const in[3], const struct vgpu_proto_limits *limits,
			     uint8_t **ret_msg, size_t *ret_len);

/*
 * Check a request's head before any more of it is read or allocated: the
 * header, decoded in @h, and its parameter block @params (the first
 * VGPU_PROTO_PARAMS_SIZE bytes of the payload): checksum, parameters
 * against @limits, and that payload_len is exactly what they imply. Fills
 * @ret's op, params and counts; its input pointers stay NULL (see
 * vgpu_proto_request_inputs()). Errors as vgpu_proto_parse_request().
 */
int vgpu_proto_check_request_head(const uint8_t raw_header[VGPU_PROTO_HEADER_SIZE],
				  const struct vgpu_msg_header *h,
				  const uint8_t params[VGPU_PROTO_PARAMS_SIZE],
				  const struct vgpu_proto_limits *limits,
				  struct vgpu_request_view *ret);
/* Point @v's inputs into @payload (the whole payload, parameter block
 * first), whose size vgpu_proto_check_request_head() checked. */
void vgpu_proto_request_inputs(struct vgpu_request_view *v, const uint8_t *payload);

/*
 * Check a request: @raw_header is the header's wire bytes (for the
 * checksum), @h its decoded form and @payload its payload_len bytes. Fills
 * @ret with pointers into @payload, which must stay alive and be 4-byte
 * aligned. VGPU_PROTOCOL for a bad checksum, type or size mismatch;
 * vgpu_proto_op_shape()'s errors for bad parameters.
 */
int vgpu_proto_parse_request(const uint8_t raw_header[VGPU_PROTO_HEADER_SIZE],
			     const struct vgpu_msg_header *h, const uint8_t *payload,
			     const struct vgpu_proto_limits *limits, struct vgpu_request_view *ret);

/*
 * Write a response's header and status block into @out (32 + 24 bytes); the
 * @out_count floats of output follow it on the wire (0 unless @status is
 * VGPU_OK).
 */
#define VGPU_PROTO_RESPONSE_PREFIX (VGPU_PROTO_HEADER_SIZE + VGPU_PROTO_STATUS_SIZE)
void vgpu_proto_encode_response(uint64_t request_id, int op, int32_t status, uint64_t queue_ns,
				uint64_t exec_ns, uint64_t out_count,
				uint8_t out[VGPU_PROTO_RESPONSE_PREFIX]);

/* Check a response like vgpu_proto_parse_request() checks a request. */
int vgpu_proto_parse_response(const uint8_t raw_header[VGPU_PROTO_HEADER_SIZE],
			      const struct vgpu_msg_header *h, const uint8_t *payload,
			      struct vgpu_response_view *ret);

#ifdef __cplusplus
}
#endif

#endif
