/* SPDX-License-Identifier: MIT */
/*
 * vgpu_error.h - the project's one error space.
 *
 * Every library and tool of vgpu returns these codes. The first five are the
 * seed's public API and keep their values forever; new codes are only ever
 * appended, and each has one line in the table of error.c.
 */
#ifndef VGPU_ERROR_H
#define VGPU_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum vgpu_error {
	VGPU_OK = 0,                 /* success */
	VGPU_ERROR = -1,             /* general failure */
	VGPU_NOT_FOUND = -2,         /* VM, pool or file not found */
	VGPU_INVALID_PARAM = -3,     /* a parameter is malformed or out of range */
	VGPU_DB_ERROR = -4,          /* the registry database failed */
	VGPU_EXISTS = -5,            /* already registered, or the id is taken */
	VGPU_NO_MEMORY = -6,         /* out of memory */
	VGPU_IO_ERROR = -7,          /* a read, write or exec failed */
	VGPU_TIMEOUT = -8,           /* a command or wait ran past its deadline */
	VGPU_BUSY = -9,              /* resource busy; try again */
	VGPU_DENIED = -10,           /* permission denied */
	VGPU_AMBIGUOUS = -11,        /* more than one match where one was needed */
	VGPU_UNSUPPORTED = -12,      /* e.g. a database newer than this build */
	VGPU_LIMIT = -13,            /* a bound was reached (ids, sizes, counts) */
	VGPU_PROTOCOL = -14,         /* a malformed message */
	VGPU_BACKEND = -15,          /* the GPU (or CPU) backend failed the work */
	VGPU_SHUTDOWN = -16,         /* the mediator is stopping */
};

/*
 * A short English description of @code, for messages. Never NULL: unknown
 * codes map to "unknown error". The string is static; do not free it.
 */
const char *vgpu_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif
