/* SPDX-License-Identifier: MIT */
/*
 * device.c - the device transport: a VM's vgpu-stub device (QEMU) connects
 * to the VM's socket and says DEVICE (vgpu_device.h); socket.c hands the
 * connection's device messages here. The guest's driver allocates a ring
 * window in its own RAM and registers it through the device (WINDOW); the
 * mediator maps that RAM (map.h: memfd under KVM, xen under XCP-ng) and
 * serves the window with the same ring code as the local shm: windows
 * (ring.c). The doorbell is the device's eventfd (the guest's write to the
 * DOORBELL register); completions are signalled on the device's datagram
 * socket, which QEMU turns into an interrupt (docs/specs/vgpu-stub-1.1.md).
 *
 * Identity comes from the channel: the device's connection is on its VM's
 * socket, the memory it names is checked to be that VM's (memfd: the fds
 * QEMU sent, regions within them; xen: xenstore says the domain is the
 * VM), and its descriptors can only name its own window.
 *
 * Each window is taken from the VM's budget of windows and window bytes
 * (the shm: windows' budget: a VM's windows of both kinds count together)
 * and, when the GPU pins it, from its rate of new pinned memory, before
 * anything is mapped. Mapping and pinning (cudaHostRegister of up to
 * shm_max_mib) and their undoing run on a worker thread.
 *
 * One window per device. Unregistering, or registering while a window is
 * registered, closes it first, and is answered only once its requests in
 * flight have been answered in its rings and it is unmapped: from the
 * reply on, the mediator touches none of that guest memory any more, so
 * the driver may free or reuse it. A registration while a window is
 * being mapped or closed is refused VGPU_BUSY (the driver retries); an
 * unregistration never is (a device reset waits for its answer): it is
 * answered once what is under way is done and released. A
 * guest that breaks the ring's rules loses its window: the device is told
 * with an unasked reply that carries the sequence of the window's
 * registration again, now with an error (WIN_STATE refused); a reply to
 * a registration sent since cannot be mistaken for it.
 *
 * The device shows its VM's pool and priority in its registers: each
 * accepted device is sent IDENTITY (the registry's values) right after
 * its DEVICE is answered, and again whenever the registry poll sees the
 * VM's pool or priority change (vm_updated), so that the guest sees a
 * live change without a restart. The device answers nothing to it.
 *
 * Threads: loop thread, but for the worker jobs (mapping, unmapping) and
 * what ring.c runs on backend threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "map/map.h"
#include "mediator.h"
#include "ring.h"
#include "vgpu_device.h"
#include "vgpu_ring.h"

#define SELF (&vgpu_transport_device)

struct dev_global {
	uint64_t pending;            /* answers waiting for room in a completion ring */
	uint64_t vm_gen;             /* dev_vm generations handed out (loop thread) */
};

struct dev_session;

/* A VM's device windows being served, by how the GPU reaches them (for
 * statistics), and its accepted devices (to tell them a new identity).
 * Loop thread. gen tells this VM from a later one in its slot: a window
 * that outlives its VM does not count against the next. */
struct dev_vm {
	uint64_t gen;
	uint32_t direct, staged;
	struct dev_session *devices; /* accepted, not detached; through next_of_vm */
};

/* What a session does once its closing window is released. */
enum after_close {
	AFTER_NOTHING,
	AFTER_UNREGISTER,            /* answer the unregistration */
	AFTER_REGISTER,              /* register after_dw */
};

