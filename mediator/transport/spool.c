/* SPDX-License-Identifier: MIT */
/*
 * spool.c - the spool transport: the seed's shared directory, made safe.
 *
 * SPOOL/<vm-uuid>/req/ and resp/ belong to one VM each (dom0 exports each
 * VM's directory to that VM alone); the directory a request file arrived in
 * is its identity. A client publishes a request by renaming it to
 * req/<16 hex digits of request_id>.req; names starting with '.' are its
 * temporary files and are ignored. The mediator answers with
 * resp/<id>.resp, also published by rename.
 *
 * Nothing accepted is lost: an accepted request is first moved (rename) into
 * SPOOL/.journal/<vm-uuid>/<id>.req, outside what the guest can see. When it
 * is answered, the response is written to the journal as .tmp-<id> (never
 * into resp/, whose names the guest controls: a FIFO or a hard link placed
 * there must not block the loop or be written through) and synced, the
 * journal entry is renamed to <id>.done, the response is published (renamed
 * into resp/), and the entry removed. After a crash, at start-up: <id>.req
 * entries are queued again (they were never answered); <id>.done entries
 * publish a response still in its temporary file, or are dropped (already
 * published, maybe already read); other temporary files are removed. So every accepted request is answered exactly once across
 * a crash of the mediator: renames are atomic, and the page cache outlives
 * the process. With spool_sync = yes every step is also fsync()ed, so that
 * the same holds across a crash of the host, at a few ms per request.
 *
 * Temporary files a dead client left in req/, and answers nobody collected
 * in resp/, are removed once older than spool_stale_s.
 *
 * Who may write: req/ and resp/ belong to the VM's own uid and gid
 * (spool_uid_base + vm_id; its NFS export squashes the guest to them), mode
 * 0700, and answers are that uid's, 0600: no other local user, and no
 * other VM's export, can read or write them.
 *
 * A request file is read in steps, each checked before the next: its
 * size, its header and parameter block (admission: limits, vm_id, queue
 * room, the VM's budget), and only then its payload, into a buffer taken
 * from the VM's budget. Payloads over SPOOL_INLINE bytes are read, and
 * answers over it written, on a worker thread (worker.h), so a large file
 * delays no other VM.
 *
 * Must never: follow a symlink (every open is O_NOFOLLOW), read a file that
 * is not regular or is larger than the limits, keep a file with an unexpected
 * name (it is removed and logged), or let one VM's files reach another's.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "mediator.h"

#define SELF (&vgpu_transport_spool)
#define ID_HEX 16
#define SPOOL_INLINE (64u << 10) /* payloads read and answers written on the loop
				   * thread, bytes; larger ones on a worker */
#define SCAN_MAX 64               /* files taken per VM per scan: the rest wait for the
				   * next one (spool_poll_ms), so that a VM that drops
				   * thousands of files delays the loop a bounded time */
#define REOWN_MAX 4096            /* names of resp/ read when a VM's vm_id changes */

struct spool_vm {
	struct mediator *m;
	struct vgpu_vm *vm;          /* NULL once the VM left the registry */
	uid_t uid;                   /* the VM's: owner of req/, resp/ and answers */
	int req_fd, resp_fd, journal_fd;
	int wd;                      /* inotify watch on req/ */
	int refs;                    /* the VM + each request not yet answered */
};

struct spool_reply {
	struct spool_vm *sv;
	uint64_t id;
};

/* An answer over SPOOL_INLINE, written on a worker. */
struct spool_write {
	struct vgpu_job job;
	struct vgpu_request *req;    /* its reply_ctx, a struct spool_reply, holds sv */
	uid_t uid;                   /* the answer's owner */
	int rc, err;
};

/* A payload read on a worker. */
struct spool_read {
	struct vgpu_job job;
	struct vgpu_request *req;    /* its reply holds the spool_vm's reference */
	int rc;
};

struct spool {
	int lock_fd, dir_fd, journal_root_fd, rejected_fd, ino_fd, timer_fd;
	uint64_t last_sweep_ns;
	struct vgpu_loop_watch ino_watch, timer_watch;
	bool accepting;
};

