/* SPDX-License-Identifier: MIT */
/*
 * vgpu_ring.h - the shared-memory ring: a window that one client and the
 * mediator both map, with a submission ring, a completion ring and a data
 * area (docs/protocol.md, "Shared-memory ring", is the specification).
 *
 * A client asks for a window over the VM's socket with an attach message
 * (type VGPU_MSG_ATTACH); the mediator creates the window (a sealed memfd)
 * a doorbell eventfd and a datagram socket pair for completion signals,
 * and passes the memfd, the doorbell and the client's end of the pair
 * back with the reply (VGPU_MSG_ATTACHED).
 * From then on a request is a 64-byte descriptor naming offsets in the
 * data area, where its inputs already lie and its output is written: no
 * byte of data is copied, and the mediator pins the window for the GPU.
 *
 * Like vgpu_protocol.h, this file is shared by libvgpu and the mediator:
 * it decodes from private copies only (a descriptor is copied out of the
 * shared window before it is looked at) and checks every offset against
 * the window before anything is touched.
 */
#ifndef VGPU_RING_H
#define VGPU_RING_H

#include "vgpu_protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VGPU_RING_MAGIC 0x4e524756u  /* "VGRN" as bytes in the window */
#define VGPU_RING_VERSION 1
#define VGPU_RING_ENTRIES 1024u      /* both rings; a power of two */
#define VGPU_RING_DESC_SIZE 64
#define VGPU_RING_CQE_SIZE 32
#define VGPU_RING_PAGE 4096u

/* The window's layout: the control page, then the rings, then data. */
#define VGPU_RING_SQ_OFFSET VGPU_RING_PAGE
#define VGPU_RING_CQ_OFFSET (VGPU_RING_SQ_OFFSET + VGPU_RING_ENTRIES * VGPU_RING_DESC_SIZE)
#define VGPU_RING_DATA_OFFSET (VGPU_RING_CQ_OFFSET + VGPU_RING_ENTRIES * VGPU_RING_CQE_SIZE)
/* Data area sizes a window may have: 1 MiB to 2 GiB (offsets are 32-bit). */
#define VGPU_RING_MIN_DATA ((uint64_t)1 << 20)
#define VGPU_RING_MAX_DATA ((uint64_t)2 << 30)

/* Offsets of the control page's fields. The four indexes are free-running
 * 32-bit counters, each in its own cache line; a ring holds
 * tail - head entries (mod 2^32), never more than VGPU_RING_ENTRIES. */
#define VGPU_RING_OFF_MAGIC 0       /* u32, written by the mediator */
#define VGPU_RING_OFF_VERSION 4     /* u32 */
#define VGPU_RING_OFF_ENTRIES 8     /* u32 */
#define VGPU_RING_OFF_WINDOW 16     /* u64: window bytes */
#define VGPU_RING_OFF_SQ_TAIL 64    /* u32: client publishes descriptors */
#define VGPU_RING_OFF_SQ_HEAD 128   /* u32: mediator has taken them */
#define VGPU_RING_OFF_CQ_TAIL 192   /* u32: mediator publishes completions */
#define VGPU_RING_OFF_CQ_HEAD 256   /* u32: client has taken them */
#define VGPU_RING_OFF_SQ_FLAGS 320  /* u32, mediator: VGPU_RING_SQ_WATCHED or 0 */
#define VGPU_RING_OFF_CQ_FLAGS 384  /* u32, client: VGPU_RING_CQ_POLLING or 0 */

/*
 * Doorbell suppression (as virtio's VRING_USED_F_NO_NOTIFY): while the
 * mediator's loop polls, it watches the submission tail itself and says
 * so in SQ_FLAGS, and a client may then publish without writing the
 * doorbell (on a device, one MMIO write and a trap to the device model
 * less per request). A client stores its tail, then reads the flag, both
 * sequentially consistent (vgpu_ring_publish(); or with a full fence
 * between); the mediator, before it stops watching, clears the flag,
 * then reads the tail once more, the same way. So either the client sees
 * the flag clear and rings, or the mediator sees the tail. A client that ignores the flag and always
 * rings is served as before (version 1 clients); the flag only ever
 * spares a doorbell, and writing it does a client no good: it is the
 * client's own doorbell that it then skips. The doorbell after advancing
 * cq_head (to let answers held back for room out) is never skipped.
 */
