/* SPDX-License-Identifier: MIT */
/*
 * vgpu-stub-regs.h - the register map of the vgpu-stub PCI device's BAR0,
 * shared by the device (QEMU) and the guest tools. docs/specs/vgpu-stub.md
 * is the specification; this header must say the same.
 *
 * Every register is 32 bits wide, little-endian, accessed with aligned
 * 4-byte reads and writes. Plain C: no QEMU or libc types beyond stdint.
 */
#ifndef VGPU_STUB_REGS_H
#define VGPU_STUB_REGS_H

#define VGPU_STUB_VENDOR_ID 0x1af4  /* Red Hat / virtio range, as the seed */
#define VGPU_STUB_DEVICE_ID 0x1111
#define VGPU_STUB_CLASS 0x1200      /* processing accelerator */
#define VGPU_STUB_REVISION 1
#define VGPU_STUB_BAR0_SIZE 4096

#define VGPU_STUB_MAGIC_VALUE 0x55504756u  /* the bytes "VGPU" */
#define VGPU_STUB_VERSION_VALUE 0x00010000u /* major 1 (high 16 bits), minor 0 */

/* Identity and state (read-only; writes are ignored and logged). */
#define VGPU_STUB_REG_MAGIC 0x000
#define VGPU_STUB_REG_VERSION 0x004
#define VGPU_STUB_REG_POOL_ID 0x008      /* 'A' (0x41) or 'B' (0x42) */
#define VGPU_STUB_REG_PRIORITY 0x00c     /* 0 low, 1 medium, 2 high */
#define VGPU_STUB_REG_VM_ID 0x010
#define VGPU_STUB_REG_STATUS 0x014
#define VGPU_STUB_REG_CAPABILITIES 0x018

/* STATUS bits. */
#define VGPU_STUB_STATUS_READY (1u << 0)        /* properties valid, device usable */

/* CAPABILITIES bits: none in version 1.0. The shared-memory transport will
 * announce itself here (VGPU_STUB_CAP_SHM) with the registers below. */
#define VGPU_STUB_CAP_SHM (1u << 0)             /* reserved */

/* Reserved ranges: read as 0 in version 1.0 (and logged). */
#define VGPU_STUB_DOORBELL_BASE 0x100    /* doorbell and interrupt registers */
#define VGPU_STUB_DOORBELL_END 0x200
#define VGPU_STUB_SHM_BASE 0x200         /* shared-memory window (BAR2) registers */
#define VGPU_STUB_SHM_END 0x300

#endif