/* A window registered by the guest, mapped from its RAM. */
struct dev_window {
	struct vgpu_ring_server rs;  /* must stay first */
	struct vgpu_job job;         /* mapping it, then unmapping it */
	struct mediator *m;
	struct dev_session *s;       /* while being made or served by the session */
	struct dev_session *closed_by; /* waits for its release (holds a reference) */
	struct vgpu_guest_map *map;  /* a reference */
	uint32_t slot;               /* the VM's, for its budget */
	uint64_t seq;                /* the registration's, for the reply */
	struct vgpu_dev_extent *ext; /* while being mapped */
	uint32_t n_ext;
	uint64_t bytes;
	void *mem;
	bool budgeted;
	bool pin;                    /* to be pinned: pins() when registered */
	bool pinned;                 /* host_register()ed */
	bool ring_closed;            /* vgpu_ring_close() called */
	bool counted;                /* in its VM's dev_vm figures */
	uint64_t vm_gen;             /* of that dev_vm */
	int rc;
	char why[96];
};

struct dev_session {
	struct mediator *m;
	struct vgpu_vm *vm;          /* NULL once the connection is gone */
	uint32_t slot;
	char uuid[VGPU_UUID_STRLEN + 1];
	int conn_fd;                 /* socket.c's (borrowed) */
	int doorbell_fd, notify_fd;  /* the device's doorbell eventfd and completion socket */
	uint32_t domid;              /* Xen */
	struct vgpu_guest_map *map;  /* NULL while being opened (Xen) */
	struct vgpu_job job;         /* opening a Xen map */
	struct vgpu_guest_map *opened; /* the worker's result, published on the loop */
	int open_rc;
	char why[128];
	uint64_t hello_seq;
	struct dev_window *win;      /* served */
	struct dev_window *making;   /* being mapped */
	struct dev_window *closing;  /* closed, not yet released */
	enum after_close after;      /* what its release is waited for */
	uint64_t after_seq;
	struct vgpu_dev_window *after_dw;
	uint64_t unregister_seq;     /* an unregistration that came while mapping; 0 none */
	int refs;                    /* the connection + a job in flight + a closing window */
	bool listed;                 /* in its dev_vm's devices */
	struct dev_session *next_of_vm;
	uint64_t identity_seq;       /* IDENTITY messages sent on the connection */
	struct vgpu_dev_identity told; /* in the last one */
};

static struct dev_global *global(struct mediator *m)
{
	return vgpu_transport_ctx(m, SELF);
}

/* Loop thread: @w starts (@delta 1) or stops (-1) being served. */
static void count_window(struct dev_window *w, int delta)
{
	struct dev_vm *dv = vgpu_vm_state(w->m, w->slot, SELF);

	if (delta > 0)
		w->vm_gen = dv ? dv->gen : 0;
	w->counted = delta > 0;
	if (!dv || dv->gen != w->vm_gen) /* the VM was removed meanwhile */
		return;
	if (w->pinned)
		dv->direct += (uint32_t)delta;
	else
		dv->staged += (uint32_t)delta;
}

/* Write one small message to the device, never waiting. Only replies (one
 * per message of the device's) and IDENTITY (one per acceptance and per
 * change the administrator makes) are written: a device that does not
 * read them fills its socket, and is cut off. */
static void send_to_device(struct dev_session *s, const uint8_t *msg, size_t len)
{
	if (s->conn_fd < 0)
		return;
	if (send(s->conn_fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)len)
		shutdown(s->conn_fd, SHUT_RDWR);
}

/* Answer the device. */
static void reply(struct dev_session *s, uint64_t seq, uint16_t answered, int32_t status,
		  uint64_t window)
{
	uint8_t msg[VGPU_DEV_REPLY_MSG];

	vgpu_dev_encode_reply(seq, answered, status, window, msg);
	send_to_device(s, msg, sizeof(msg));
}

/* Tell the device its VM's pool and priority as they are now, unless it
 * was told them last. Whether it was told. */
static bool send_identity(struct dev_session *s)
{
	uint8_t msg[VGPU_DEV_IDENTITY_MSG];
	struct vgpu_dev_identity id;

	if (!s->vm)
		return false;
	id.pool = (uint8_t)s->vm->pool;
	id.priority = (uint32_t)s->vm->priority;
	if (s->identity_seq && id.pool == s->told.pool && id.priority == s->told.priority)
		return false;
	s->told = id;
	vgpu_dev_encode_identity(++s->identity_seq, &id, msg);
	send_to_device(s, msg, sizeof(msg));
	return true;
}

/* Loop thread: @s was accepted (DEVICE answered VGPU_OK): from now on it
 * is told its VM's identity, now and at each change. */
static void device_accepted(struct dev_session *s)
{
	struct dev_vm *dv = vgpu_vm_state(s->m, s->slot, SELF);

	if (dv && !s->listed) {
		s->next_of_vm = dv->devices;
		dv->devices = s;
		s->listed = true;
	}
	send_identity(s);
}

/* Loop thread: @s's connection is gone; its VM stops telling it. */
static void device_unlist(struct dev_session *s)
{
	struct dev_vm *dv;

	if (!s->listed)
		return;
	dv = vgpu_vm_state(s->m, s->slot, SELF);
	for (struct dev_session **p = dv ? &dv->devices : NULL; p && *p; p = &(*p)->next_of_vm) {
		if (*p == s) {
			*p = s->next_of_vm;
			break;
		}
	}
	s->listed = false;
	s->next_of_vm = NULL;
}

static void session_unref(struct dev_session *s)
{
	if (--s->refs > 0)
		return;
	vgpu_map_unref(s->map);
	if (s->doorbell_fd >= 0)
		close(s->doorbell_fd);
	if (s->notify_fd >= 0)
		close(s->notify_fd);
	free(s);
}

/* ---- a window's life ---- */

static struct dev_window *job_window(struct vgpu_job *job)
{
	return (struct dev_window *)(void *)((char *)job - offsetof(struct dev_window, job));
}

/* A worker: undo what mapping did, give the budget back. */
static void unmap_job(struct vgpu_job *job)
{
	struct dev_window *w = job_window(job);
	struct mediator *m = w->m;

	if (w->pinned)
		m->backend->host_unregister(m->backend_ctx, w->mem);
	if (w->mem)
		w->map->ops->unmap(w->map, w->mem, w->bytes);
	if (w->budgeted)
		vgpu_budget_give_window(m->budget, w->slot, w->bytes);
	vgpu_map_unref(w->map);
}

static void unmap_done(struct vgpu_job *job)
{
	struct dev_window *w = job_window(job);

	free(w->ext);
	free(w);
}

/* Loop thread: release @w on a worker. */
static void window_release(struct dev_window *w)
{
	w->job = (struct vgpu_job){ .run = unmap_job, .done = unmap_done, .slot = w->slot };
	vgpu_workers_submit(w->m->workers, &w->job);
}

static void register_window(struct dev_session *s, uint64_t seq, const struct vgpu_dev_window *dw);

/* ring.c: the last request of a closed window was answered (loop thread;
 * maybe within close_window()). Its memory is unmapped on a worker; what
 * the session waited for goes on now: no request reads or writes that
 * guest memory any more. */
static void window_released(struct vgpu_ring_server *rs)
{
	struct dev_window *w = (struct dev_window *)(void *)rs;
	struct dev_session *s = w->closed_by;

	if (w->counted)
		count_window(w, -1);
	window_release(w);
	if (!s)
		return;
	s->closing = NULL;
	if (s->vm && s->after == AFTER_UNREGISTER)
		reply(s, s->after_seq, VGPU_MSG_WINDOW, VGPU_OK, 0);
	else if (s->vm && s->after == AFTER_REGISTER)
		register_window(s, s->after_seq, s->after_dw);
	s->after = AFTER_NOTHING;
	free(s->after_dw);
	s->after_dw = NULL;
	session_unref(s);
}

static void ring_close_once(struct dev_window *w)
{
	if (!w->ring_closed) {
		w->ring_closed = true;
		vgpu_ring_close(&w->rs);
	}
}

/* ring.c: every request the window took is answered in its rings. */
static void window_drained(struct vgpu_ring_server *rs)
{
	ring_close_once((struct dev_window *)(void *)rs);
}

