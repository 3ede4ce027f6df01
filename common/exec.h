/* SPDX-License-Identifier: MIT */
/*
 * exec.h - run a command by argument vector, never through a shell, with a
 * deadline and bounded capture of its output. vgpu-admin runs `xe` with it and
 * vgpu-qemu-wrapper runs `xenstore-read`.
 */
#ifndef VGPU_EXEC_H
#define VGPU_EXEC_H

#include <stdbool.h>
#include <stddef.h>

struct vgpu_exec_result {
	int status;       /* exit status 0..255, or 128 + signal number */
	char *out;        /* stdout, NUL-terminated, malloc()ed */
	size_t out_len;
	char *err;        /* stderr, NUL-terminated, malloc()ed */
	size_t err_len;
	bool truncated;   /* output past max_bytes was read and dropped */
};

/*
 * Run argv[0] (looked up on PATH) with @argv (NULL-terminated), stdin from
 * /dev/null, in its own process group. Captures at most @max_bytes of stdout
 * and of stderr. When @timeout_ms passes, the whole process group gets
 * SIGTERM, then SIGKILL a second later.
 *
 * Returns VGPU_OK when the program ran and ended (whatever its status),
 * VGPU_NOT_FOUND when it does not exist, VGPU_DENIED when it cannot be
 * executed, VGPU_TIMEOUT when it was killed at the deadline, VGPU_IO_ERROR or
 * VGPU_NO_MEMORY otherwise. *ret is filled on VGPU_OK and VGPU_TIMEOUT (with
 * what was captured); release it with vgpu_exec_result_free().
 */
int vgpu_exec(const char *const argv[], int timeout_ms, size_t max_bytes,
	      struct vgpu_exec_result *ret);

/* Free the buffers of @r (accepts NULL and a zeroed result). */
void vgpu_exec_result_free(struct vgpu_exec_result *r);

#endif
