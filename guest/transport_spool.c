/* SPDX-License-Identifier: MIT */
/*
 * transport_spool.c - the spool transport: the VM's spool directory D
 * (SPOOL/<vm-uuid>/ in dom0, NFS-mounted at /mnt/vgpu in the VM), whose
 * req/ and resp/ the mediator made. Each request message becomes one file:
 * written as req/.tmp-<pid>-<random>, synced, and published by rename as
 * req/<16 hex digits of its id>.req. Its response appears as
 * resp/<id>.resp (also published by rename), found by polling (inotify
 * does not see an NFS server's changes), read whole and removed.
 *
 * To the client core it looks like the socket's byte stream: bytes sent
 * are cut at message boundaries into request files, and each response
 * file found is handed back as one whole message, only after its size was
 * checked against its header and against what its request can get back.
 * The core then checks the message as it checks any response.
 *
 * Must never: create req/ or resp/; follow a symlink or open anything but
 * a regular file in them (O_NOFOLLOW; O_NONBLOCK so that a FIFO cannot
 * hang us); read a response file larger than its request's answer can be;
 * touch a file of an id it did not publish itself (other processes share
 * D); leave a temporary file behind; or sleep anywhere but wait().
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "libvgpu.h"
#include "transport.h"

#define POLL_FIRST_US 50u
#define POLL_MAX_US_DEFAULT 2000u
#define POLL_MAX_US_LOW 100u
#define POLL_MAX_US_HIGH 1000000u
#define PREFIX VGPU_PROTO_RESPONSE_PREFIX /* 56: header + fixed block, both ways */

/* A published request, waiting for its response file. */
struct spool_wait {
	uint64_t id;
	uint64_t max_size; /* bytes its response file may have */
};

struct spool_transport {
	struct vgpu_transport base; /* first: the core sees only this */
	int req_fd, resp_fd;        /* D/req and D/resp (O_PATH) */
	unsigned poll_us, poll_max_us;
	struct vgpu_proto_limits limits; /* the protocol's ceilings */
	/* The request being written. */
	uint8_t whead[PREFIX];      /* its first bytes, until its size is known */
	uint64_t wgot, wtotal;      /* bytes taken; its whole size (0: not known) */
	uint64_t wid, wmax;         /* its id; the most its response may be */
	int wfd;                    /* its temporary file, or -1 */
	char wtmp[64];              /* the temporary file's name in req/ */
	/* The response being handed back. */
	uint8_t rhead[PREFIX];      /* its header and fixed block */
	uint64_t rgot, rsize;       /* bytes handed back; the file's size */
	int rfd;                    /* the response file, or -1 */
	char rname[32];             /* its name in resp/ */
	/* Published requests without a response yet. */
	size_t nwait, scan;         /* how many; where the next scan starts */
	struct spool_wait wait[VGPU_CLIENT_MAX_OUTSTANDING];
};

__attribute__((format(printf, 2, 3)))
static void why(struct spool_transport *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->base.why, sizeof(s->base.why), fmt, ap);
	va_end(ap);
}

