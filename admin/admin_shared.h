/* SPDX-License-Identifier: MIT */
/*
 * admin_shared.h - what vgpu-admin and the host agent (vgpu-agent) share,
 * so that both show the registry and ask the mediator the same way:
 * terminal-safe text, the registry's VMs and pools as JSON (json_out.c),
 * and the mediator's control socket (control_client.c).
 */
#ifndef VGPU_ADMIN_SHARED_H
#define VGPU_ADMIN_SHARED_H

#include <stddef.h>

#include <jansson.h>

#include "vgpu_config.h"

/* Copy @in for a terminal: control characters and bytes that are not valid
 * UTF-8 become '?'. Always NUL-terminates @out. */
void sanitize(const char *in, char *out, size_t out_size);
/* A JSON string from arbitrary bytes (invalid UTF-8 is replaced). */
json_t *json_text(const char *s);
json_t *json_vm(const struct vgpu_vm_config *vm);
json_t *json_pool(const struct vgpu_pool_info *pool);

/* The mediator's answer to @cmd ("stats", "metrics") over
 * RUN_DIR/control.sock, NUL-terminated, at most 4 MiB, within 3 s: into
 * *@ret_text (malloc'd). VGPU_NOT_FOUND when no mediator listens there;
 * the reason in @err. */
int mediator_ask(const char *run_dir, const char *cmd, char **ret_text, char *err,
		 size_t err_size);
/* The mediator's statistics document ("stats"). */
int mediator_stats(const char *run_dir, json_t **ret_doc, char *err, size_t err_size);

#endif
