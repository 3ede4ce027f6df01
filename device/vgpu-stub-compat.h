/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vgpu-stub-compat.h - the QEMU API differences between the versions
 * vgpu-stub.c builds against: QEMU 4.2.1 (XCP-ng 8.2's device model) and
 * QEMU 7.2 (Debian 12). Everything version-dependent is here, keyed on
 * what the headers define, never on a version number (4.2 has none).
 *
 *   type checker   4.2: OBJECT_CHECK by hand;  5.2+: OBJECT_DECLARE_SIMPLE_TYPE
 *   properties     4.2: dc->props = ...;       5.0+: device_class_set_props()
 *   class_init     void *data in both (const void * from QEMU 10.1 on:
 *                  VGPU_CLASS_DATA names the type in one place)
 *   msix_vector_use 4.2: returns int (always 0 for a valid vector);
 *                  7.2: void. vgpu_msix_vector_use() discards either.
 */
#ifndef VGPU_STUB_COMPAT_H
#define VGPU_STUB_COMPAT_H

#include "qom/object.h"
#include "hw/qdev-core.h"

#define VGPU_CLASS_DATA void

#ifdef OBJECT_DECLARE_SIMPLE_TYPE
#define VGPU_STUB_DECLARE_TYPE(State, CHECKER, TYPE_NAME) \
	OBJECT_DECLARE_SIMPLE_TYPE(State, CHECKER)
#else
/* QEMU 4.2: the instance cast of 5.2's macro, written out. */
#define VGPU_STUB_DECLARE_TYPE(State, CHECKER, TYPE_NAME) \
	typedef struct State State;                     \
	static inline State *CHECKER(const void *obj)   \
	{                                               \
		return OBJECT_CHECK(State, obj, TYPE_NAME); \
	}
/* QEMU 4.2: no setter; the property array hangs off the class. */
#define device_class_set_props(dc, p) ((dc)->props = (p))
#endif

/* A vector in range: cannot fail in either version. */
#define vgpu_msix_vector_use(dev, v) ((void)msix_vector_use((dev), (v)))

#endif
