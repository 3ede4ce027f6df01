/* SPDX-License-Identifier: MIT */
/*
 * vgpu_device.h - the messages between a VM's vgpu-stub device (in QEMU)
 * and the mediator, on the VM's socket (docs/specs/vgpu-stub-1.1.md).
 *
 * The device connects at realize and sends DEVICE first: how the mediator
 * can reach the guest's RAM (under KVM the guest RAM's memfds and where
 * each lies in guest-physical space; under Xen the domain id), with the
 * doorbell eventfd (the guest's doorbell writes) and the completion
 * socket (the mediator's end of an AF_UNIX datagram pair; QEMU turns its
 * datagrams into an interrupt) as SCM_RIGHTS. Then WINDOW
 * messages register the ring window the guest driver allocated in its
 * RAM (its extents, guest-physical, in the window's order) or unregister
 * it. The mediator answers each with DEVICE_REPLY. Unasked, the mediator
 * sends IDENTITY once the device is accepted and again whenever the VM's
 * pool or priority changes in the registry: the device shows them in its
 * registers, so they follow a live change without a VM restart (the
 * vm_id stays what the device was started with). The device answers
 * nothing to it.
 *
 * Framing is the protocol's (vgpu_protocol.h): a 32-byte header (op 0,
 * request_id a sequence number the reply echoes) and a 24-byte block,
 * then a table; the checksum covers the header and the whole payload.
 * Like the rest of the protocol, decoding never trusts a byte: every
 * count, alignment and sum is checked before anything is used.
 */
#ifndef VGPU_DEVICE_H
#define VGPU_DEVICE_H

#include <stdint.h>

#include "vgpu_protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The device messages: 1.1, completions on a socket (2), IDENTITY (3). A
 * device of another version would not understand what it is sent:
 * refused. */
#define VGPU_DEV_VERSION 0x00010003u
#define VGPU_DEV_BLOCK 24            /* the fixed block of each message */
#define VGPU_DEV_REGION_SIZE 24      /* a DEVICE table entry */
#define VGPU_DEV_EXTENT_SIZE 16      /* a WINDOW table entry */
#define VGPU_DEV_MAX_REGIONS 8       /* guest RAM regions (KVM) */
#define VGPU_DEV_MAX_EXTENTS 256     /* one 4 KiB page of extents */
/* The largest payload of any device message. */
#define VGPU_DEV_MAX_PAYLOAD (VGPU_DEV_BLOCK + VGPU_DEV_MAX_EXTENTS * VGPU_DEV_EXTENT_SIZE)
#define VGPU_DEV_REPLY_MSG (VGPU_PROTO_HEADER_SIZE + VGPU_DEV_BLOCK)
/* As long as a reply: every message to a device is this size. */
#define VGPU_DEV_IDENTITY_MSG (VGPU_PROTO_HEADER_SIZE + VGPU_DEV_BLOCK)
#define VGPU_DEV_MAX_PRIORITY 2      /* priorities are 0 low, 1 medium, 2 high */

enum vgpu_dev_memory {
	VGPU_DEV_MEM_MEMFD = 1,      /* KVM: guest RAM in memfds, sent as SCM_RIGHTS */
	VGPU_DEV_MEM_XEN = 2,        /* Xen: the mediator maps the domain's frames */
};

enum vgpu_dev_action {
	VGPU_DEV_REGISTER = 1,
	VGPU_DEV_UNREGISTER = 2,
};

/* A guest RAM region (KVM): guest-physical [gpa, gpa + size) is bytes
 * [fd_offset, fd_offset + size) of the region's memfd. */
struct vgpu_dev_region {
	uint64_t gpa, size, fd_offset;
};

struct vgpu_dev_hello {
	uint32_t version;            /* VGPU_DEV_VERSION */
	uint32_t memory;             /* enum vgpu_dev_memory */
	uint32_t domid;              /* Xen: the domain; memfd: 0 */
	uint32_t n_regions;          /* memfd: 1..VGPU_DEV_MAX_REGIONS; Xen: 0 */
	struct vgpu_dev_region regions[VGPU_DEV_MAX_REGIONS];
};

/* One extent of a window: guest-physical [gpa, gpa + len). */
struct vgpu_dev_extent {
	uint64_t gpa, len;
};

struct vgpu_dev_window {
	uint32_t action;             /* enum vgpu_dev_action */
	uint32_t n_extents;          /* register: 1..VGPU_DEV_MAX_EXTENTS; else 0 */
	uint64_t bytes;              /* register: the extents' sum, the window's size */
	struct vgpu_dev_extent extents[VGPU_DEV_MAX_EXTENTS];
};

