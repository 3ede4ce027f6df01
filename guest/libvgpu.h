/* SPDX-License-Identifier: MIT */
/*
 * libvgpu.h - the guest's C API to the vgpu mediator.
 *
 * A program in a VM connects by URI, then runs the catalogue's ops either
 * blocking (vgpu_vector_add(), ...) or asynchronously (vgpu_submit() then
 * vgpu_wait()); many requests may be in flight on one client, and responses
 * come back in completion order, matched by request id. Every function
 * returns VGPU_OK or a negative code of vgpu_error.h; ret_* outputs are
 * written only on VGPU_OK. The library never prints, never keeps global
 * state and never raises SIGPIPE.
 *
 * Threads: a vgpu_client is not thread-safe. Use one client per thread, or
 * serialize every call on a client yourself; different clients are
 * independent.
 *
 * Transports (the URI):
 *   unix:/path/to/vm-<uuid>.sock   the mediator's Unix socket for this VM
 *   spool:/mnt/vgpu                the VM's spool directory (an absolute
 *                                  path; its req/ and resp/ are made by the
 *                                  mediator, never by the library)
 *   shm:/path/to/vm-<uuid>.sock    a shared-memory window, asked for on the
 *                                  VM's socket: the fast path (host processes)
 *   dev:/dev/vgpu0                 in a guest: the ring window of the VM's
 *                                  vgpu-stub device, in guest RAM (the vgpu
 *                                  driver's; docs/guest-driver.md)
 *
 * A dev: window works as a shm: one below (same ring, same calls), with
 * its size set by the driver (its window_mib parameter). One program at a
 * time has a device open. If the mediator goes away, requests in flight
 * fail with VGPU_IO_ERROR and so does the connection; connect again (the
 * device registers the window again once the mediator is back).
 *
 * Over shm, the mediator maps a window with this client: arrays placed in it
 * with vgpu_buffer_alloc() go to the GPU and back without a copy (the
 * mediator pins the window); other arrays are copied into a staging block
 * of the window at vgpu_submit() and outputs out of it at vgpu_wait(). The
 * window's data area is VGPU_SHM_MIB MiB (environment at vgpu_connect():
 * 1 to 2048, default 64; the mediator's shm_max_mib may refuse it). The
 * mediator may hand this client a window an earlier client of the same VM
 * had, not cleared (docs/mediator.md, Kept windows): clear what must not
 * be left behind before vgpu_close().
 *
 * Waiting polls for VGPU_SPIN_US microseconds (environment at
 * vgpu_connect(): 0 to 10000, default 200; socket and shm) before it
 * sleeps, so that a quick answer costs no wake-up; set 0 to never spin.
 *
 * Over spool, each request is a file published in req/ when vgpu_submit()
 * returns (written, fsync()ed and renamed, so it survives a crash of this
 * program), and each response a file in resp/ that vgpu_wait() polls for:
 * every 50 us at first, backing off to every 2 ms (VGPU_SPOOL_POLL_MAX_US in
 * the environment at vgpu_connect(): 100 to 1000000 us). Request ids are
 * then random 64-bit numbers, so that several processes (each with its own
 * clients) can share the directory; a client touches only its own files.
 * vgpu_close() leaves requests already published to the mediator (their
 * responses are then never collected by this client).
 *
 * Buffers: input and output arrays are the caller's. They are read and
 * written in place (no copies), so they must stay valid and untouched from
 * vgpu_submit() until vgpu_wait() for that request returns. An output's
 * content is unspecified unless the request's status is VGPU_OK. After a
 * connection failed, a shm window's buffers named by requests that did not
 * complete may still be written by the mediator until vgpu_close().
 */
#ifndef VGPU_LIBVGPU_H
#define VGPU_LIBVGPU_H

#include <stddef.h>
#include <stdint.h>

#include "vgpu_error.h"
#include "vgpu_protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vgpu_client vgpu_client;

/* Requests one client may have submitted and not yet waited for. */
#define VGPU_CLIENT_MAX_OUTSTANDING 1024

/* Where a request's time went. */
struct vgpu_timing {
	uint64_t queue_ns; /* queued in the mediator, as the mediator reports */
	uint64_t exec_ns;  /* executing, as the mediator reports */
	uint64_t total_ns; /* from vgpu_submit() to its response being read, measured here */
};

/* Called with a one-line description of why a connection failed. */
typedef void vgpu_log_fn(void *opaque, const char *message);

/*
 * Connect to the mediator named by @uri. *ret is freed with vgpu_close().
 * A NULL @uri means the default: $VGPU_TRANSPORT when set, else
 * dev:/dev/vgpu0 when that device exists (a guest with the driver), else
 * VGPU_NOT_FOUND.
 * VGPU_INVALID_PARAM for a malformed URI (unknown scheme, empty path,
 * control characters, a socket path too long for sockaddr_un, a relative
 * spool directory or device), VGPU_UNSUPPORTED for a transport this build lacks,
 * VGPU_BUSY when another program has the device (dev:), VGPU_TIMEOUT when
 * the device's window is not registered with the mediator within 30 s,
 * VGPU_NOT_FOUND when no socket is at the path, or when the spool
 * directory, its req/ or its resp/ is missing or not a directory (is the
 * VM's spool directory mounted? is the VM registered with the mediator?),
 * VGPU_DENIED without permission (spool: to write req/, or to read and
 * write resp/), VGPU_IO_ERROR when nobody listens, VGPU_NO_MEMORY.
 */
int vgpu_connect(const char *uri, vgpu_client **ret);

/* The URI vgpu_connect(NULL) uses: $VGPU_TRANSPORT, else "dev:/dev/vgpu0"
 * when that device exists, else NULL. */
const char *vgpu_default_transport(void);

/* Close the connection and free @c (NULL is fine). Requests not waited for
 * are abandoned: their buffers are never touched again. */
void vgpu_close(vgpu_client *c);

/* Send connection failures to @fn (NULL: nowhere, the default). */
void vgpu_client_set_log(vgpu_client *c, vgpu_log_fn *fn, void *opaque);

/*
 * Submit @op (enum vgpu_op) with @params; @in[0..) are the op's inputs
 * (vector_add: a, b; saxpy: x, y; sgemm: A, B, C; reduce_sum: x; the
 * others ignored and may be NULL) and @out receives the output (saxpy: y,
 * sgemm: C, which may alias the input of the same role; reduce_sum: one
 * float). params->vm_id is 0 or this VM's id; unused fields must be 0.
 * Blocks until the whole request is written (reading responses meanwhile).
 * *ret_request_id identifies the request for vgpu_wait().
 * VGPU_INVALID_PARAM for NULL arguments or bad parameters (shm: also a
 * pointer into the window that is not inside one vgpu_buffer_alloc()
 * block), VGPU_LIMIT for sizes past the protocol's ceiling or when
 * VGPU_CLIENT_MAX_OUTSTANDING requests are outstanding, VGPU_NO_MEMORY (shm)
 * when the window has no room to stage an array, VGPU_IO_ERROR or VGPU_PROTOCOL once the
 * connection has failed (it stays failed: connect again).
 */
int vgpu_submit(vgpu_client *c, int op, const struct vgpu_op_params *params,
		const float *const in[3], float *out, uint64_t *ret_request_id);

/*
 * Wait at most @timeout_ms (-1: forever, 0: just look) for request
 * @request_id and return its status: VGPU_OK, or the mediator's error
 * (VGPU_BUSY when its queue was full, VGPU_DENIED, VGPU_LIMIT, ...), or
 * VGPU_IO_ERROR / VGPU_PROTOCOL when the connection failed before the
 * response was read (spool: VGPU_PROTOCOL for a response file that is not
 * a regular file, is larger than the request's answer can be, or does not
 * match its name or its header; the file is removed and the client fails
 * like a socket with a bad response). Each of those ends the request: its id is forgotten.
 * VGPU_TIMEOUT leaves it outstanding (wait again); VGPU_NOT_FOUND means
 * @request_id is not outstanding (never submitted, or already waited for);
 * VGPU_INVALID_PARAM for a NULL @c or a @timeout_ms below -1. Responses to other requests that arrive meanwhile
 * are kept for their own vgpu_wait(). *ret_timing (may be NULL) is written
 * only when the status is VGPU_OK.
 */
int vgpu_wait(vgpu_client *c, uint64_t request_id, int timeout_ms,
	      struct vgpu_timing *ret_timing);

/*
 * Memory for op arrays, 64-byte aligned, of at least @size bytes: in the
 * shared window on a shm: connection (zero-copy requests), ordinary memory
 * otherwise. Free it with vgpu_buffer_free() on the same client before
 * vgpu_close(), which unmaps a window. VGPU_NO_MEMORY when the window (or
 * the heap) has no room, VGPU_LIMIT for a size past the whole window,
 * VGPU_INVALID_PARAM for NULL arguments. free: VGPU_OK (also for NULL); on
 * a shm: connection VGPU_INVALID_PARAM for a pointer that vgpu_buffer_alloc()
 * did not return, elsewhere such a pointer is undefined behaviour (free()).
 */
int vgpu_buffer_alloc(vgpu_client *c, size_t size, void **ret);
int vgpu_buffer_free(vgpu_client *c, void *p);

/* Blocking ops: submit and wait. @ret_timing may be NULL. */

/* out[i] = a[i] + b[i] for i < n. */
int vgpu_vector_add(vgpu_client *c, const float *a, const float *b, float *out, size_t n,
		    struct vgpu_timing *ret_timing);

/* y[i] = alpha * x[i] + y[i] for i < n; @y is updated in place. */
int vgpu_saxpy(vgpu_client *c, float alpha, const float *x, float *y, size_t n,
	       struct vgpu_timing *ret_timing);

/* C = alpha * A B + beta * C, row-major, A m x k, B k x n, C m x n, in place. */
int vgpu_sgemm(vgpu_client *c, size_t m, size_t n, size_t k, float alpha, const float *A,
	       const float *B, float beta, float *C, struct vgpu_timing *ret_timing);

/* *ret_sum = x[0] + ... + x[n - 1]. */
int vgpu_reduce_sum(vgpu_client *c, const float *x, size_t n, float *ret_sum,
		    struct vgpu_timing *ret_timing);

#ifdef __cplusplus
}
#endif

#endif
