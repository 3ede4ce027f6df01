/* SPDX-License-Identifier: MIT */
/*
 * qemu_opts.c - building the `-device vgpu-stub,...` argument.
 *
 * Must never: put a value into the argument unescaped, or return a cut-off
 * argument (QEMU would read a different device).
 */
#include <stdio.h>
#include <string.h>

#include "qemu_opts.h"

bool vgpu_qemu_opt_escape(const char *value, char *ret, size_t size)
{
	size_t need = 1;

	if (!value || !ret)
		return false;
	for (const char *p = value; *p; p++)
		need += *p == ',' ? 2 : 1;
	if (need > size)
		return false;
	for (const char *p = value; *p; p++) {
		*ret++ = *p;
		if (*p == ',')
			*ret++ = ',';
	}
	*ret = '\0';
	return true;
}

int vgpu_qemu_stub_device_arg(const struct vgpu_vm_config *vm, const char *mediator_dir,
			      char *ret, size_t size)
{
	char raw[3][16], esc[3][32], arg[VGPU_QEMU_DEVICE_ARG_MAX];
	char sock[4096 + 64], sock_esc[2 * sizeof(sock)];
	bool mediator = mediator_dir && *mediator_dir;
	int n;

	if (!vm || !ret || !vgpu_pool_id_valid(vm->pool_id) ||
	    !vgpu_priority_valid(vm->priority) || !vgpu_vm_id_valid(vm->vm_id) ||
	    (mediator && !vgpu_uuid_valid(vm->vm_uuid)))
		return VGPU_INVALID_PARAM;
	snprintf(raw[0], sizeof(raw[0]), "%c", vm->pool_id);
	snprintf(raw[1], sizeof(raw[1]), "%d", vm->priority);
	snprintf(raw[2], sizeof(raw[2]), "%d", vm->vm_id);
	for (int i = 0; i < 3; i++)
		if (!vgpu_qemu_opt_escape(raw[i], esc[i], sizeof(esc[i])))
			return VGPU_LIMIT;
	sock_esc[0] = '\0';
	if (mediator) {
		n = snprintf(sock, sizeof(sock), "%s/vm-%s.sock", mediator_dir, vm->vm_uuid);
		if (n < 0 || (size_t)n >= sizeof(sock) ||
		    !vgpu_qemu_opt_escape(sock, sock_esc, sizeof(sock_esc)))
			return VGPU_LIMIT;
	}
	n = snprintf(arg, sizeof(arg), "vgpu-stub,pool_id=%s,priority=%s,vm_id=%s%s%s", esc[0],
		     esc[1], esc[2], mediator ? ",mediator=" : "", sock_esc);
	if (n < 0 || (size_t)n >= size || (size_t)n >= sizeof(arg))
		return VGPU_LIMIT;
	memcpy(ret, arg, (size_t)n + 1);
	return VGPU_OK;
}