/* Loop thread: close the session's window, then do @after (@dw, taken
 * over, for AFTER_REGISTER) once it is released; at once without one.
 * For the guest (unregistering, or replacing the window) the window is
 * drained first: every request taken is answered in its rings before the
 * reply. When the device is gone (AFTER_NOTHING) answers are dropped. */
static void close_window(struct dev_session *s, enum after_close after, uint64_t seq,
			 struct vgpu_dev_window *dw)
{
	struct dev_window *w = s->win;

	if (!w) {
		if (after == AFTER_UNREGISTER)
			reply(s, seq, VGPU_MSG_WINDOW, VGPU_OK, 0);
		else if (after == AFTER_REGISTER)
			register_window(s, seq, dw);
		free(dw);
		return;
	}
	s->win = NULL;
	w->s = NULL;
	w->closed_by = s;
	s->closing = w;
	s->after = after;
	s->after_seq = seq;
	s->after_dw = dw;
	s->refs++; /* window_released()'s */
	if (after == AFTER_NOTHING)
		ring_close_once(w);
	else
		vgpu_ring_drain(&w->rs);
}

/* ring.c: the guest broke the ring's rules; the server stopped. The
 * device learns it from an unasked reply to the window's registration. */
static void window_abused(struct vgpu_ring_server *rs)
{
	struct dev_window *w = (struct dev_window *)(void *)rs;
	struct dev_session *s = w->s;

	if (!s || s->win != w)
		return;
	reply(s, w->seq, VGPU_MSG_WINDOW, VGPU_PROTOCOL, 0);
	close_window(s, AFTER_NOTHING, 0, NULL);
}

/* A worker: map the extents, pin for the GPU where it can, write the
 * control page. */
static void map_job(struct vgpu_job *job)
{
	struct dev_window *w = job_window(job);
	struct mediator *m = w->m;
	int rc = w->map->ops->map(w->map, w->ext, w->n_ext, w->bytes, &w->mem);

	if (rc != VGPU_OK) {
		w->mem = NULL;
		snprintf(w->why, sizeof(w->why), "%s",
			 rc == VGPU_INVALID_PARAM ? "an extent outside the guest's memory"
						  : "cannot map it");
		w->rc = rc;
		return;
	}
	vgpu_ring_init_window(w->mem, w->bytes);
	if (w->pin) {
		rc = m->backend->host_register(m->backend_ctx, w->mem, w->bytes);
		if (rc != VGPU_OK) {
			snprintf(w->why, sizeof(w->why), "cannot pin it: %s", vgpu_strerror(rc));
			w->rc = rc;
			return;
		}
		w->pinned = true;
	}
	w->rc = VGPU_OK;
}

/* Loop thread: the window is mapped (or not): serve it, answer. */
static void map_done(struct vgpu_job *job)
{
	struct dev_window *w = job_window(job);
	struct dev_session *s = w->s;
	struct mediator *m = w->m;
	int rc = w->rc;

	free(w->ext);
	w->ext = NULL;
	s->making = NULL;
	if (rc == VGPU_OK && (!s->vm || m->stopping))
		rc = VGPU_SHUTDOWN; /* the device or the mediator went meanwhile */
	if (rc == VGPU_OK) {
		int db = fcntl(s->doorbell_fd, F_DUPFD_CLOEXEC, 0);
		int nt = db < 0 ? -1 : fcntl(s->notify_fd, F_DUPFD_CLOEXEC, 0);

		if (db < 0 || nt < 0) {
			if (db >= 0)
				close(db);
			rc = VGPU_IO_ERROR;
		} else {
			w->rs.mem = w->mem;
			w->rs.size = w->bytes;
			rc = vgpu_ring_serve(&w->rs, s->vm, db, nt);
		}
	}
	if (rc != VGPU_OK) {
		if (s->vm && w->why[0])
			vgpu_log_guest(&s->vm->rl, LOG_WARNING, "VM %s: device window of %llu bytes: %s",
				       s->uuid, (unsigned long long)w->bytes, w->why);
		reply(s, w->seq, VGPU_MSG_WINDOW, rc, 0);
		w->s = NULL;
		window_release(w);
	} else {
		s->win = w;
		count_window(w, 1);
		vgpu_log_guest(&s->vm->rl, LOG_INFO,
			       "VM %s: device window of %llu KiB registered (%s, %s)", s->uuid,
			       (unsigned long long)(w->bytes >> 10), w->map->ops->name,
			       w->pinned ? "GPU copies from guest RAM" : "copies staged");
		reply(s, w->seq, VGPU_MSG_WINDOW, VGPU_OK, w->bytes);
	}
	if (s->unregister_seq) { /* asked while it was being mapped: now */
		uint64_t seq = s->unregister_seq;

		s->unregister_seq = 0;
		if (s->vm)
			close_window(s, AFTER_UNREGISTER, seq, NULL);
	}
	session_unref(s);
}

