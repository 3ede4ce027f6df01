/* SPDX-License-Identifier: MIT */
/*
 * cuda_desc.c - the GPU description's encoding (cuda_desc.h).
 */
#include <stdbool.h>
#include <string.h>

#include "cuda_desc.h"
#include "le.h"
#include "vgpu_error.h"
#include "vgpu_protocol.h"

static size_t dev_size(uint32_t n_attrs)
{
	return VGPU_CUDA_DEV_HEAD + 4 * (size_t)n_attrs;
}

size_t vgpu_cuda_desc_size(const struct vgpu_cuda_desc *d)
{
	uint32_t count = d->count <= VGPU_CUDA_MAX_DEVICES ? d->count : VGPU_CUDA_MAX_DEVICES;
	size_t size = VGPU_CUDA_DESC_HEAD;

	for (uint32_t i = 0; i < count; i++)
		size += dev_size(d->dev[i].n_attrs <= VGPU_CUDA_ATTRS ? d->dev[i].n_attrs
								      : VGPU_CUDA_ATTRS);
	return size;
}

static bool terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

size_t vgpu_cuda_desc_encode(const struct vgpu_cuda_desc *d, uint8_t *buf, size_t size)
{
	size_t need = vgpu_cuda_desc_size(d), off = VGPU_CUDA_DESC_HEAD;

	if (d->count > VGPU_CUDA_MAX_DEVICES || need > size)
		return 0;
	for (uint32_t i = 0; i < d->count; i++) {
		const struct vgpu_cuda_device_desc *v = &d->dev[i];

		if (v->n_attrs > VGPU_CUDA_ATTRS || !terminated(v->name, sizeof(v->name)) ||
		    !terminated(v->pci_bus_id, sizeof(v->pci_bus_id)))
			return 0;
	}
	put32(buf, VGPU_CUDA_DESC_FORMAT);
	put32(buf + 4, d->driver_version);
	put32(buf + 8, d->count);
	for (uint32_t i = 0; i < d->count; i++) {
		const struct vgpu_cuda_device_desc *v = &d->dev[i];
		uint8_t *p = buf + off;

		memset(p, 0, VGPU_CUDA_NAME_LEN);
		memcpy(p, v->name, strlen(v->name));
		p += VGPU_CUDA_NAME_LEN;
		memcpy(p, v->uuid, 16);
		put64(p + 16, v->total_mem);
		p += 24;
		memset(p, 0, VGPU_CUDA_BUS_ID_LEN);
		memcpy(p, v->pci_bus_id, strlen(v->pci_bus_id));
		p += VGPU_CUDA_BUS_ID_LEN;
		put32(p, v->n_attrs);
		for (uint32_t a = 0; a < v->n_attrs; a++)
			put32(p + 4 + 4 * a, (uint32_t)v->attr[a]);
		off += dev_size(v->n_attrs);
	}
	return off;
}

int vgpu_cuda_desc_decode(const uint8_t *buf, size_t len, struct vgpu_cuda_desc *d)
{
	size_t off = VGPU_CUDA_DESC_HEAD;

	memset(d, 0, sizeof(*d));
	if (!buf || len < VGPU_CUDA_DESC_HEAD || len > VGPU_CUDA_DESC_MAX ||
	    get32(buf) != VGPU_CUDA_DESC_FORMAT || get32(buf + 8) > VGPU_CUDA_MAX_DEVICES)
		goto bad;
	d->driver_version = get32(buf + 4);
	d->count = get32(buf + 8);
	for (uint32_t i = 0; i < d->count; i++) {
		struct vgpu_cuda_device_desc *v = &d->dev[i];
		const uint8_t *p = buf + off;

		if (len - off < VGPU_CUDA_DEV_HEAD)
			goto bad;
		memcpy(v->name, p, VGPU_CUDA_NAME_LEN);
		memcpy(v->uuid, p + VGPU_CUDA_NAME_LEN, 16);
		v->total_mem = get64(p + VGPU_CUDA_NAME_LEN + 16);
		memcpy(v->pci_bus_id, p + VGPU_CUDA_NAME_LEN + 24, VGPU_CUDA_BUS_ID_LEN);
		v->n_attrs = get32(p + VGPU_CUDA_DEV_HEAD - 4);
		if (!terminated(v->name, sizeof(v->name)) ||
		    !terminated(v->pci_bus_id, sizeof(v->pci_bus_id)) || v->n_attrs > VGPU_CUDA_ATTRS ||
		    len - off < dev_size(v->n_attrs))
			goto bad;
		for (uint32_t a = 0; a < v->n_attrs; a++)
			v->attr[a] = (int32_t)get32(p + VGPU_CUDA_DEV_HEAD + 4 * a);
		off += dev_size(v->n_attrs);
	}
	if (off != len)
		goto bad;
	return VGPU_OK;
bad:
	memset(d, 0, sizeof(*d));
	return VGPU_PROTOCOL;
}

