/* SPDX-License-Identifier: MIT */
/*
 * transport.h - how libvgpu moves message bytes, behind one small ops
 * struct (internal; not installed).
 *
 * A transport is a byte stream in each direction: the client core frames
 * messages itself. Every operation is non-blocking except wait(), so that
 * the core can read responses while a large request is still being
 * written (a mediator that stops reading until its responses are taken
 * would otherwise deadlock with us). The socket transport is one
 * implementation; the spool transport (transport_spool.c) is another: it
 * cuts the bytes sent at message boundaries into request files, and hands
 * back the response files it finds one whole message at a time, so the
 * core frames and checks spool responses exactly as socket ones.
 *
 * Must never: block in send() or recv(), raise SIGPIPE, leak a descriptor
 * into a child (everything is O_CLOEXEC), or keep state outside its struct.
 */
#ifndef VGPU_GUEST_TRANSPORT_H
#define VGPU_GUEST_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vgpu_error.h"

struct vgpu_transport;

/* Readiness bits for wait(). */
#define VGPU_TRANSPORT_RECV 1
#define VGPU_TRANSPORT_SEND 2

struct vgpu_transport_ops {
	const char *name;
	/*
	 * Write as much of @iov[0..iovcnt) as the channel takes now, in order;
	 * *ret_len: bytes taken (0 when it would block). VGPU_IO_ERROR when
	 * the channel is gone.
	 */
	int (*send)(struct vgpu_transport *t, const struct iovec *iov, int iovcnt,
		    size_t *ret_len);
	/*
	 * Read up to @len bytes that are ready now into @buf; *ret_len 0 when
	 * none are. VGPU_IO_ERROR at the end of the stream or on failure.
	 */
	int (*recv)(struct vgpu_transport *t, void *buf, size_t len, size_t *ret_len);
	/*
	 * Wait at most @timeout_ms (-1: forever) until an operation in @want
	 * (VGPU_TRANSPORT_* bits) can make progress; *ret_ready gets those that
	 * can (0 on timeout). A broken channel reports everything in @want
	 * ready, so that the next send() or recv() says what broke. A channel
	 * that announces nothing (spool: files on NFS) sleeps one poll
	 * interval and reports RECV, meaning "look again": recv() may then
	 * find nothing, and the core waits again.
	 */
	int (*wait)(struct vgpu_transport *t, int want, int timeout_ms, int *ret_ready);
	/* Release everything; @t is gone afterwards. */
	void (*close)(struct vgpu_transport *t);
	/*
	 * Optional. NULL: the core numbers requests 1, 2, 3, ... (ids unique on
	 * this connection). Otherwise ids must also be unique among other
	 * processes sharing the channel: the core draws random non-zero ids and
	 * asks claim_id() about each before using it: VGPU_OK, VGPU_BUSY when
	 * the id is in use (draw another), or why the channel failed.
	 */
	int (*claim_id)(struct vgpu_transport *t, uint64_t id);
};

/*
 * The part every transport's own struct starts with. send() and recv()
 * fail with VGPU_IO_ERROR, or VGPU_PROTOCOL for bytes the peer got wrong
 * that the stream cannot show (spool: a response file that is a symlink,
 * oversized, or torn); a transport may describe the failure in @why, which
 * the core then logs instead of its own words.
 */
struct vgpu_transport {
	const struct vgpu_transport_ops *ops;
	char why[256]; /* "" or the last failure, one line */
};

enum vgpu_uri_kind {
	VGPU_URI_UNIX = 1,  /* unix:PATH - a Unix stream socket */
	VGPU_URI_SPOOL = 2, /* spool:DIR - the VM's spool directory */
	VGPU_URI_SHM = 3,   /* shm:PATH - a shared-memory window asked for on a socket */
	VGPU_URI_DEV = 4,   /* dev:PATH - the ring window of a vgpu-stub device (/dev/vgpuN) */
};

/* A parsed transport URI. */
struct vgpu_uri {
	enum vgpu_uri_kind kind;
	char path[4096]; /* the socket or directory, as written (never empty) */
};

/*
 * Parse @uri ("unix:/run/vgpu/vm-<uuid>.sock", "spool:/mnt/vgpu",
 * "shm:/run/vgpu/vm-<uuid>.sock", "dev:/dev/vgpu0").
 * VGPU_INVALID_PARAM for NULL, an unknown scheme, an empty path, a control
 * character in the path, a socket path (unix:, shm:) longer than a sockaddr_un holds, or
 * a spool directory or device that is not an absolute path; VGPU_LIMIT for a path of
 * 4096 bytes or more. @ret is written only on success.
 */
int vgpu_uri_parse(const char *uri, struct vgpu_uri *ret);

/* Connect a blocking, close-on-exec Unix stream socket to @path: the
 * errors of vgpu_transport_unix_open(). */
int vgpu_unix_connect(const char *path, int *ret_fd);

/*
 * Connect to the Unix stream socket at @path. VGPU_NOT_FOUND when nothing
 * is there, VGPU_DENIED without permission, VGPU_IO_ERROR when nobody
 * listens or the connect fails otherwise, VGPU_NO_MEMORY.
 */
int vgpu_transport_unix_open(const char *path, struct vgpu_transport **ret);

/*
 * Use the spool directory @dir (absolute): @dir/req and @dir/resp must be
 * there already (the mediator makes them; this never does). VGPU_NOT_FOUND
 * when @dir, req/ or resp/ is missing or not a directory (a symlinked req/
 * or resp/ counts as missing), VGPU_DENIED without permission to write
 * req/ or to read and write resp/, VGPU_INVALID_PARAM for a relative @dir,
 * VGPU_IO_ERROR, VGPU_NO_MEMORY. Polls for responses at intervals from
 * 50 us doubling to VGPU_SPOOL_POLL_MAX_US (environment, 100 to 1000000,
 * default 2000).
 */
int vgpu_transport_spool_open(const char *dir, struct vgpu_transport **ret);

/* Open the transport @uri names: vgpu_uri_parse()'s and the transport's errors. */
int vgpu_transport_open(const char *uri, struct vgpu_transport **ret);

/* The environment variable @name (secure_getenv) as a decimal number
 * clamped to [@low, @high]; @def when unset, empty or not all digits. */
unsigned long long vgpu_env_ull(const char *name, unsigned long long low, unsigned long long high,
				unsigned long long def);

#endif
