/* SPDX-License-Identifier: MIT */
/*
 * cuda_desc.h - what the host tells a guest's libcuda.so.1 about its GPUs
 * (docs/specs/cuda-remoting.md, "The description"): the driver version and,
 * per device, its name, UUID, memory, PCI bus id and attribute values.
 * The guest answers every device query from it, with no round trip.
 *
 * The encoding is little-endian and of exact length:
 *   u32 format (1), u32 driver_version, u32 count (0..VGPU_CUDA_MAX_DEVICES),
 *   then per device: name[256] (NUL-terminated), uuid[16], u64 total_mem,
 *   pci_bus_id[16] (NUL-terminated), u32 n_attrs (0..VGPU_CUDA_ATTRS),
 *   n_attrs x i32 (the value of CUdevice_attribute 1, 2, ...).
 *
 * Never: accept a description whose length, counts or strings are not
 * exactly as above.
 */
#ifndef VGPU_CUDA_DESC_H
#define VGPU_CUDA_DESC_H

#include <stddef.h>
#include <stdint.h>

#include "vgpu_protocol.h"

#define VGPU_CUDA_DESC_FORMAT 1
#define VGPU_CUDA_MAX_DEVICES 8
#define VGPU_CUDA_ATTRS 192   /* CUdevice_attribute values 1..192 (CUDA 13: 1..147) */
#define VGPU_CUDA_NAME_LEN 256
#define VGPU_CUDA_BUS_ID_LEN 16
#define VGPU_CUDA_DESC_HEAD 12
#define VGPU_CUDA_DEV_HEAD (VGPU_CUDA_NAME_LEN + 16 + 8 + VGPU_CUDA_BUS_ID_LEN + 4)
#define VGPU_CUDA_DESC_MAX \
	(VGPU_CUDA_DESC_HEAD + VGPU_CUDA_MAX_DEVICES * (VGPU_CUDA_DEV_HEAD + 4 * VGPU_CUDA_ATTRS))

struct vgpu_cuda_device_desc {
	char name[VGPU_CUDA_NAME_LEN];
	uint8_t uuid[16];
	uint64_t total_mem;
	char pci_bus_id[VGPU_CUDA_BUS_ID_LEN];
	uint32_t n_attrs;                 /* attr[0..n_attrs) are known */
	int32_t attr[VGPU_CUDA_ATTRS];    /* attr[a - 1]: attribute a */
};

struct vgpu_cuda_desc {
	uint32_t driver_version;          /* e.g. 13000 */
	uint32_t count;
	struct vgpu_cuda_device_desc dev[VGPU_CUDA_MAX_DEVICES];
};

#define VGPU_CUDA_DESCRIBED_MAX (4 + VGPU_CUDA_DESC_MAX)

/* The DESCRIBE request (a header alone) for @request_id. */
void vgpu_cuda_build_describe(uint64_t request_id, uint8_t out[32]);
/* Its reply: header and payload (status, then @d when status is VGPU_OK)
 * into @buf of @size bytes; the length, or 0 when @d is not valid. */
size_t vgpu_cuda_build_described(uint64_t request_id, int32_t status,
				 const struct vgpu_cuda_desc *d, uint8_t *buf, size_t size);
/* From a reply's raw header: its payload's length, after checking it is
 * the DESCRIBE reply to @request_id and within VGPU_CUDA_DESCRIBED_MAX. */
int vgpu_cuda_described_len(const uint8_t raw_header[32], uint64_t request_id,
			    uint32_t *ret_len);
/* The whole reply: checksum, status (returned when not VGPU_OK) and the
 * description, into @d. */
int vgpu_cuda_parse_described(const uint8_t raw_header[32], const uint8_t *payload,
			      uint32_t len, struct vgpu_cuda_desc *d);

/* Bytes @d encodes to (a bad count or n_attrs counts as its maximum). */
size_t vgpu_cuda_desc_size(const struct vgpu_cuda_desc *d);
/* Encode @d into @buf of @size bytes; returns the length, 0 when @d is not
 * valid (counts out of range, strings not terminated) or @buf too small. */
size_t vgpu_cuda_desc_encode(const struct vgpu_cuda_desc *d, uint8_t *buf, size_t size);
/* Decode @len bytes into @d; VGPU_OK, or VGPU_PROTOCOL for anything but an
 * exact, valid encoding (then @d is zeroed). */
int vgpu_cuda_desc_decode(const uint8_t *buf, size_t len, struct vgpu_cuda_desc *d);

#endif
