/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vgpu-stub.c - the vgpu-stub PCI device: how a VM learns its vgpu pool,
 * priority and VM id (docs/specs/vgpu-stub.md is the register map).
 *
 * vendor 0x1AF4, device 0x1111, class 0x1200 (processing accelerator),
 * BAR0: 4 KiB of 32-bit registers. Properties pool_id (A or B), priority
 * (0..2) and vm_id (uint32), set by vgpu-qemu-wrapper from the registry;
 * a bad value stops the device from realizing, so QEMU does not start.
 * Version 1.0 has identity registers only; the ranges the doorbell,
 * interrupt and shared-memory registers will take are reserved.
 *
 * Builds unchanged against QEMU 4.2.1 (XCP-ng 8.2) and 7.2 (Debian 12):
 * vgpu-stub-compat.h holds the differences.
 *
 * Never: abort or assert on anything a guest does. A read of an unknown
 * offset returns 0, a write is ignored, and both are logged as guest
 * errors, at most GUEST_LOG_BURST lines per second per device.
 */
#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/module.h"
#include "qemu/timer.h"
#include "qapi/error.h"
#include "hw/pci/pci.h"
#include "hw/qdev-properties.h"

#include "vgpu-stub-compat.h"
#include "vgpu-stub-regs.h"

#define TYPE_VGPU_STUB "vgpu-stub"
#define GUEST_LOG_BURST 10        /* guest-error lines per second per device */

VGPU_STUB_DECLARE_TYPE(VGPUStubState, VGPU_STUB, TYPE_VGPU_STUB)

struct VGPUStubState {
	PCIDevice parent_obj;
	MemoryRegion mmio;           /* BAR0 */
	char *pool_id;               /* property: "A" or "B" */
	uint32_t priority;           /* property: 0..2 */
	uint32_t vm_id;              /* property */
	int64_t log_window_ms;       /* start of the current rate-limit second */
	unsigned log_count;          /* guest-error lines in it */
	unsigned log_dropped;        /* lines not written in it */
};

/* A guest error, unless this second's budget is spent (the policy of
 * mediator/log.c's vgpu_log_guest, kept here: this file builds inside QEMU). */
static void G_GNUC_PRINTF(2, 3) guest_error(VGPUStubState *s, const char *fmt, ...)
{
	int64_t now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
	char msg[160];
	va_list ap;

	if (!qemu_loglevel_mask(LOG_GUEST_ERROR))
		return; /* not asked for: nothing to count either */
	if (now - s->log_window_ms >= 1000) {
		if (s->log_dropped)
			qemu_log("vgpu-stub: %u guest errors not logged\n", s->log_dropped);
		s->log_window_ms = now;
		s->log_count = 0;
		s->log_dropped = 0;
	}
	if (s->log_count >= GUEST_LOG_BURST) {
		s->log_dropped++;
		return;
	}
	s->log_count++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	qemu_log("vgpu-stub: %s\n", msg);
}

static uint64_t vgpu_stub_read(void *opaque, hwaddr addr, unsigned size)
{
	VGPUStubState *s = opaque;

	switch (addr) {
	case VGPU_STUB_REG_MAGIC:
		return VGPU_STUB_MAGIC_VALUE;
	case VGPU_STUB_REG_VERSION:
		return VGPU_STUB_VERSION_VALUE;
	case VGPU_STUB_REG_POOL_ID:
		return (uint8_t)s->pool_id[0];
	case VGPU_STUB_REG_PRIORITY:
		return s->priority;
	case VGPU_STUB_REG_VM_ID:
		return s->vm_id;
	case VGPU_STUB_REG_STATUS:
		return VGPU_STUB_STATUS_READY;
	case VGPU_STUB_REG_CAPABILITIES:
		return 0;
	default:
		guest_error(s, "read of unknown register 0x%03" HWADDR_PRIx " (size %u): 0", addr,
			    size);
		return 0;
	}
}

static void vgpu_stub_write(void *opaque, hwaddr addr, uint64_t val, unsigned size)
{
	/* Version 1.0 has no writable register. */
	guest_error(opaque, "write of 0x%" PRIx64 " to %s register 0x%03" HWADDR_PRIx
		    " (size %u) ignored",
		    val, addr <= VGPU_STUB_REG_CAPABILITIES ? "read-only" : "unknown", addr, size);
}

static const MemoryRegionOps vgpu_stub_mmio_ops = {
	.read = vgpu_stub_read,
	.write = vgpu_stub_write,
	.endianness = DEVICE_LITTLE_ENDIAN,
	.valid = { .min_access_size = 4, .max_access_size = 4, .unaligned = false },
	.impl = { .min_access_size = 4, .max_access_size = 4 },
};

static void vgpu_stub_realize(PCIDevice *pdev, Error **errp)
{
	VGPUStubState *s = VGPU_STUB(pdev);

	if (!s->pool_id || (strcmp(s->pool_id, "A") != 0 && strcmp(s->pool_id, "B") != 0)) {
		error_setg(errp, "vgpu-stub: pool_id must be A or B, not '%s'",
			   s->pool_id ? s->pool_id : "(unset)");
		return;
	}
	if (s->priority > 2) {
		error_setg(errp, "vgpu-stub: priority must be 0, 1 or 2, not %" PRIu32,
			   s->priority);
		return;
	}
	memory_region_init_io(&s->mmio, OBJECT(s), &vgpu_stub_mmio_ops, s, "vgpu-stub-mmio",
			      VGPU_STUB_BAR0_SIZE);
	pci_register_bar(pdev, 0, PCI_BASE_ADDRESS_SPACE_MEMORY, &s->mmio);
}

static Property vgpu_stub_properties[] = {
	DEFINE_PROP_STRING("pool_id", VGPUStubState, pool_id),
	DEFINE_PROP_UINT32("priority", VGPUStubState, priority, 0),
	DEFINE_PROP_UINT32("vm_id", VGPUStubState, vm_id, 0),
	DEFINE_PROP_END_OF_LIST(),
};

static void vgpu_stub_class_init(ObjectClass *klass, VGPU_CLASS_DATA *data)
{
	DeviceClass *dc = DEVICE_CLASS(klass);
	PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

	k->realize = vgpu_stub_realize;
	k->vendor_id = VGPU_STUB_VENDOR_ID;
	k->device_id = VGPU_STUB_DEVICE_ID;
	k->class_id = VGPU_STUB_CLASS;
	k->revision = VGPU_STUB_REVISION;
	dc->desc = "vgpu mediated GPU access (identity registers)";
	set_bit(DEVICE_CATEGORY_MISC, dc->categories);
	device_class_set_props(dc, vgpu_stub_properties);
}

static const TypeInfo vgpu_stub_info = {
	.name = TYPE_VGPU_STUB,
	.parent = TYPE_PCI_DEVICE,
	.instance_size = sizeof(VGPUStubState),
	.class_init = vgpu_stub_class_init,
	.interfaces = (InterfaceInfo[]){
		{ INTERFACE_CONVENTIONAL_PCI_DEVICE },
		{},
	},
};

static void vgpu_stub_register_types(void)
{
	type_register_static(&vgpu_stub_info);
}

type_init(vgpu_stub_register_types)