/* Whether the GPU copies straight from @s's windows (pinned), rather than
 * through the backend's staging: where the mapping can be pinned (memfd,
 * not Xen's foreign pages) and the operator did not ask for staging. */
static bool pins(const struct dev_session *s)
{
	return s->map->pinnable && strcmp(s->m->set.device_dma, "staged") != 0;
}

static void register_window(struct dev_session *s, uint64_t seq, const struct vgpu_dev_window *dw)
{
	struct mediator *m = s->m;
	uint64_t max = (uint64_t)m->set.shm_max_mib << 20;
	struct dev_window *w;
	int rc;

	if (m->stopping) {
		reply(s, seq, VGPU_MSG_WINDOW, VGPU_SHUTDOWN, 0);
		return;
	}
	if (dw->bytes - VGPU_RING_DATA_OFFSET > max) {
		reply(s, seq, VGPU_MSG_WINDOW, VGPU_LIMIT, 0);
		return;
	}
	rc = vgpu_budget_take_window(m->budget, s->slot, dw->bytes, true);
	if (rc == VGPU_OK && pins(s)) {
		rc = vgpu_budget_pin(m->budget, s->slot, dw->bytes, vgpu_now_ns());
		if (rc != VGPU_OK)
			vgpu_budget_give_window(m->budget, s->slot, dw->bytes);
	}
	if (rc != VGPU_OK) {
		vgpu_log_guest(&s->vm->rl, LOG_WARNING,
			       "VM %s: device window of %llu bytes refused: %s", s->uuid,
			       (unsigned long long)dw->bytes, vgpu_strerror(rc));
		reply(s, seq, VGPU_MSG_WINDOW, rc, 0);
		return;
	}
	w = calloc(1, sizeof(*w));
	if (w)
		w->ext = malloc(dw->n_extents * sizeof(*w->ext));
	if (!w || !w->ext) {
		free(w);
		vgpu_budget_give_window(m->budget, s->slot, dw->bytes);
		reply(s, seq, VGPU_MSG_WINDOW, VGPU_NO_MEMORY, 0);
		return;
	}
	memcpy(w->ext, dw->extents, dw->n_extents * sizeof(*w->ext));
	w->n_ext = dw->n_extents;
	w->bytes = dw->bytes;
	w->seq = seq;
	w->m = m;
	w->s = s;
	w->slot = s->slot;
	w->budgeted = true;
	w->map = s->map;
	vgpu_map_ref(w->map);
	w->rs.m = m;
	w->rs.transport = SELF;
	w->rs.pending = &global(m)->pending;
	w->rs.abused = window_abused;
	w->rs.release = window_released;
	w->rs.drained = window_drained;
	w->pin = pins(s);
	w->rs.staged = !w->pin;
	s->making = w;
	s->refs++; /* map_done()'s */
	w->job = (struct vgpu_job){ .run = map_job, .done = map_done, .slot = s->slot };
	vgpu_workers_submit(m->workers, &w->job);
}