#define VGPU_RING_SQ_WATCHED 1u
/*
 * And the other way (virtio's VRING_AVAIL_F_NO_INTERRUPT): a client that
 * spins on the completion tail says so in CQ_FLAGS, and the mediator then
 * posts completions without the notify datagram (on a device, without an
 * MSI-X interrupt). Whoever is about to sleep for completions clears the
 * flag, then reads the completion tail once more; the mediator stores the
 * tail, then reads the flag (each pair sequentially consistent, as
 * above). A client that sets it and sleeps only misses its own signals.
 */
#define VGPU_RING_CQ_POLLING 1u

#ifndef __KERNEL__
/* Client side: publish descriptors up to @tail (written before), and say
 * whether to write the doorbell. */
static inline int vgpu_ring_publish(uint8_t *win, uint32_t tail)
{
	__atomic_store_n((uint32_t *)(void *)(win + VGPU_RING_OFF_SQ_TAIL), tail, __ATOMIC_SEQ_CST);
	return !(__atomic_load_n((const uint32_t *)(const void *)(win + VGPU_RING_OFF_SQ_FLAGS),
				 __ATOMIC_SEQ_CST) & VGPU_RING_SQ_WATCHED);
}
#endif

/* One request (64 bytes in the submission ring). */
struct vgpu_ring_desc {
	uint64_t request_id;            /* the client's; echoed in the completion */
	uint16_t op;                    /* enum vgpu_op */
	uint16_t flags;                 /* 0 */
	struct vgpu_op_params params;   /* as in a request's parameter block */
	uint32_t in_off[3];             /* window offsets of the op's inputs; unused 0 */
	uint32_t out_off;               /* window offset of its output */
};

/* One answer (32 bytes in the completion ring). */
struct vgpu_ring_cqe {
	uint64_t request_id;
	int32_t status;                 /* VGPU_OK or a negative vgpu_error code */
	uint64_t queue_ns, exec_ns;
};

/* A descriptor checked against a window: sizes and offsets, all in range. */
struct vgpu_ring_view {
	uint64_t request_id;
	enum vgpu_op op;
	struct vgpu_op_params params;
	int n_inputs;
	uint64_t in_off[3], in_count[3]; /* floats */
	uint64_t out_off, out_count;
};

void vgpu_ring_encode_desc(const struct vgpu_ring_desc *d, uint8_t out[VGPU_RING_DESC_SIZE]);
/* Fills all of @ret; VGPU_PROTOCOL (with @ret filled, so that the answer
 * can name the request) for non-zero reserved bytes. */
int vgpu_ring_decode_desc(const uint8_t in[VGPU_RING_DESC_SIZE], struct vgpu_ring_desc *ret);
void vgpu_ring_encode_cqe(const struct vgpu_ring_cqe *e, uint8_t out[VGPU_RING_CQE_SIZE]);
/* VGPU_PROTOCOL for a non-zero reserved field or a positive status. */
int vgpu_ring_decode_cqe(const uint8_t in[VGPU_RING_CQE_SIZE], struct vgpu_ring_cqe *ret);

/*
 * Check @d against @limits and a window of @window bytes: the op's shape
 * (vgpu_proto_op_shape()'s errors), flags 0 (VGPU_PROTOCOL), each array
 * 4-byte aligned and wholly inside the data area [VGPU_RING_DATA_OFFSET,
 * @window), unused offsets 0, and the output either disjoint from every
 * input or exactly the input of the same role (saxpy's y, sgemm's C):
 * VGPU_INVALID_PARAM otherwise. @ret is written only on VGPU_OK.
 */
int vgpu_ring_check_desc(const struct vgpu_ring_desc *d, const struct vgpu_proto_limits *limits,
			 uint64_t window, struct vgpu_ring_view *ret);

/*
 * Streams (docs/specs/vgpu-stub-1.1.md, "Streams"): byte streams through a
 * window, for what is not one of the four ops: a guest's libcuda.so.1
 * speaks its calls (cuda_call.h) over one, exactly as over a socket, and
 * the mediator carries the bytes between the window and the VM's CUDA
 * worker. A descriptor with op VGPU_RING_OP_STREAM opens or closes one;
 * its completion says whether that was done.
 *
 * A stream is a control page and two byte rings of the same size (a power
 * of two) right after it, in the data area: TX (guest to host) at
 * ctl + VGPU_STREAM_CTL, RX (host to guest) after TX. Positions are bytes
 * since the stream opened (u64), the ring offset their value modulo the
 * size; each side writes only its own fields and the other side checks
 * them (a tail at most one ring ahead of its head).
 */
