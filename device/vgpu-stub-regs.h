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
#define VGPU_STUB_REVISION 2
#define VGPU_STUB_BAR0_SIZE 4096
#define VGPU_STUB_MSIX_BAR 1        /* BAR1: the MSI-X table and PBA */
#define VGPU_STUB_MSIX_VECTORS 2    /* 0 completions, 1 link, window and identity changes */

#define VGPU_STUB_MAGIC_VALUE 0x55504756u  /* the bytes "VGPU" */
#define VGPU_STUB_VERSION_VALUE 0x00010001u /* major 1 (high 16 bits), minor 1 */

/* Identity and state (read-only; writes are ignored and logged). POOL_ID
 * and PRIORITY follow the registry while the device is linked to the
 * mediator (1.1: a live change raises VGPU_STUB_INT_IDENTITY). */
#define VGPU_STUB_REG_MAGIC 0x000
#define VGPU_STUB_REG_VERSION 0x004
#define VGPU_STUB_REG_POOL_ID 0x008      /* the pool's letter, 'A' (0x41) to 'Z' (0x5a) */
#define VGPU_STUB_REG_PRIORITY 0x00c     /* 0 low, 1 medium, 2 high */
#define VGPU_STUB_REG_VM_ID 0x010
#define VGPU_STUB_REG_STATUS 0x014
#define VGPU_STUB_REG_CAPABILITIES 0x018

/* STATUS bits. */
#define VGPU_STUB_STATUS_READY (1u << 0)        /* properties valid, device usable */
#define VGPU_STUB_STATUS_LINK (1u << 1)         /* connected to the mediator */
#define VGPU_STUB_STATUS_WINDOW (1u << 2)       /* a window is registered and served */

/* CAPABILITIES bits. */
#define VGPU_STUB_CAP_RING (1u << 0)            /* the ring registers below work
						 * (the device has a mediator) */

/* Doorbell and interrupts (1.1). */
#define VGPU_STUB_REG_DOORBELL 0x100     /* WO: descriptors were published */
#define VGPU_STUB_REG_INT_STATUS 0x104   /* RO, write 1 to clear */
#define VGPU_STUB_REG_INT_MASK 0x108     /* RW: set bits raise no INTx */
#define VGPU_STUB_INT_COMPLETE (1u << 0)        /* completions were posted */
#define VGPU_STUB_INT_LINK (1u << 1)            /* STATUS.LINK changed */
#define VGPU_STUB_INT_WINDOW (1u << 2)          /* WIN_STATE changed */
#define VGPU_STUB_INT_IDENTITY (1u << 3)        /* POOL_ID or PRIORITY changed */
#define VGPU_STUB_INT_ALL 0xfu

/* Window registration (1.1): the extent list is one page of guest RAM with
 * up to 256 entries of 16 bytes (u64 guest-physical address, u64 length,
 * both 4 KiB aligned), in the window's order. */
#define VGPU_STUB_REG_WIN_LIST_LO 0x200  /* RW */
#define VGPU_STUB_REG_WIN_LIST_HI 0x204  /* RW */
#define VGPU_STUB_REG_WIN_EXTENTS 0x208  /* RW: 1..256 */
#define VGPU_STUB_REG_WIN_CTRL 0x20c     /* WO */
#define VGPU_STUB_REG_WIN_STATE 0x210    /* RO */
#define VGPU_STUB_REG_WIN_ERROR 0x214    /* RO: a vgpu error code (negative) */
#define VGPU_STUB_WIN_CTRL_REGISTER 1
#define VGPU_STUB_WIN_CTRL_UNREGISTER 2
#define VGPU_STUB_WIN_NONE 0
#define VGPU_STUB_WIN_REGISTERING 1      /* also: waiting for the mediator */
#define VGPU_STUB_WIN_REGISTERED 2
#define VGPU_STUB_WIN_REFUSED 3
#define VGPU_STUB_WIN_MAX_EXTENTS 256
#define VGPU_STUB_WIN_EXTENT_SIZE 16

#endif