/* An unregistration while the map is opened, a window mapped or closed:
 * answer it when what is under way is done. An earlier one still waiting
 * is answered VGPU_BUSY: the device waits for the latest only. */
static void unregister_later(struct dev_session *s, uint64_t seq)
{
	if (s->making) {
		if (s->unregister_seq)
			reply(s, s->unregister_seq, VGPU_MSG_WINDOW, VGPU_BUSY, 0);
		s->unregister_seq = seq;
	} else if (s->closing) {
		if (s->after != AFTER_NOTHING) /* a registration or unregistration after it */
			reply(s, s->after_seq, VGPU_MSG_WINDOW, VGPU_BUSY, 0);
		free(s->after_dw);
		s->after_dw = NULL;
		s->after = AFTER_UNREGISTER;
		s->after_seq = seq;
	} else {
		reply(s, seq, VGPU_MSG_WINDOW, VGPU_OK, 0); /* no map yet: no window */
	}
}

void vgpu_device_window(void *session, const uint8_t raw[VGPU_PROTO_HEADER_SIZE],
			const struct vgpu_msg_header *h, const uint8_t *payload)
{
	struct dev_session *s = session;
	/* 4 KiB of extents: not on the loop's stack. */
	struct vgpu_dev_window *dw = malloc(sizeof(*dw));
	int rc;

	if (!dw) {
		reply(s, h->request_id, VGPU_MSG_WINDOW, VGPU_NO_MEMORY, 0);
		return;
	}
	rc = vgpu_dev_parse_window(raw, h, payload, dw);
	if (rc != VGPU_OK) {
		vgpu_log_guest(&s->vm->rl, LOG_WARNING, "VM %s: device: %s window message", s->uuid,
			       rc == VGPU_PROTOCOL ? "malformed" : "an invalid");
		reply(s, h->request_id, VGPU_MSG_WINDOW, rc, 0);
	} else if (dw->action == VGPU_DEV_UNREGISTER && (!s->map || s->making || s->closing)) {
		/* Never refused busy (a device reset waits for this answer):
		 * answered once nothing of the device's window runs any more. */
		unregister_later(s, h->request_id);
	} else if (!s->map || s->making || s->closing) {
		/* Still opening the map, or a window being mapped or closed. */
		reply(s, h->request_id, VGPU_MSG_WINDOW, VGPU_BUSY, 0);
	} else {
		close_window(s, dw->action == VGPU_DEV_UNREGISTER ? AFTER_UNREGISTER : AFTER_REGISTER,
			     h->request_id, dw);
		return; /* dw taken over */
	}
	free(dw);
}

/* ---- the session ---- */

/* A worker: open the Xen map (xenstore is asked: it may block). */
static void open_job(struct vgpu_job *job)
{
	struct dev_session *s = (struct dev_session *)(void *)((char *)job -
							      offsetof(struct dev_session, job));

	s->open_rc = vgpu_map_xen_open(s->domid, s->uuid, &s->opened, s->why, sizeof(s->why));
}

static void open_done(struct vgpu_job *job)
{
	struct dev_session *s = (struct dev_session *)(void *)((char *)job -
							      offsetof(struct dev_session, job));

	if (s->open_rc == VGPU_OK)
		s->map = s->opened; /* from here on WINDOW messages are taken */
	if (s->open_rc != VGPU_OK) {
		if (s->vm)
			vgpu_log_guest(&s->vm->rl, LOG_WARNING, "VM %s: device refused: %s", s->uuid,
				       s->why);
		reply(s, s->hello_seq, VGPU_MSG_DEVICE, s->open_rc, 0);
		if (s->conn_fd >= 0)
			shutdown(s->conn_fd, SHUT_RDWR);
	} else {
		reply(s, s->hello_seq, VGPU_MSG_DEVICE, VGPU_OK, 0);
		if (s->vm)
			device_accepted(s);
	}
	session_unref(s);
}