static int errno_to_vgpu(int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
	case ELOOP:
		return VGPU_NOT_FOUND;
	case EACCES:
	case EPERM:
	case EROFS:
		return VGPU_DENIED;
	case ENOMEM:
		return VGPU_NO_MEMORY;
	default:
		return VGPU_IO_ERROR;
	}
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static float get_float(const uint8_t *p)
{
	uint32_t u = get32(p);
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

static void id_name(uint64_t id, const char *suffix, char *out, size_t size)
{
	snprintf(out, size, "%016" PRIx64 "%s", id, suffix);
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_all(int fd, uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* --- Requests ------------------------------------------------------------ */

/* Is @id free: neither req/<id>.req nor resp/<id>.resp exists? */
static int spool_claim_id(struct vgpu_transport *t, uint64_t id)
{
	struct spool_transport *s = (struct spool_transport *)t;
	const int dirs[2] = { s->req_fd, s->resp_fd };
	const char *const suffix[2] = { ".req", ".resp" };
	char name[32];
	struct stat st;

	for (int i = 0; i < 2; i++) {
		id_name(id, suffix[i], name, sizeof(name));
		if (fstatat(dirs[i], name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			return VGPU_BUSY;
		if (errno != ENOENT) {
			why(s, "spool: cannot look at %s/%s: %s", i ? "resp" : "req", name,
			    strerror(errno));
			return VGPU_IO_ERROR;
		}
	}
	return VGPU_OK;
}

/* Drop the request being written, and its temporary file. */
static void abort_request(struct spool_transport *s)
{
	if (s->wfd >= 0) {
		close(s->wfd);
		unlinkat(s->req_fd, s->wtmp, 0);
	}
	s->wfd = -1;
	s->wgot = s->wtotal = 0;
}

/* The request's first 56 bytes are in: size it, then open its temporary file. */
static int start_request(struct spool_transport *s)
{
	struct vgpu_msg_header h;
	struct vgpu_op_params p;
	uint64_t in_count[3], out_count, need = VGPU_PROTO_PARAMS_SIZE, rnd;
	const uint8_t *b = s->whead + VGPU_PROTO_HEADER_SIZE;
	int n_inputs;

	if (vgpu_proto_decode_header(s->whead, &s->limits, &h) != VGPU_OK ||
	    h.type != VGPU_MSG_REQUEST) {
		why(s, "spool: the client core sent a malformed request header");
		return VGPU_IO_ERROR;
	}
	p = (struct vgpu_op_params){ .vm_id = get32(b), .m = get32(b + 4), .n = get32(b + 8),
				     .k = get32(b + 12), .alpha = get_float(b + 16),
				     .beta = get_float(b + 20) };
	if (vgpu_proto_op_shape(h.op, &p, &s->limits, &n_inputs, in_count, &out_count) !=
	    VGPU_OK) {
		why(s, "spool: the client core sent invalid parameters");
		return VGPU_IO_ERROR;
	}
	for (int i = 0; i < n_inputs; i++)
		need += in_count[i] * sizeof(float);
	if (need != h.payload_len) {
		why(s, "spool: the client core sent a request of the wrong size");
		return VGPU_IO_ERROR;
	}
	s->wid = h.request_id;
	s->wtotal = VGPU_PROTO_HEADER_SIZE + (uint64_t)h.payload_len;
	s->wmax = PREFIX + out_count * sizeof(float);
	for (int tries = 0; s->wfd < 0; tries++) {
		if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			continue;
		snprintf(s->wtmp, sizeof(s->wtmp), ".tmp-%ld-%016" PRIx64, (long)getpid(), rnd);
		s->wfd = openat(s->req_fd, s->wtmp,
				O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (s->wfd < 0 && (errno != EEXIST || tries >= 8)) {
			why(s, "spool: cannot create req/%s: %s", s->wtmp, strerror(errno));
			return VGPU_IO_ERROR;
		}
	}
	if (write_all(s->wfd, s->whead, PREFIX) != 0) {
		why(s, "spool: cannot write req/%s: %s", s->wtmp, strerror(errno));
		return VGPU_IO_ERROR;
	}
	return VGPU_OK;
}

/* The whole request is written: sync it and publish it as req/<id>.req. */
static int publish_request(struct spool_transport *s)
{
	char name[32];
	int fd = s->wfd;

	int err = fsync(fd) != 0 ? errno : 0;

	id_name(s->wid, ".req", name, sizeof(name));
	s->wfd = -1;
	if (close(fd) != 0 && !err) /* NFS reports write errors here too */
		err = errno;
	if (err) {
		why(s, "spool: cannot write req/%s: %s", s->wtmp, strerror(err));
		unlinkat(s->req_fd, s->wtmp, 0);
		s->wgot = s->wtotal = 0;
		return VGPU_IO_ERROR;
	}
	if (renameat(s->req_fd, s->wtmp, s->req_fd, name) != 0) {
		why(s, "spool: cannot publish req/%s: %s", name, strerror(errno));
		unlinkat(s->req_fd, s->wtmp, 0);
		s->wgot = s->wtotal = 0;
		return VGPU_IO_ERROR;
	}
	s->wait[s->nwait].id = s->wid;
	s->wait[s->nwait].max_size = s->wmax;
	s->nwait++;
	s->wgot = s->wtotal = 0;
	s->poll_us = POLL_FIRST_US;
	return VGPU_OK;
}

/* Takes everything (files do not push back); publishes each request when
 * its last byte is written. */
static int spool_send(struct vgpu_transport *t, const struct iovec *iov, int iovcnt,
		      size_t *ret_len)
{
	struct spool_transport *s = (struct spool_transport *)t;
	size_t taken = 0;

	for (int i = 0; i < iovcnt; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t len = iov[i].iov_len;

		while (len) {
			size_t n;
			int rc = VGPU_OK;

			if (s->wgot < PREFIX) {
				if (s->wgot == 0 && s->nwait == VGPU_CLIENT_MAX_OUTSTANDING) {
					why(s, "spool: too many requests outstanding");
					return VGPU_IO_ERROR;
				}
				n = len < PREFIX - s->wgot ? len : PREFIX - s->wgot;
				memcpy(s->whead + s->wgot, p, n);
				s->wgot += n;
				if (s->wgot == PREFIX)
					rc = start_request(s);
			} else {
				uint64_t left = s->wtotal - s->wgot;

				n = len < left ? len : (size_t)left;
				if (write_all(s->wfd, p, n) != 0) {
					why(s, "spool: cannot write req/%s: %s", s->wtmp,
					    strerror(errno));
					rc = VGPU_IO_ERROR;
				}
				s->wgot += n;
			}
			if (rc == VGPU_OK && s->wtotal && s->wgot == s->wtotal)
				rc = publish_request(s);
			if (rc != VGPU_OK) {
				abort_request(s);
				return rc;
			}
			p += n;
			len -= n;
			taken += n;
		}
	}
	*ret_len = taken;
	return VGPU_OK;
}

/* --- Responses ----------------------------------------------------------- */

static void forget(struct spool_transport *s, size_t i)
{
	s->wait[i] = s->wait[--s->nwait];
}

/*
 * resp/<id>.resp is there (@st, not followed): refuse it (removed, and
 * VGPU_PROTOCOL), or open it and read its 56-byte prefix. *ret_gone when
 * it vanished in between (not ready after all).
 */
static int take_response(struct spool_transport *s, const struct spool_wait *w, struct stat *st,
			 bool *ret_gone)
{
	struct vgpu_msg_header h;
	const char *bad = NULL;
	int fd = -1;

	*ret_gone = false;
	if (S_ISLNK(st->st_mode))
		bad = "is a symlink";
	else if (!S_ISREG(st->st_mode))
		bad = "is not a regular file";
	if (!bad) {
		fd = openat(s->resp_fd, s->rname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0 && errno == ENOENT) {
			*ret_gone = true;
			return VGPU_OK;
		}
		if (fd < 0 && errno == ELOOP)
			bad = "is a symlink";
		else if (fd < 0) {
			why(s, "spool: cannot open resp/%s: %s", s->rname, strerror(errno));
			return VGPU_IO_ERROR;
		} else if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode))
			bad = "is not a regular file";
	}
	if (!bad && (uint64_t)st->st_size > w->max_size)
		bad = "is larger than any answer to its request";
	else if (!bad && st->st_size < PREFIX)
		bad = "is too short to be a response";
	else if (!bad && read_all(fd, s->rhead, PREFIX) != 0)
		bad = "cannot be read";
	else if (!bad && (vgpu_proto_decode_header(s->rhead, &s->limits, &h) != VGPU_OK ||
			  h.type != VGPU_MSG_RESPONSE))
		bad = "has a malformed header";
	else if (!bad && h.request_id != w->id)
		bad = "names another request";
	else if (!bad && VGPU_PROTO_HEADER_SIZE + (uint64_t)h.payload_len != (uint64_t)st->st_size)
		bad = "is not the size its header gives";
	if (bad) {
		why(s, "spool: response file resp/%s %s", s->rname, bad);
		if (fd >= 0)
			close(fd);
		unlinkat(s->resp_fd, s->rname, 0); /* ours, and it is over */
		return VGPU_PROTOCOL;
	}
	s->rfd = fd;
	s->rsize = (uint64_t)st->st_size;
	s->rgot = 0;
	return VGPU_OK;
}

/* Look once for the response file of each published request; open the
 * first found. s->rfd stays -1 when there is none. */
static int find_response(struct spool_transport *s)
{
	for (size_t k = 0; k < s->nwait; k++) {
		size_t i = (s->scan + k) % s->nwait;
		struct spool_wait w = s->wait[i];
		struct stat st;
		bool gone;
		int rc;

		id_name(w.id, ".resp", s->rname, sizeof(s->rname));
		if (fstatat(s->resp_fd, s->rname, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno == ENOENT)
				continue;
			why(s, "spool: cannot look at resp/%s: %s", s->rname, strerror(errno));
			return VGPU_IO_ERROR;
		}
		rc = take_response(s, &w, &st, &gone);
		if (rc == VGPU_OK && gone)
			continue;
		forget(s, i);
		s->scan = s->nwait ? i % s->nwait : 0;
		if (rc == VGPU_OK)
			s->poll_us = POLL_FIRST_US;
		return rc;
	}
	return VGPU_OK;
}

static int spool_recv(struct vgpu_transport *t, void *buf, size_t len, size_t *ret_len)
{
	struct spool_transport *s = (struct spool_transport *)t;
	uint64_t left;
	size_t n;

	*ret_len = 0;
	if (s->rfd < 0) {
		int rc = find_response(s);

		if (rc != VGPU_OK || s->rfd < 0)
			return rc;
	}
	left = s->rsize - s->rgot;
	n = len < left ? len : (size_t)left;
	if (s->rgot < PREFIX) {
		n = n < PREFIX - s->rgot ? n : (size_t)(PREFIX - s->rgot);
		memcpy(buf, s->rhead + s->rgot, n);
	} else if (n) {
		ssize_t r;

		do
			r = read(s->rfd, buf, n);
		while (r < 0 && errno == EINTR);
		if (r <= 0) {
			why(s, "spool: response file resp/%s %s", s->rname,
			    r == 0 ? "was cut short while being read" : strerror(errno));
			return r == 0 ? VGPU_PROTOCOL : VGPU_IO_ERROR; /* close() removes it */
		}
		n = (size_t)r;
	}
	s->rgot += n;
	if (s->rgot == s->rsize) {
		/* Read whole: it is ours to remove. */
		close(s->rfd);
		s->rfd = -1;
		unlinkat(s->resp_fd, s->rname, 0);
	}
	*ret_len = n;
	return VGPU_OK;
}

/*
 * Files are always writable. A response is never announced (NFS): sleep
 * one poll interval (50 us, doubling up to poll_max_us, back to 50 us when
 * something is published or found) and say "look", so that the core's
 * recv() checks the files again.
 */
static int spool_wait_ready(struct vgpu_transport *t, int want, int timeout_ms, int *ret_ready)
{
	struct spool_transport *s = (struct spool_transport *)t;
	uint64_t us = s->poll_us;
	struct timespec ts;

	if ((want & VGPU_TRANSPORT_SEND) || !(want & VGPU_TRANSPORT_RECV) || s->rfd >= 0) {
		*ret_ready = want & (VGPU_TRANSPORT_SEND | (s->rfd >= 0 ? VGPU_TRANSPORT_RECV : 0));
		return VGPU_OK;
	}
	if (timeout_ms >= 0 && (uint64_t)timeout_ms * 1000u < us)
		us = (uint64_t)timeout_ms * 1000u;
	ts.tv_sec = (time_t)(us / 1000000u);
	ts.tv_nsec = (long)(us % 1000000u) * 1000;
	nanosleep(&ts, NULL); /* EINTR: look early; the core's deadline decides */
	s->poll_us = s->poll_us * 2 < s->poll_max_us ? s->poll_us * 2 : s->poll_max_us;
	*ret_ready = VGPU_TRANSPORT_RECV;
	return VGPU_OK;
}

/* Remove what only we can see (an unpublished temporary file, a response
 * being read); published requests are the mediator's now. */
static void spool_close(struct vgpu_transport *t)
{
	struct spool_transport *s = (struct spool_transport *)t;

	abort_request(s);
	if (s->rfd >= 0) {
		close(s->rfd);
		unlinkat(s->resp_fd, s->rname, 0);
	}
	close(s->req_fd);
	close(s->resp_fd);
	free(s);
}

static const struct vgpu_transport_ops spool_ops = {
	.name = "spool",
	.send = spool_send,
	.recv = spool_recv,
	.wait = spool_wait_ready,
	.close = spool_close,
	.claim_id = spool_claim_id,
};

/* VGPU_SPOOL_POLL_MAX_US: digits only, clamped to 100..1000000; else 2000. */
static unsigned poll_max_us(void)
{
	return (unsigned)vgpu_env_ull("VGPU_SPOOL_POLL_MAX_US", POLL_MAX_US_LOW, POLL_MAX_US_HIGH,
				      POLL_MAX_US_DEFAULT);
}

/* @dir's subdirectory @name, which must be a real directory (not a symlink). */
static int open_sub(int dfd, const char *name, int mode, int *ret_fd)
{
	int fd = openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return errno_to_vgpu(errno);
	if (faccessat(dfd, name, mode, 0) != 0) {
		int rc = errno_to_vgpu(errno);

		close(fd);
		return rc;
	}
	*ret_fd = fd;
	return VGPU_OK;
}

int vgpu_transport_spool_open(const char *dir, struct vgpu_transport **ret)
{
	struct spool_transport *s;
	int dfd, rc;

	if (dir[0] != '/')
		return VGPU_INVALID_PARAM;
	s = calloc(1, sizeof(*s));
	if (!s)
		return VGPU_NO_MEMORY;
	dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC); /* D itself may be a symlink */
	if (dfd < 0) {
		free(s);
		return errno_to_vgpu(errno);
	}
	s->req_fd = s->resp_fd = -1;
	rc = open_sub(dfd, "req", W_OK | X_OK, &s->req_fd);
	if (rc == VGPU_OK)
		rc = open_sub(dfd, "resp", R_OK | W_OK | X_OK, &s->resp_fd);
	close(dfd);
	if (rc != VGPU_OK) {
		if (s->req_fd >= 0)
			close(s->req_fd);
		free(s);
		return rc;
	}
	s->base.ops = &spool_ops;
	s->wfd = s->rfd = -1;
	s->poll_us = POLL_FIRST_US;
	s->poll_max_us = poll_max_us();
	s->limits.max_payload = VGPU_PROTO_MAX_PAYLOAD;
	s->limits.max_elems = VGPU_PROTO_MAX_PAYLOAD / sizeof(float);
	s->limits.max_dim = UINT32_MAX;
	*ret = &s->base;
	return VGPU_OK;
}