void vgpu_cuda_build_describe(uint64_t request_id, uint8_t out[VGPU_PROTO_HEADER_SIZE])
{
	struct vgpu_msg_header h = { .type = VGPU_MSG_CUDA, .op = VGPU_CUDA_DESCRIBE,
				     .request_id = request_id };

	vgpu_proto_encode_header(&h, out);
	put32(out + 28, vgpu_proto_checksum(out, NULL, 0));
}

size_t vgpu_cuda_build_described(uint64_t request_id, int32_t status,
				 const struct vgpu_cuda_desc *d, uint8_t *buf, size_t size)
{
	struct vgpu_msg_header h = { .type = VGPU_MSG_CUDA_REPLY, .op = VGPU_CUDA_DESCRIBE,
				     .request_id = request_id };
	size_t len = 0;

	if (size < VGPU_PROTO_HEADER_SIZE + 4)
		return 0;
	if (status == VGPU_OK) {
		len = vgpu_cuda_desc_encode(d, buf + VGPU_PROTO_HEADER_SIZE + 4,
					    size - VGPU_PROTO_HEADER_SIZE - 4);
		if (len == 0)
			return 0;
	}
	put32(buf + VGPU_PROTO_HEADER_SIZE, (uint32_t)status);
	h.payload_len = (uint32_t)(4 + len);
	vgpu_proto_encode_header(&h, buf);
	put32(buf + 28, vgpu_proto_checksum(buf, buf + VGPU_PROTO_HEADER_SIZE, h.payload_len));
	return VGPU_PROTO_HEADER_SIZE + h.payload_len;
}

int vgpu_cuda_described_len(const uint8_t raw_header[VGPU_PROTO_HEADER_SIZE],
			    uint64_t request_id, uint32_t *ret_len)
{
	struct vgpu_proto_limits lim = { .max_payload = VGPU_CUDA_DESCRIBED_MAX };
	struct vgpu_msg_header h;
	int rc = vgpu_proto_decode_header(raw_header, &lim, &h);

	if (rc != VGPU_OK)
		return rc == VGPU_LIMIT ? VGPU_PROTOCOL : rc;
	if (h.type != VGPU_MSG_CUDA_REPLY || h.op != VGPU_CUDA_DESCRIBE ||
	    h.request_id != request_id || h.payload_len < 4)
		return VGPU_PROTOCOL;
	*ret_len = h.payload_len;
	return VGPU_OK;
}

int vgpu_cuda_parse_described(const uint8_t raw_header[VGPU_PROTO_HEADER_SIZE],
			      const uint8_t *payload, uint32_t len, struct vgpu_cuda_desc *d)
{
	int32_t status;

	if (len < 4 || get32(raw_header + 24) != len ||
	    vgpu_proto_checksum(raw_header, payload, len) != get32(raw_header + 28))
		return VGPU_PROTOCOL;
	status = (int32_t)get32(payload);
	if (status != VGPU_OK)
		return len == 4 && status < 0 ? status : VGPU_PROTOCOL;
	return vgpu_cuda_desc_decode(payload + 4, len - 4, d);
}