static struct spool *spool_of(struct mediator *m)
{
	return vgpu_transport_ctx(m, SELF);
}

static void sv_unref(struct spool_vm *sv)
{
	if (--sv->refs > 0)
		return;
	close(sv->req_fd);
	close(sv->resp_fd);
	close(sv->journal_fd);
	free(sv);
}

/* "<16 hex>.req" (or .done): the id, or false. */
static bool parse_name(const char *name, const char *suffix, uint64_t *ret_id)
{
	uint64_t id = 0;

	for (int i = 0; i < ID_HEX; i++) {
		char c = name[i];

		if (c >= '0' && c <= '9')
			id = id << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			id = id << 4 | (uint64_t)(c - 'a' + 10);
		else
			return false;
	}
	if (strcmp(name + ID_HEX, suffix) != 0)
		return false;
	*ret_id = id;
	return true;
}

static void id_name(uint64_t id, const char *suffix, char *out, size_t size)
{
	snprintf(out, size, "%016" PRIx64 "%s", id, suffix);
}

/* The journal's name for an answer being written: ".tmp-<16 hex>". */
static void tmp_name(uint64_t id, char *out, size_t size)
{
	snprintf(out, size, ".tmp-%016" PRIx64, id);
}

static int open_dir_at(int at, const char *name, bool create, mode_t mode)
{
	if (create && mkdirat(at, name, mode) != 0 && errno != EEXIST)
		return -1;
	return openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Write @len bytes of @data as the journal's .tmp-<id>, @uid's, 0600
 * (@uid: the VM's when the answer was due; a worker must not read sv->uid,
 * which the loop changes with the VM's vm_id), synced; 0 or -1. */
static int write_tmp_response(struct spool_vm *sv, uid_t uid, uint64_t id, const uint8_t *data,
			      size_t len)
{
	char tmp[64];
	int fd;

	tmp_name(id, tmp, sizeof(tmp));
	fd = openat(sv->journal_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (fchown(fd, uid, (gid_t)uid) != 0) {
		close(fd);
		unlinkat(sv->journal_fd, tmp, 0);
		return -1;
	}
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, data + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			unlinkat(sv->journal_fd, tmp, 0);
			return -1;
		}
		off += (size_t)n;
	}
	if (sv->m->set.spool_sync && fsync(fd) != 0) {
		close(fd);
		return -1;
	}
	return close(fd);
}

/* Steps 2-4 of answering (see the top): journal .req -> .done, publish,
 * drop the journal entry. */
static void publish(struct spool_vm *sv, uint64_t id)
{
	char tmp[64], req[64], done[64], resp[64];

	tmp_name(id, tmp, sizeof(tmp));
	id_name(id, ".req", req, sizeof(req));
	id_name(id, ".done", done, sizeof(done));
	id_name(id, ".resp", resp, sizeof(resp));
	if (renameat(sv->journal_fd, req, sv->journal_fd, done) != 0 && errno != ENOENT)
		vgpu_log(LOG_ERR, "spool: journal %s: %s", req, strerror(errno));
	if (sv->m->set.spool_sync)
		fsync(sv->journal_fd);
	/* The guest can make this fail (resp/ is its directory): rate-limited. */
	if (renameat(sv->journal_fd, tmp, sv->resp_fd, resp) != 0)
		vgpu_log_guest(&sv->vm->rl, LOG_ERR, "VM %s: spool: publishing %s: %s",
			       sv->vm->uuid, resp, strerror(errno));
	if (sv->m->set.spool_sync)
		fsync(sv->resp_fd);
	unlinkat(sv->journal_fd, done, 0);
}

/* Answer a request refused before admission (no request object exists). */
static void answer_refused(struct spool_vm *sv, uint64_t id, int op, int status, const char *why)
{
	uint8_t msg[VGPU_PROTO_RESPONSE_PREFIX];

	vgpu_log_guest(&sv->vm->rl, LOG_WARNING, "VM %s: spool request %016" PRIx64 " refused: %s",
		       sv->vm->uuid, id, why);
	vgpu_stats_record(sv->m->stats, sv->vm->slot, sv->vm->priority, VGPU_OUTCOME_REJECTED, 0, 0,
			  0, 0);
	vgpu_proto_encode_response(id, vgpu_op_name(op) ? op : VGPU_OP_VECTOR_ADD, status, 0, 0, 0,
				   msg);
	if (write_tmp_response(sv, sv->uid, id, msg, sizeof(msg)) == 0)
		publish(sv, id);
}

/* Loop thread: @req's answer is written (@rc 0) or not (errno @err):
 * publish it, and let the request go. */
static void answer_written(struct vgpu_request *req, int rc, int err)
{
	struct spool_reply *r = req->reply_ctx;
	struct spool_vm *sv = r->sv;

	if (sv->vm && rc == 0)
		publish(sv, r->id);
	else if (sv->vm)
		vgpu_log_guest(&sv->vm->rl, LOG_ERR,
			       "VM %s: cannot write the response to %016" PRIx64 ": %s",
			       sv->vm->uuid, r->id, strerror(err));
	vgpu_request_free(req);
	free(r);
	sv_unref(sv);
}

static void write_job(struct vgpu_job *job)
{
	struct spool_write *wr = (struct spool_write *)job;
	struct vgpu_request *req = wr->req;
	struct spool_reply *r = req->reply_ctx;

	wr->rc = write_tmp_response(r->sv, wr->uid, r->id, req->resp, req->resp_len);
	wr->err = errno;
}

static void write_done(struct vgpu_job *job)
{
	struct spool_write *wr = (struct spool_write *)job;
	struct spool_reply *r = wr->req->reply_ctx;

	if (wr->rc == 0 && wr->uid != r->sv->uid) {
		/* The VM's vm_id changed meanwhile: its new uid's, as resp/ is.
		 * The journal is the mediator's alone: no link to follow. */
		char tmp[64];

		tmp_name(r->id, tmp, sizeof(tmp));
		if (fchownat(r->sv->journal_fd, tmp, r->sv->uid, (gid_t)r->sv->uid,
			     AT_SYMLINK_NOFOLLOW) != 0) {
			wr->rc = -1;
			wr->err = errno;
		}
	}
	answer_written(wr->req, wr->rc, wr->err);
	free(wr);
}

/* A large answer (up to the largest request's output) is written on a
 * worker, so that the loop serves every VM meanwhile; the journal entry
 * .tmp-<id> is the worker's alone until the loop publishes it. */
static void spool_respond(struct mediator *m, struct vgpu_request *req)
{
	struct spool_reply *r = req->reply_ctx;
	struct spool_write *wr;

	if (!r->sv->vm) { /* the VM left: it stays journaled for its next start */
		answer_written(req, -1, 0);
		return;
	}
	if (req->resp_len > SPOOL_INLINE && (wr = calloc(1, sizeof(*wr)))) {
		wr->req = req;
		wr->uid = r->sv->uid;
		wr->job = (struct vgpu_job){ .run = write_job, .done = write_done,
					     .slot = req->vm_slot };
		vgpu_workers_submit(m->workers, &wr->job);
		return;
	}
	int rc = write_tmp_response(r->sv, r->sv->uid, r->id, req->resp, req->resp_len);
	answer_written(req, rc, errno);
}

/* Read @len bytes of @fd from @off into @buf; VGPU_OK or VGPU_IO_ERROR. */
static int read_all(int fd, uint8_t *buf, size_t len, off_t off)
{
	for (size_t got = 0; got < len;) {
		ssize_t n = pread(fd, buf + got, len - got, off + (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return VGPU_IO_ERROR;
		got += (size_t)n;
	}
	return VGPU_OK;
}

/* Read the rest of @req's payload (after the parameter block) from its
 * journal entry. */
static int read_payload(struct vgpu_request *req)
{
	const struct spool_reply *r = req->reply_ctx;
	const struct spool_vm *sv = r->sv;
	const size_t skip = VGPU_PROTO_HEADER_SIZE + VGPU_PROTO_PARAMS_SIZE;
	char name[ID_HEX + 8];
	int fd;

	id_name(r->id, ".req", name, sizeof(name));
	fd = openat(sv->journal_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return VGPU_IO_ERROR;
	int rc = read_all(fd, req->payload + VGPU_PROTO_PARAMS_SIZE,
			  req->payload_len - VGPU_PROTO_PARAMS_SIZE, (off_t)skip);
	close(fd);
	return rc;
}

static void read_job(struct vgpu_job *job)
{
	struct spool_read *rd = (struct spool_read *)job;

	rd->rc = read_payload(rd->req);
}

/* Loop thread: @req's payload was read with outcome @rc: queue it. */
static void payload_read(struct vgpu_request *req, int rc)
{
	const struct spool_vm *sv = ((struct spool_reply *)req->reply_ctx)->sv;

	if (!sv->vm) /* the VM left meanwhile: it stays journaled */
		vgpu_request_fail(req, VGPU_DENIED);
	else if (rc != VGPU_OK)
		vgpu_request_reject(req, sv->vm, rc, "cannot read the request");
	else
		vgpu_request_submit(req, sv->vm);
}

static void read_done(struct vgpu_job *job)
{
	struct spool_read *rd = (struct spool_read *)job;

	payload_read(rd->req, rd->rc);
	free(rd);
}

/* vgpu_request_alloc() gave @req its buffers: read its payload, on a
 * worker when it is large. Not @rc: @req is answered. */
static void buffers_ready(void *ctx, struct vgpu_request *req, int rc)
{
	struct spool_reply *r = ctx;
	struct spool_vm *sv = r->sv;
	struct spool_read *rd;

	if (rc != VGPU_OK)
		return;
	if (!sv->vm || req->payload_len <= SPOOL_INLINE) {
		payload_read(req, sv->vm ? read_payload(req) : VGPU_OK);
		return;
	}
	if (!(rd = calloc(1, sizeof(*rd)))) {
		vgpu_request_reject(req, sv->vm, VGPU_NO_MEMORY, "no memory to read it");
		return;
	}
	rd->job = (struct vgpu_job){ .run = read_job, .done = read_done, .slot = sv->vm->slot };
	rd->req = req;
	vgpu_workers_submit(sv->m->workers, &rd->job);
}

/* Read the journal entry @name (already accepted) and admit it: header
 * and parameter block first, the payload only once admission took it. */
static void admit_journaled(struct spool_vm *sv, const char *name, uint64_t id)
{
	struct mediator *m = sv->m;
	uint8_t head[VGPU_PROTO_HEADER_SIZE + VGPU_PROTO_PARAMS_SIZE];
	struct vgpu_msg_header h;
	struct vgpu_request *req;
	struct stat st;
	int fd = openat(sv->journal_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		unlinkat(sv->journal_fd, name, 0);
		answer_refused(sv, id, 0, VGPU_PROTOCOL, "not a regular file");
		return;
	}
	int rc = read_all(fd, head, sizeof(head), 0);
	close(fd);
	if (rc != VGPU_OK ||
	    vgpu_proto_decode_header(head, &m->limits, &h) != VGPU_OK || h.type != VGPU_MSG_REQUEST ||
	    h.request_id != id || h.payload_len < VGPU_PROTO_PARAMS_SIZE ||
	    (uint64_t)st.st_size != VGPU_PROTO_HEADER_SIZE + (uint64_t)h.payload_len) {
		answer_refused(sv, id, 0, VGPU_PROTOCOL, "malformed request file");
		return;
	}
	struct spool_reply *r = malloc(sizeof(*r));
	if (!r)
		return; /* stays journaled; queued again at the next start */
	r->sv = sv;
	r->id = id;
	sv->refs++;
	rc = vgpu_request_head(m, sv->vm, &vgpu_transport_spool, r, head, &h,
			       head + VGPU_PROTO_HEADER_SIZE, &req);
	if (rc == VGPU_ERROR) { /* no memory: it stays journaled, queued again at the next start */
		free(r);
		sv->refs--; /* never the last: the VM's is held */
		return;
	}
	if (rc != VGPU_OK)
		return; /* answered */
	vgpu_request_alloc(req, buffers_ready);
}

/* The op of the request file @name, read from its header without checking
 * anything else (for the error answer to an oversized file), or 0. */
static int peek_op(int dir_fd, const char *name)
{
	uint8_t raw[VGPU_PROTO_HEADER_SIZE];
	int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	ssize_t n = fd >= 0 ? pread(fd, raw, sizeof(raw), 0) : -1;

	if (fd >= 0)
		close(fd);
	if (n != (ssize_t)sizeof(raw) || raw[0] != 'V' || raw[1] != 'G' || raw[2] != 'P' ||
	    raw[3] != 'U')
		return 0;
	return raw[16] | raw[17] << 8;
}

/* Take what is published in req/: check, journal, admit. */
static void scan_requests(struct spool_vm *sv)
{
	struct mediator *m = sv->m;
	/* A new open file description each time: a dup() would share the
	 * directory offset, left at the end by the previous scan. */
	int dfd = openat(sv->req_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *e;
	int taken = 0;

	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	while (taken < SCAN_MAX && (e = readdir(d))) {
		const char *name = e->d_name;
		uint64_t id;
		struct stat st;

		if (name[0] == '.')
			continue; /* ".", "..", and clients' temporary files */
		taken++;
		if (!parse_name(name, ".req", &id)) {
			vgpu_log_guest(&sv->vm->rl, LOG_WARNING,
				       "VM %s: unexpected file in its spool removed", sv->vm->uuid);
			unlinkat(sv->req_fd, name, 0);
			continue;
		}
		if (fstatat(sv->req_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (!S_ISREG(st.st_mode)) {
			/* Out of req/ whatever it is: a symlink or file is removed, a
			 * directory (maybe not empty) is moved aside into
			 * SPOOL/.rejected/ for the administrator. */
			if (unlinkat(sv->req_fd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) != 0) {
				char aside[128];

				snprintf(aside, sizeof(aside), "%s-%016" PRIx64 "-%llu", sv->vm->uuid, id,
					 (unsigned long long)vgpu_now_ns());
				if (renameat(sv->req_fd, name, spool_of(m)->rejected_fd, aside) != 0)
					continue; /* cannot move it: answer nothing, try later */
			}
			answer_refused(sv, id, 0, VGPU_PROTOCOL,
				       S_ISLNK(st.st_mode) ? "a symlink" : "not a regular file");
			continue;
		}
		if ((uint64_t)st.st_size > VGPU_PROTO_HEADER_SIZE + (uint64_t)m->limits.max_payload) {
			int op = peek_op(sv->req_fd, name);

			unlinkat(sv->req_fd, name, 0);
			answer_refused(sv, id, op, VGPU_LIMIT, "file over the size limit");
			continue;
		}
		/* Accept: from here on it is answered exactly once. */
		if (renameat(sv->req_fd, name, sv->journal_fd, name) != 0) {
			/* e.g. the guest removed it meanwhile: rate-limited */
			vgpu_log_guest(&sv->vm->rl, LOG_ERR, "VM %s: spool: journaling %s: %s",
				       sv->vm->uuid, name, strerror(errno));
			continue;
		}
		admit_journaled(sv, name, id);
	}
	closedir(d);
	if (m->set.spool_sync)
		fsync(sv->journal_fd);
}

/* Remove from @dir_fd the files whose names start with @prefix (any name
 * when "") and that were last changed more than @max_age_s ago (-1: any
 * age). */
static int sweep_dir(int dir_fd, const char *prefix, const char *suffix, time_t max_age_s)
{
	int dfd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	time_t now = time(NULL);
	struct dirent *e;
	int removed = 0;

	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return 0;
	}
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name), slen = strlen(suffix);
		struct stat st;

		if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || strcmp(e->d_name, ".") == 0 ||
		    strcmp(e->d_name, "..") == 0 || len < slen || strcmp(e->d_name + len - slen, suffix))
			continue;
		if (fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
		    now - st.st_mtime > max_age_s && unlinkat(dir_fd, e->d_name, 0) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}

/* At start-up: finish what a crashed mediator left in the journal. */
static void recover(struct spool_vm *sv)
{
	int dfd = openat(sv->journal_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *e;
	int requeued = 0, finished = 0;

	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	while ((e = readdir(d))) {
		char tmp[64], resp[64];
		uint64_t id;

		if (parse_name(e->d_name, ".done", &id)) {
			tmp_name(id, tmp, sizeof(tmp));
			id_name(id, ".resp", resp, sizeof(resp));
			renameat(sv->journal_fd, tmp, sv->resp_fd, resp); /* ENOENT: already published */
			unlinkat(sv->journal_fd, e->d_name, 0);
			finished++;
		} else if (parse_name(e->d_name, ".req", &id)) {
			admit_journaled(sv, e->d_name, id);
			requeued++;
		} else if (e->d_name[0] != '.') {
			unlinkat(sv->journal_fd, e->d_name, 0);
		}
	}
	closedir(d);
	/* What is left of answers being written when the last mediator died. */
	sweep_dir(sv->journal_fd, ".tmp-", "", -1);
	if (requeued || finished)
		vgpu_log(LOG_NOTICE, "VM %s: spool journal: %d accepted requests queued again, "
			 "%d answers published", sv->vm->uuid, requeued, finished);
}

/* Give the directory @fd to @uid (and the gid of that number), mode 0700;
 * @fd, or -1 (closed) when that fails. */
static int own_dir(int fd, uid_t uid)
{
	if (fd >= 0 && (fchown(fd, uid, (gid_t)uid) != 0 || fchmod(fd, 0700) != 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int spool_vm_added(struct mediator *m, struct vgpu_vm *vm)
{
	struct spool *sp = spool_of(m);
	struct spool_vm *sv = calloc(1, sizeof(*sv));
	int vm_fd = -1;

	if (!sv)
		return VGPU_NO_MEMORY;
	sv->m = m;
	sv->vm = vm;
	sv->refs = 1;
	sv->req_fd = sv->resp_fd = sv->journal_fd = -1;
	long long uid = m->set.spool_uid_base + vm->vm_id;
	if (uid > VGPU_SPOOL_UID_MAX) {
		vgpu_log(LOG_ERR, "spool: VM %s not served: spool_uid_base + vm_id (%lld) is over "
			 "%d", vm->uuid, uid, VGPU_SPOOL_UID_MAX);
		sv_unref(sv);
		return VGPU_LIMIT;
	}
	sv->uid = (uid_t)uid;
	vm_fd = open_dir_at(sp->dir_fd, vm->uuid, true, 0755);
	if (vm_fd >= 0) {
		/* The guest writes req/ and removes what it read from resp/, over
		 * NFS as the uid its export squashes it to (docs/nfs.md): the
		 * VM's own, and nobody else's. Set at every start, through the
		 * opened directories (no path to race on). */
		sv->req_fd = own_dir(open_dir_at(vm_fd, "req", true, 0700), sv->uid);
		sv->resp_fd = own_dir(open_dir_at(vm_fd, "resp", true, 0700), sv->uid);
		close(vm_fd);
	}
	sv->journal_fd = open_dir_at(sp->journal_root_fd, vm->uuid, true, 0700);
	if (sv->req_fd < 0 || sv->resp_fd < 0 || sv->journal_fd < 0) {
		vgpu_log(LOG_ERR, "spool: cannot set up %s/%s: %s", m->set.spool_dir, vm->uuid,
			 strerror(errno));
		sv_unref(sv);
		return VGPU_IO_ERROR;
	}
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s/req", m->set.spool_dir, vm->uuid);
	sv->wd = inotify_add_watch(sp->ino_fd, path, IN_MOVED_TO | IN_CLOSE_WRITE);
	vgpu_vm_set_state(m, vm, SELF, sv);
	recover(sv);
	if (sp->accepting)
		scan_requests(sv);
	return VGPU_OK;
}

/* Give the answer @name in @dir_fd to @uid if it is a plain file of
 * @old's with one link (never through a link the guest made). */
static void own_answer(int dir_fd, const char *name, uid_t old, uid_t uid)
{
	int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == old && st.st_nlink == 1 &&
	    fchown(fd, uid, (gid_t)uid) != 0)
		vgpu_log(LOG_ERR, "spool: giving %s to uid %u: %s", name, (unsigned)uid,
			 strerror(errno));
	close(fd);
}

/* The VM's vm_id (or only its pool or priority: nothing to do) changed:
 * its req/ and resp/ and the answers waiting in resp/ go to its new uid at
 * once (the old one, which another VM may get, loses them). */
static void spool_vm_updated(struct mediator *m, struct vgpu_vm *vm)
{
	struct spool_vm *sv = vgpu_vm_state(m, vm->slot, SELF);
	long long uid = m->set.spool_uid_base + vm->vm_id;
	uid_t old;

	if (!sv || (uid_t)uid == sv->uid)
		return;
	if (uid > VGPU_SPOOL_UID_MAX) {
		vgpu_log(LOG_ERR, "spool: VM %s: spool_uid_base + vm_id (%lld) is over %d: its "
			 "spool is root's until its vm_id is mended", vm->uuid, uid, VGPU_SPOOL_UID_MAX);
		uid = 0;
	}
	old = sv->uid;
	sv->uid = (uid_t)uid;
	if (fchown(sv->req_fd, sv->uid, (gid_t)sv->uid) != 0 ||
	    fchown(sv->resp_fd, sv->uid, (gid_t)sv->uid) != 0)
		vgpu_log(LOG_ERR, "spool: VM %s: giving its directories to uid %u: %s", vm->uuid,
			 (unsigned)sv->uid, strerror(errno));
	int dfd = openat(sv->resp_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *e;
	uint64_t id;

	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	/* On the loop, once per change of vm_id (an administrator's act); the
	 * guest chooses how many names resp/ holds, so only so many are read. */
	for (int n = 0; n < REOWN_MAX && (e = readdir(d)); n++)
		if (parse_name(e->d_name, ".resp", &id))
			own_answer(dirfd(d), e->d_name, old, sv->uid);
	closedir(d);
	vgpu_log(LOG_NOTICE, "spool: VM %s: req/ and resp/ now belong to uid %u", vm->uuid,
		 (unsigned)sv->uid);
}

static void spool_vm_removed(struct mediator *m, struct vgpu_vm *vm)
{
	struct spool_vm *sv = vgpu_vm_state(m, vm->slot, SELF);

	if (!sv)
		return;
	if (sv->wd >= 0)
		inotify_rm_watch(spool_of(m)->ino_fd, sv->wd);
	sv->vm = NULL; /* answers still owed are dropped; they stay journaled */
	vgpu_vm_set_state(m, vm, SELF, NULL);
	sv_unref(sv);
}

static void scan_all(struct mediator *m)
{
	if (!spool_of(m)->accepting)
		return;
	for (long long i = 0; i < m->set.max_vms; i++) {
		struct spool_vm *sv = vgpu_vm_state(m, i, SELF);

		if (sv)
			scan_requests(sv);
	}
}

static void inotify_event_fn(void *ctx, uint32_t events)
{
	struct mediator *m = ctx;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	(void)events;
	/* Which directory does not matter much: scanning all is cheap. */
	while (read(spool_of(m)->ino_fd, buf, sizeof(buf)) > 0)
		;
	scan_all(m);
}

/* Clients that died leave temporary files in req/ and answers nobody reads
 * in resp/: both are removed once older than spool_stale_s. */
static void sweep_stale(struct mediator *m)
{
	for (long long i = 0; i < m->set.max_vms; i++) {
		struct spool_vm *sv = vgpu_vm_state(m, i, SELF);
		int n;

		if (!sv)
			continue;
		n = sweep_dir(sv->req_fd, ".", "", (time_t)m->set.spool_stale_s) +
		    sweep_dir(sv->resp_fd, "", ".resp", (time_t)m->set.spool_stale_s);
		if (n) /* the guest makes these files: rate-limited */
			vgpu_log_guest(&sv->vm->rl, LOG_NOTICE, "VM %s: %d stale spool files removed",
				       sv->vm->uuid, n);
	}
}

static void timer_fn(void *ctx, uint32_t events)
{
	struct mediator *m = ctx;
	struct spool *sp = spool_of(m);
	uint64_t ticks;

	(void)events;
	if (read(sp->timer_fd, &ticks, sizeof(ticks)) < 0) {
		/* EAGAIN */
	}
	scan_all(m);
	/* The sweep reads every directory: about once a second is plenty. */
	uint64_t now = vgpu_now_ns();
	if (now - sp->last_sweep_ns >= 1000000000ull) {
		sp->last_sweep_ns = now;
		sweep_stale(m);
	}
}

static int spool_start(struct mediator *m)
{
	struct spool *sp = calloc(1, sizeof(*sp));
	char path[4200];

	if (!sp)
		return VGPU_NO_MEMORY;
	vgpu_transport_set_ctx(m, SELF, sp);
	sp->lock_fd = sp->dir_fd = sp->journal_root_fd = sp->rejected_fd = sp->ino_fd = sp->timer_fd = -1;
	if (mkdir(m->set.spool_dir, 0755) != 0 && errno != EEXIST) {
		vgpu_log(LOG_ERR, "spool: cannot create %s: %s", m->set.spool_dir, strerror(errno));
		return VGPU_IO_ERROR;
	}
	sp->dir_fd = open(m->set.spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(path, sizeof(path), "%s/.mediator.lock", m->set.spool_dir);
	sp->lock_fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (sp->dir_fd < 0 || sp->lock_fd < 0 || flock(sp->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		vgpu_log(LOG_ERR, "spool %s: %s", m->set.spool_dir,
			 errno == EWOULDBLOCK ? "another vgpu-mediator serves it" : strerror(errno));
		return VGPU_BUSY;
	}
	sp->journal_root_fd = open_dir_at(sp->dir_fd, ".journal", true, 0700);
	sp->rejected_fd = open_dir_at(sp->dir_fd, ".rejected", true, 0700);
	sp->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	sp->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (sp->journal_root_fd < 0 || sp->rejected_fd < 0 || sp->ino_fd < 0 || sp->timer_fd < 0)
		return VGPU_IO_ERROR;
	long long ms = m->set.spool_poll_ms;
	struct itimerspec its = { .it_interval = { ms / 1000, (ms % 1000) * 1000000 },
				  .it_value = { ms / 1000, (ms % 1000) * 1000000 } };
	timerfd_settime(sp->timer_fd, 0, &its, NULL);
	sp->ino_watch = (struct vgpu_loop_watch){ .fd = sp->ino_fd, .fn = inotify_event_fn, .ctx = m };
	sp->timer_watch = (struct vgpu_loop_watch){ .fd = sp->timer_fd, .fn = timer_fn, .ctx = m };
	if (vgpu_loop_add(m->loop, &sp->ino_watch, EPOLLIN) != VGPU_OK ||
	    vgpu_loop_add(m->loop, &sp->timer_watch, EPOLLIN) != VGPU_OK)
		return VGPU_IO_ERROR;
	sp->accepting = true;
	return VGPU_OK;
}

static void spool_stop_accepting(struct mediator *m)
{
	if (spool_of(m))
		spool_of(m)->accepting = false;
}

static void spool_stop(struct mediator *m)
{
	struct spool *sp = spool_of(m);

	if (!sp)
		return;
	if (sp->ino_fd >= 0) {
		vgpu_loop_remove(m->loop, &sp->ino_watch);
		close(sp->ino_fd);
	}
	if (sp->timer_fd >= 0) {
		vgpu_loop_remove(m->loop, &sp->timer_watch);
		close(sp->timer_fd);
	}
	if (sp->journal_root_fd >= 0)
		close(sp->journal_root_fd);
	if (sp->rejected_fd >= 0)
		close(sp->rejected_fd);
	if (sp->dir_fd >= 0)
		close(sp->dir_fd);
	if (sp->lock_fd >= 0)
		close(sp->lock_fd);
	free(sp);
	vgpu_transport_set_ctx(m, SELF, NULL);
}

static uint64_t spool_pending(struct mediator *m)
{
	(void)m;
	return 0; /* answers are written as they complete (large ones by a
		   * worker: shutdown also waits for the workers) */
}

const struct vgpu_transport vgpu_transport_spool = {
	.name = "spool",
	.start = spool_start,
	.stop_accepting = spool_stop_accepting,
	.stop = spool_stop,
	.vm_added = spool_vm_added,
	.vm_removed = spool_vm_removed,
	.vm_updated = spool_vm_updated,
	.respond = spool_respond,
	.pending = spool_pending,
};
