/* SPDX-License-Identifier: MIT */
/*
 * cuda_call.h - the calls of a guest's libcuda.so.1 to its VM's host side,
 * after DESCRIBE (cuda_desc.h): VGPU_MSG_CUDA messages whose op is the
 * call, answered by VGPU_MSG_CUDA_REPLY messages with the same op and
 * request id, in order, on the connection that OPEN made the process's
 * (docs/specs/cuda-remoting.md, "Calls").
 *
 * A call's payload is a 48-byte argument block, six u64 (a0..a5; what a
 * call does not use must be 0; a5 of every call after OPEN is the guest's
 * device, numbered as the description numbers them), then the call's
 * data (HTOD: the bytes to copy; LIB_LOAD: the image; GET_KERNEL: the
 * name; LAUNCH: the parameters). A reply's payload is a 48-byte result
 * block, an i32 CUresult, a u32 0, five u64 (r0..r4), then its data
 * (DTOH: the bytes; GET_KERNEL: the parameters' layout; only when the
 * status is 0). The header's checksum covers the header and the block,
 * not the data (as for requests: data is checked by its length alone).
 * Data is at most VGPU_CUDA_MAX_DATA per message: larger copies go in
 * pieces.
 *
 * Never: accept a message whose length is not exactly what its call and
 * block say, or a block with a field the call does not use set.
 */
#ifndef VGPU_CUDA_CALL_H
#define VGPU_CUDA_CALL_H

#include <stdint.h>

#include "cuda_desc.h"
#include "vgpu_protocol.h"

#define VGPU_CUDA_BLOCK 48
#define VGPU_CUDA_MAX_DATA ((uint32_t)64 << 20)
#define VGPU_CUDA_MSG_HEAD (VGPU_PROTO_HEADER_SIZE + VGPU_CUDA_BLOCK)
/* A kernel's name, with its NUL (GET_KERNEL's data). */
#define VGPU_CUDA_MAX_NAME 4096u
/* A kernel's parameters: at most this many, in at most this many bytes
 * (CUDA's own limit since 12.1: 32764 bytes). */
#define VGPU_CUDA_MAX_PARAMS 1024u
#define VGPU_CUDA_MAX_PARAM_BYTES 32764u
/* A launch's attributes (cuLaunchKernelEx), 16 bytes each on the wire. */
#define VGPU_CUDA_MAX_LAUNCH_ATTRS 16u
#define VGPU_CUDA_LAUNCH_ATTR_BYTES 16u
/* OCCUPANCY CLUSTERS' configuration before its attributes. */
#define VGPU_CUDA_LAUNCH_CONFIG_BYTES 32u

struct vgpu_cuda_msg {
	uint16_t call;        /* enum vgpu_cuda_call, VGPU_CUDA_OPEN and above */
	uint64_t id;          /* the request id */
	int32_t status;       /* a reply's CUresult */
	uint64_t v[6];        /* a call's a0..a5; a reply's r0..r4 (v[5] is 0) */
	uint32_t data_len;    /* bytes after the block */
};

/*
 * What a VM's worker tells its mediator, about once a second, on their
 * control socket (SOCK_SEQPACKET, one record a message; the two are
 * programs of one build on one host, so the record is the struct itself):
 * the figures of `vgpu-admin stats` that only the worker knows.
 */
#define VGPU_CUDA_REPORT_MAGIC 0x52577076u /* "vpWR" */
struct vgpu_cuda_report {
	uint32_t magic;
	uint32_t conns;           /* processes (connections) it serves */
	uint64_t held;            /* device memory they hold, bytes */
	uint64_t launches;        /* kernels launched since it started */
	uint64_t image_bytes;     /* of the module images they loaded */
	uint64_t window_bytes;    /* of their windows (page-locked host memory) */
	uint64_t streams, events; /* they hold */
};

/*
 * Two flags on the same socket. A worker tells its mediator when its
 * processes' GPU work starts (BUSY, on 1: a kernel launched since their
 * last synchronize) and ends (0: each has synchronized since its last
 * launch); the mediator tells a worker whether to hold its launches (HOLD,
 * on 1: a worker of a higher priority VM is busy; the worker holds each
 * launch at most its --hold-us).
 */
#define VGPU_CUDA_BUSY_MAGIC 0x59535542u /* "BUSY" */
#define VGPU_CUDA_HOLD_MAGIC 0x444c4f48u /* "HOLD" */
/*
 * And whether to pace its launches (PACE, on: for how many µs from now
 * each launch waits; 0: no longer): its VM is over its rate limit or its
 * pool over its cap, or it is ahead of its share (mediator/pace.h). The
 * worker goes on by itself at the deadline; the mediator renews it.
 */
#define VGPU_CUDA_PACE_MAGIC 0x45434150u /* "PACE" */
/*
 * And a worker's retirement (on: the CUresult): a kernel fault or the
 * like left its contexts unusable (CUDA's "sticky" errors: every later
 * call of the process gets the error again), so the mediator lets it go
 * and starts another for the VM's new processes. A connection handed to
 * a retired worker before the mediator heard comes back on the socket as
 * it went (its 32-byte header and its descriptor) and is handed on.
 */
#define VGPU_CUDA_RETIRE_MAGIC 0x45524954u /* "TIRE" */
struct vgpu_cuda_flag {
	uint32_t magic;
	uint32_t on;
};

/* Bytes per channel of CUDA array format @format (CUarray_format's
 * values) for the formats served (8, 16 and 32-bit integers, half,
 * float); 0 for any other. */
unsigned vgpu_cuda_format_bytes(uint32_t format);

/* Header and block of @m as a call (@reply false) or a reply, into @out. */
void vgpu_cuda_encode(const struct vgpu_cuda_msg *m, bool reply, uint8_t out[VGPU_CUDA_MSG_HEAD]);
/*
 * Check the header and block at @in (VGPU_CUDA_MSG_HEAD bytes) as a call
 * (@reply false) or a reply, and decode them into @m: VGPU_PROTOCOL for a
 * wrong type, call, checksum, unused field, or a data length other than
 * the call's (a call's: HTOD and LIB_LOAD 1..VGPU_CUDA_MAX_DATA,
 * GET_KERNEL and GLOBAL 1..VGPU_CUDA_MAX_NAME, LAUNCH
 * 0..VGPU_CUDA_MAX_PARAM_BYTES + the attributes', OCCUPANCY CLUSTERS the
 * configuration and its attributes, others 0; a reply's, with status 0: DTOH the a1 of its call, which the
 * caller checks, GET_KERNEL 8 * r1 with r1 at most VGPU_CUDA_MAX_PARAMS
 * and r2 at most VGPU_CUDA_MAX_PARAM_BYTES, others 0); VGPU_LIMIT for
 * more data than VGPU_CUDA_MAX_DATA.
 */
int vgpu_cuda_decode(const uint8_t in[VGPU_CUDA_MSG_HEAD], bool reply, struct vgpu_cuda_msg *m);

#endif
