/* SPDX-License-Identifier: MIT */
/*
 * xenstore.h - what vgpu-qemu-wrapper asks xenstore: a domain's VM UUID and
 * name, read through the `xenstore-read` command with a deadline, and the
 * strict parsers for the domid and the values it gets back.
 *
 * Nothing here trusts a value it did not check: every value is bounded,
 * free of NUL and newline bytes, and matches its expected form before use.
 */
#ifndef VGPU_XCPNG_XENSTORE_H
#define VGPU_XCPNG_XENSTORE_H

#include <stdbool.h>
#include <stddef.h>

#include "vgpu_config.h"

/* Xen reserves the domids from DOMID_FIRST_RESERVED (0x7FF0) up; 0 is dom0. */
#define VGPU_DOMID_MAX 0x7FEF

/* Room for "/local/domain/<domid>/<key>" with the keys used here. */
#define VGPU_XS_PATH_MAX 64

/*
 * A guest domid: decimal digits only, no sign, no leading zero, in
 * 1..VGPU_DOMID_MAX. *ret_domid is written only when true is returned.
 */
bool vgpu_domid_parse(const char *s, unsigned *ret_domid);

/*
 * Run `xenstore-read @path` (looked up on PATH) for at most @timeout_ms.
 * On VGPU_OK, @ret_value (@size bytes) holds the value without the one
 * newline xenstore-read adds. Failures, with a one-line reason in @ret_err:
 * VGPU_NOT_FOUND (xenstore-read is not installed), VGPU_TIMEOUT, VGPU_ERROR
 * (it exited non-zero: the key is missing or xenstored failed),
 * VGPU_INVALID_PARAM (the value is longer than @size - 1 bytes or holds a NUL
 * or newline byte), or another code of vgpu_exec(). @ret_value is written
 * only on success.
 */
int vgpu_xs_read(const char *path, int timeout_ms, char *ret_value, size_t size,
		 char *ret_err, size_t err_size);

/*
 * The UUID in a domain's `vm` key, which must be exactly "/vm/<uuid>".
 * On VGPU_OK @ret_uuid holds it in lower case; VGPU_INVALID_PARAM otherwise.
 */
int vgpu_xs_vm_uuid(const char *value, char ret_uuid[VGPU_UUID_STRLEN + 1]);

/*
 * Copy @s into @ret (@size bytes, at most @max_chars of them from @s) with
 * every byte outside printable ASCII replaced by '?', for log lines that
 * quote a value that failed validation.
 */
void vgpu_xs_printable(const char *s, size_t max_chars, char *ret, size_t size);

#endif