#define VGPU_RING_OP_STREAM 0x100
#define VGPU_STREAM_OPEN 1           /* desc flags */
#define VGPU_STREAM_CLOSE 2
#define VGPU_STREAMS_MAX 8           /* streams open at once per window */
#define VGPU_STREAM_CTL 4096u
#define VGPU_STREAM_RING_MIN ((uint64_t)4 << 10)
#define VGPU_STREAM_RING_MAX ((uint64_t)16 << 20)
/* The control page's fields, each in its own cache line. */
#define VGPU_STREAM_OFF_TX_TAIL 0    /* u64, guest: bytes written to TX */
#define VGPU_STREAM_OFF_TX_HEAD 64   /* u64, mediator: bytes taken from TX */
#define VGPU_STREAM_OFF_RX_TAIL 128  /* u64, mediator: bytes written to RX */
#define VGPU_STREAM_OFF_RX_HEAD 192  /* u64, guest: bytes taken from RX */
#define VGPU_STREAM_OFF_WAITING 256  /* u32, guest: 1 while it sleeps for bytes or room
				      * (the mediator then signals when it moves them) */
#define VGPU_STREAM_OFF_STALLED 320  /* u32, mediator: 1 while RX is full and bytes wait
				      * (the guest then rings the doorbell when it reads) */
#define VGPU_STREAM_OFF_CLOSED 384   /* u32, mediator: the host's end closed: no bytes
				      * come after RX's tail */

/* A stream descriptor checked against a window of @window bytes. */
struct vgpu_stream_view {
	uint32_t index;               /* 0 .. VGPU_STREAMS_MAX - 1: the guest's name for it */
	bool open;                    /* else close */
	uint64_t ctl_off, ring_bytes; /* open: the control page; each ring's size */
};

/*
 * Check a descriptor whose op is VGPU_RING_OP_STREAM: flags OPEN or CLOSE,
 * params.m the index (below VGPU_STREAMS_MAX); OPEN: in_off[0] the
 * control page (4 KiB aligned, in the data area), params.n each ring's
 * bytes (a power of two, VGPU_STREAM_RING_MIN to _MAX), the page and both
 * rings within @window; every other field 0. VGPU_PROTOCOL for a flag or
 * field that should be 0, VGPU_INVALID_PARAM for the rest; @ret written
 * only on VGPU_OK.
 */
int vgpu_ring_check_stream(const struct vgpu_ring_desc *d, uint64_t window,
			   struct vgpu_stream_view *ret);

/* The attach handshake over the socket (docs/protocol.md). Its block is 24
 * bytes: attach carries the data bytes wanted (u64) and 16 zero bytes; the
 * reply carries status (i32), entries (u32), window bytes (u64) and 8 zero
 * bytes, with the window's memfd, the doorbell eventfd and the client's
 * end of the notify socket pair as SCM_RIGHTS. */
#define VGPU_RING_ATTACH_MSG (VGPU_PROTO_HEADER_SIZE + VGPU_PROTO_PARAMS_SIZE)
void vgpu_ring_encode_attach(uint64_t data_bytes, uint8_t out[VGPU_RING_ATTACH_MSG]);
/* The data bytes a checked attach message asks for; VGPU_PROTOCOL when
 * @h / @block are not one. */
int vgpu_ring_parse_attach(const uint8_t raw_header[VGPU_PROTO_HEADER_SIZE],
			   const struct vgpu_msg_header *h, const uint8_t *block,
			   uint64_t *ret_data_bytes);
void vgpu_ring_encode_attached(int32_t status, uint64_t window, uint8_t out[VGPU_RING_ATTACH_MSG]);
int vgpu_ring_parse_attached(const uint8_t raw_header[VGPU_PROTO_HEADER_SIZE],
			     const struct vgpu_msg_header *h, const uint8_t *block,
			     int32_t *ret_status, uint64_t *ret_window);

#ifdef __cplusplus
}
#endif

#endif