/* What IDENTITY says: the VM's pool and priority as the registry has them
 * now (the device's POOL_ID and PRIORITY registers). */
struct vgpu_dev_identity {
	uint32_t pool;               /* the pool's letter, 'A' (0x41) to 'Z' (0x5a) */
	uint32_t priority;           /* 0..VGPU_DEV_MAX_PRIORITY */
};

/* The fds a DEVICE message carries: its regions' memfds (memfd), then the
 * doorbell eventfd and the completion socket. */
static inline unsigned vgpu_dev_hello_fds(const struct vgpu_dev_hello *h)
{
	return (h->memory == VGPU_DEV_MEM_MEMFD ? h->n_regions : 0) + 2;
}

/* Encode into @out (room for VGPU_PROTO_HEADER_SIZE + VGPU_DEV_MAX_PAYLOAD
 * bytes); the message's length. */
size_t vgpu_dev_encode_hello(uint64_t seq, const struct vgpu_dev_hello *h, uint8_t *out);
size_t vgpu_dev_encode_window(uint64_t seq, const struct vgpu_dev_window *w, uint8_t *out);
void vgpu_dev_encode_reply(uint64_t seq, uint16_t answered, int32_t status, uint64_t window,
			   uint8_t out[VGPU_DEV_REPLY_MSG]);
void vgpu_dev_encode_identity(uint64_t seq, const struct vgpu_dev_identity *id,
			      uint8_t out[VGPU_DEV_IDENTITY_MSG]);

/* Whether @h (decoded, vgpu_proto_decode_header()) can start a device
 * message of type @type: op 0, and a payload the type allows (DEVICE and
 * WINDOW at most VGPU_DEV_MAX_PAYLOAD, DEVICE_REPLY and IDENTITY exactly
 * the block).
 * Read no more of a message that fails this. */
bool vgpu_dev_header_ok(const struct vgpu_msg_header *h, uint16_t type);

/*
 * Parse the whole message (@raw_header, @h, @payload of h->payload_len
 * bytes, a private copy). VGPU_PROTOCOL for a bad checksum, type,
 * reserved bytes or a table whose size is not what its count says;
 * VGPU_INVALID_PARAM for contents out of bounds:
 * - DEVICE: version, memory kind, domid (Xen: 1..0x7fef, not dom0),
 *   n_regions (memfd: 1..8, Xen: 0), each region 4 KiB aligned, non-empty,
 *   not wrapping, and none overlapping another in guest-physical space;
 * - WINDOW: register with 1..256 extents, each 4 KiB aligned and
 *   non-empty, not wrapping, summing to a window size vgpu_ring.h allows
 *   (VGPU_RING_DATA_OFFSET plus 1 MiB to 2 GiB of data, whole pages),
 *   no two overlapping; unregister with none.
 * @ret is written only on VGPU_OK.
 */
int vgpu_dev_parse_hello(const uint8_t raw_header[VGPU_PROTO_HEADER_SIZE],
			 const struct vgpu_msg_header *h, const uint8_t *payload,
			 struct vgpu_dev_hello *ret);
int vgpu_dev_parse_window(const uint8_t raw_header[VGPU_PROTO_HEADER_SIZE],
			  const struct vgpu_msg_header *h, const uint8_t *payload,
			  struct vgpu_dev_window *ret);
/* A reply: the type it answers, its status (VGPU_OK or an error), the
 * window's bytes (register, VGPU_OK) or 0. */
int vgpu_dev_parse_reply(const uint8_t raw_header[VGPU_PROTO_HEADER_SIZE],
			 const struct vgpu_msg_header *h, const uint8_t *payload,
			 uint16_t *ret_answered, int32_t *ret_status, uint64_t *ret_window);
/* An IDENTITY: VGPU_PROTOCOL as above (its last 16 bytes must be 0),
 * VGPU_INVALID_PARAM for a pool that is not a letter A to Z or a priority
 * over VGPU_DEV_MAX_PRIORITY. @ret is written only on VGPU_OK. */
int vgpu_dev_parse_identity(const uint8_t raw_header[VGPU_PROTO_HEADER_SIZE],
			    const struct vgpu_msg_header *h, const uint8_t *payload,
			    struct vgpu_dev_identity *ret);

#ifdef __cplusplus
}
#endif

#endif