/* Whether @fd is an eventfd (the doorbell: ring.c watches it
 * edge-triggered and never reads or writes it). */
static bool is_eventfd(int fd)
{
	char path[64], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return false;
	target[n] = '\0';
	return strcmp(target, "anon_inode:[eventfd]") == 0;
}

/* Whether @fd is an AF_UNIX datagram socket (the completion signal:
 * ring.c sends on it with MSG_DONTWAIT, whatever flags its peer sets). */
static bool is_unix_dgram(int fd)
{
	int domain = 0, type = 0;
	socklen_t len = sizeof(int);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain != AF_UNIX)
		return false;
	len = sizeof(int);
	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_DGRAM;
}

void *vgpu_device_hello(struct mediator *m, struct vgpu_vm *vm, int conn_fd,
			const uint8_t raw[VGPU_PROTO_HEADER_SIZE], const struct vgpu_msg_header *h,
			const uint8_t *payload, int *fds, int n_fds)
{
	struct vgpu_dev_hello hello;
	struct dev_session *s = NULL;
	char why[160] = "";
	int rc = vgpu_dev_parse_hello(raw, h, payload, &hello);

	if (rc == VGPU_OK && n_fds != (int)vgpu_dev_hello_fds(&hello)) {
		snprintf(why, sizeof(why), "%d descriptors sent, %u expected", n_fds,
			 vgpu_dev_hello_fds(&hello));
		rc = VGPU_PROTOCOL;
	}
	if (rc == VGPU_OK && (!is_eventfd(fds[n_fds - 2]) || !is_unix_dgram(fds[n_fds - 1]))) {
		snprintf(why, sizeof(why), "its doorbell is not an eventfd, or its completion "
			 "descriptor not a Unix datagram socket");
		rc = VGPU_INVALID_PARAM;
	}
	if (rc == VGPU_OK && m->stopping)
		rc = VGPU_SHUTDOWN;
	if (rc == VGPU_OK && !(s = calloc(1, sizeof(*s))))
		rc = VGPU_NO_MEMORY;
	if (rc == VGPU_OK) {
		s->m = m;
		s->vm = vm;
		s->slot = vm->slot;
		memcpy(s->uuid, vm->uuid, sizeof(s->uuid));
		s->conn_fd = conn_fd;
		s->refs = 1;
		s->hello_seq = h->request_id;
		/* The doorbell and completion socket are the last two; the
		 * session keeps them. */
		s->doorbell_fd = fds[n_fds - 2];
		s->notify_fd = fds[n_fds - 1];
		fds[n_fds - 2] = fds[n_fds - 1] = -1;
		if (hello.memory == VGPU_DEV_MEM_MEMFD)
			rc = vgpu_map_memfd_open(&hello, fds, &s->map, why, sizeof(why));
	}
	for (int i = 0; i < n_fds; i++) /* the memfds: the map has its copies */
		if (fds[i] >= 0)
			close(fds[i]);
	if (rc != VGPU_OK) {
		vgpu_log_guest(&vm->rl, LOG_WARNING, "VM %s: device refused: %s%s%s", vm->uuid,
			       vgpu_strerror(rc), why[0] ? ": " : "", why);
		if (s) {
			reply(s, h->request_id, VGPU_MSG_DEVICE, rc, 0);
			session_unref(s);
		} else {
			struct dev_session tmp = { .conn_fd = conn_fd };

			reply(&tmp, h->request_id, VGPU_MSG_DEVICE, rc, 0);
		}
		return NULL;
	}
	if (hello.memory == VGPU_DEV_MEM_XEN) {
		s->domid = hello.domid;
		s->refs++; /* open_done()'s */
		s->job = (struct vgpu_job){ .run = open_job, .done = open_done, .slot = s->slot };
		vgpu_workers_submit(m->workers, &s->job);
	} else {
		reply(s, h->request_id, VGPU_MSG_DEVICE, VGPU_OK, 0);
		device_accepted(s);
	}
	vgpu_log_guest(&vm->rl, LOG_INFO, "VM %s: device connected (%s)", vm->uuid,
		       hello.memory == VGPU_DEV_MEM_XEN ? "xen" : "memfd");
	return s;
}

