/* SPDX-License-Identifier: MIT */
/*
 * xe.c - running `xe` and reading its answers.
 *
 * Must never: pass anything through a shell, wait past a deadline, or trust
 * xe's output (sizes are bounded, UUIDs re-validated, labels sanitized when
 * printed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec.h"
#include "xe.h"

/* Run xe with @args; fill @err with a one-line reason on failure. */
static int run_xe(const char *const *args, int timeout_s, struct vgpu_exec_result *res,
		  char *err, size_t err_size)
{
	const char *argv[16] = { "xe" };
	size_t n = 1;

	for (; args[n - 1] && n < 15; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;

	memset(res, 0, sizeof(*res));
	int rc = vgpu_exec(argv, timeout_s * 1000, XE_OUTPUT_MAX, res);
	switch (rc) {
	case VGPU_OK:
		break;
	case VGPU_NOT_FOUND:
		snprintf(err, err_size, "xe not found on PATH (is this an XCP-ng host?)");
		return VGPU_NOT_FOUND;
	case VGPU_TIMEOUT:
		snprintf(err, err_size, "xe %s did not finish within %d s", args[0], timeout_s);
		vgpu_exec_result_free(res);
		return VGPU_TIMEOUT;
	default:
		snprintf(err, err_size, "cannot run xe: %s", vgpu_strerror(rc));
		return rc;
	}
	if (res->status != 0) {
		/* xe's message: the first line of stderr, else of stdout. */
		const char *msg = res->err_len ? res->err : res->out;
		size_t len = strcspn(msg, "\n");

		snprintf(err, err_size, "xe %s failed (exit %d): %.*s", args[0], res->status,
			 (int)(len > 300 ? 300 : len), msg);
		return VGPU_ERROR;
	}
	return VGPU_OK;
}

static void strip(char *s)
{
	size_t len = strlen(s);

	while (len && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' '))
		s[--len] = '\0';
}

int xe_power_state(const char *uuid, int timeout_s, char ret_state[XE_POWER_MAX + 1],
		   char *err, size_t err_size)
{
	char uuid_arg[64], *state;
	const char *args[] = { "vm-param-get", uuid_arg, "param-name=power-state", NULL };
	struct vgpu_exec_result res;
	int rc;

	snprintf(uuid_arg, sizeof(uuid_arg), "uuid=%s", uuid);
	rc = run_xe(args, timeout_s, &res, err, err_size);
	if (rc == VGPU_ERROR && (strstr(res.err, "uuid you supplied was invalid") ||
				 strstr(res.out, "uuid you supplied was invalid"))) {
		snprintf(err, err_size, "VM %s does not exist on this host", uuid);
		rc = XE_NO_SUCH_VM;
	}
	if (rc == VGPU_OK) {
		state = res.out;
		strip(state);
		if (!*state || strlen(state) > XE_POWER_MAX || strchr(state, '\n')) {
			snprintf(err, err_size, "xe gave an unexpected power state");
			rc = VGPU_ERROR;
		} else {
			memcpy(ret_state, state, strlen(state) + 1);
		}
	}
	vgpu_exec_result_free(&res);
	return rc;
}

/* Split "  name-label ( RW): value" into key and value; false if not a field. */
static bool split_field(char *line, char **ret_key, char **ret_value)
{
	char *paren = strstr(line, " (");
	char *close = paren ? strchr(paren, ')') : NULL;
	char *colon = close ? strchr(close, ':') : NULL;
	char *key = line;

	if (!colon)
		return false;
	while (*key == ' ' || *key == '\t')
		key++;
	*paren = '\0';
	*ret_key = key;
	*ret_value = colon + 1;
	if (**ret_value == ' ')
		(*ret_value)++;
	return true;
}

struct vm_list {
	struct xe_vm *vms;
	size_t count, cap;
};

