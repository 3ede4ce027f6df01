/* SPDX-License-Identifier: MIT */
/*
 * qemu_opts.h - the QEMU command-line text vgpu-qemu-wrapper adds: option
 * values escaped the way QEMU's option parser reads them, and the argument
 * of `-device vgpu-stub,...` for a registered VM.
 */
#ifndef VGPU_XCPNG_QEMU_OPTS_H
#define VGPU_XCPNG_QEMU_OPTS_H

#include <stdbool.h>
#include <stddef.h>

#include "vgpu_config.h"

/* Enough for the device argument of any valid vgpu_vm_config and a
 * mediator directory of up to PATH_MAX bytes, every comma doubled. */
#define VGPU_QEMU_DEVICE_ARG_MAX (128 + 2 * 4096 + 64)

/*
 * Copy @value into @ret (@size bytes) with every ',' doubled, which is how a
 * QEMU option value carries a comma. False, and @ret untouched, when the
 * result does not fit.
 */
bool vgpu_qemu_opt_escape(const char *value, char *ret, size_t size);

/*
 * "vgpu-stub,pool_id=P,priority=N,vm_id=M" for @vm, and, when
 * @mediator_dir is not NULL or empty, ",mediator=DIR/vm-<uuid>.sock" (the
 * VM's socket in the mediator's run_dir: the device connects to it), every
 * value escaped. VGPU_INVALID_PARAM when @vm holds an invalid pool,
 * priority, vm_id or uuid; VGPU_LIMIT when it does not fit @size bytes.
 * @ret is written only on VGPU_OK.
 */
int vgpu_qemu_stub_device_arg(const struct vgpu_vm_config *vm, const char *mediator_dir,
			      char *ret, size_t size);

#endif