void vgpu_device_detach(void *session)
{
	struct dev_session *s = session;

	if (!s)
		return;
	device_unlist(s);
	s->vm = NULL;
	s->conn_fd = -1;
	close_window(s, AFTER_NOTHING, 0, NULL);
	if (s->closing) /* draining for the guest, which is gone: stop waiting */
		ring_close_once(s->closing);
	session_unref(s);
}

/* ---- the transport ---- */

static int dev_start(struct mediator *m)
{
	struct dev_global *g = calloc(1, sizeof(*g));

	if (!g)
		return VGPU_NO_MEMORY;
	vgpu_transport_set_ctx(m, SELF, g);
	return VGPU_OK;
}

static void dev_nothing(struct mediator *m)
{
	(void)m;
}

static void dev_stop(struct mediator *m)
{
	free(global(m));
	vgpu_transport_set_ctx(m, SELF, NULL);
}

/* A VM's devices are its socket's connections, closed with it; here only
 * its figures. */
static int dev_vm_added(struct mediator *m, struct vgpu_vm *vm)
{
	struct dev_vm *dv = calloc(1, sizeof(*dv));

	if (dv)
		dv->gen = ++global(m)->vm_gen;
	vgpu_vm_set_state(m, vm, SELF, dv);
	return dv ? VGPU_OK : VGPU_NO_MEMORY;
}

static void dev_vm_removed(struct mediator *m, struct vgpu_vm *vm)
{
	struct dev_vm *dv = vgpu_vm_state(m, vm->slot, SELF);

	/* Its devices' connections close with its socket, maybe after this. */
	while (dv && dv->devices) {
		struct dev_session *s = dv->devices;

		dv->devices = s->next_of_vm;
		s->listed = false;
		s->next_of_vm = NULL;
	}
	free(dv);
	vgpu_vm_set_state(m, vm, SELF, NULL);
}

/* The VM's pool, priority or vm_id changed: its devices show the first
 * two (the vm_id stays the one QEMU was started with). */
static void dev_vm_updated(struct mediator *m, struct vgpu_vm *vm)
{
	struct dev_vm *dv = vgpu_vm_state(m, vm->slot, SELF);
	unsigned n = 0;

	for (struct dev_session *s = dv ? dv->devices : NULL; s; s = s->next_of_vm)
		n += send_identity(s);
	if (n)
		vgpu_log(LOG_INFO, "VM %s: told its device%s pool %c, priority %s", vm->uuid,
			 n == 1 ? "" : "s", vm->pool, vgpu_priority_name(vm->priority));
}

void vgpu_device_vm_usage(struct mediator *m, const struct vgpu_vm *vm,
			  struct vgpu_device_usage *ret)
{
	const struct dev_vm *dv = vgpu_vm_state(m, vm->slot, SELF);

	ret->direct = dv ? dv->direct : 0;
	ret->staged = dv ? dv->staged : 0;
}

static uint64_t dev_pending(struct mediator *m)
{
	return __atomic_load_n(&global(m)->pending, __ATOMIC_RELAXED);
}

const struct vgpu_transport vgpu_transport_device = {
	.name = "device",
	.zero_copy = true,
	.start = dev_start,
	.stop_accepting = dev_nothing,
	.stop = dev_stop,
	.vm_added = dev_vm_added,
	.vm_removed = dev_vm_removed,
	.vm_updated = dev_vm_updated,
	.respond = vgpu_ring_respond,
	.complete = vgpu_ring_complete,
	.pending = dev_pending,
};