/* Append @vm when its UUID is valid; VGPU_OK or VGPU_NO_MEMORY. */
static int keep_record(struct vm_list *list, struct xe_vm *vm)
{
	if (vgpu_uuid_normalize(vm->uuid, vm->uuid) != VGPU_OK || list->count == XE_MAX_VMS)
		return VGPU_OK;
	if (list->count == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 16;
		struct xe_vm *grown = realloc(list->vms, cap * sizeof(*grown));

		if (!grown)
			return VGPU_NO_MEMORY;
		list->vms = grown;
		list->cap = cap;
	}
	list->vms[list->count++] = *vm;
	return VGPU_OK;
}

int xe_parse_vm_list(const char *text, struct xe_vm **ret_vms, size_t *ret_count)
{
	struct vm_list list = { NULL, 0, 0 };
	char *copy = strdup(text ? text : "");
	struct xe_vm cur;
	bool in_record = false;
	int rc = VGPU_OK;

	if (!copy)
		return VGPU_NO_MEMORY;
	memset(&cur, 0, sizeof(cur));
	for (char *line = copy, *next; line && rc == VGPU_OK; line = next) {
		char *key, *value;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		strip(line);
		bool field = split_field(line, &key, &value);

		/* A record ends at a blank line or where the next one starts. */
		if (in_record && (!field || strcmp(key, "uuid") == 0)) {
			rc = keep_record(&list, &cur);
			memset(&cur, 0, sizeof(cur));
			in_record = false;
		}
		if (!field)
			continue;
		in_record = true;
		if (strcmp(key, "uuid") == 0 && strlen(value) == VGPU_UUID_STRLEN)
			memcpy(cur.uuid, value, VGPU_UUID_STRLEN + 1);
		else if (strcmp(key, "name-label") == 0)
			snprintf(cur.name_label, sizeof(cur.name_label), "%s", value);
		else if (strcmp(key, "power-state") == 0)
			snprintf(cur.power_state, sizeof(cur.power_state), "%s", value);
	}
	if (rc == VGPU_OK && in_record)
		rc = keep_record(&list, &cur);
	free(copy);
	if (rc != VGPU_OK) {
		free(list.vms);
		return rc;
	}
	*ret_vms = list.vms;
	*ret_count = list.count;
	return VGPU_OK;
}

int xe_list_vms(int timeout_s, struct xe_vm **ret_vms, size_t *ret_count, char *err,
		size_t err_size)
{
	const char *args[] = { "vm-list", "is-control-domain=false",
			       "params=uuid,name-label,power-state", NULL };
	struct vgpu_exec_result res;
	int rc = run_xe(args, timeout_s, &res, err, err_size);

	if (rc == VGPU_OK) {
		if (res.truncated) {
			snprintf(err, err_size, "xe vm-list printed more than %u bytes", XE_OUTPUT_MAX);
			rc = VGPU_LIMIT;
		} else {
			rc = xe_parse_vm_list(res.out, ret_vms, ret_count);
			if (rc != VGPU_OK)
				snprintf(err, err_size, "%s", vgpu_strerror(rc));
		}
	}
	vgpu_exec_result_free(&res);
	return rc;
}

/* `xe OP uuid=UUID [FLAG]`, output discarded. */
static int xe_vm_op(const char *op, const char *uuid, const char *flag, int timeout_s,
		    char *err, size_t err_size)
{
	char uuid_arg[64];
	const char *args[] = { op, uuid_arg, flag, NULL };
	struct vgpu_exec_result res;
	int rc;

	snprintf(uuid_arg, sizeof(uuid_arg), "uuid=%s", uuid);
	rc = run_xe(args, timeout_s, &res, err, err_size);
	vgpu_exec_result_free(&res);
	return rc;
}

int xe_shutdown(const char *uuid, int force, int timeout_s, char *err, size_t err_size)
{
	return xe_vm_op("vm-shutdown", uuid, force ? "--force" : NULL, timeout_s, err, err_size);
}

int xe_start(const char *uuid, int timeout_s, char *err, size_t err_size)
{
	return xe_vm_op("vm-start", uuid, NULL, timeout_s, err, err_size);
}
