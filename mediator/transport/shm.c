/* SPDX-License-Identifier: MIT */
/*
 * shm.c - the shared-memory ring transport (ARCHITECTURE.md, Transports):
 * the fast path. A connection on a VM's socket asks for a window
 * (socket.c calls vgpu_shm_attach()); the mediator makes a sealed memfd
 * with a submission ring, a completion ring and a data area, pins it for
 * the backend, and the client gets the memfd and two eventfds: a doorbell
 * it writes after publishing descriptors, and a notify fd this side writes
 * after publishing completions. Inputs are read and outputs written in
 * the window itself: the GPU copies straight from and to it.
 *
 * Identity comes from the channel: a session belongs to the VM whose
 * socket asked for it, and its descriptors can only name its own window.
 *
 * Making a window (creating and pinning up to shm_max_mib: the CUDA
 * backend's cudaHostRegister faults in and locks every page) and
 * releasing one (unpinning, and freeing the pages when the mediator holds
 * the last reference) take long: both run on a worker thread (worker.h),
 * so that the loop goes on serving every VM meanwhile. Each window is
 * taken from its VM's budget of windows and window bytes (and the host's
 * shm_total_mib) before anything is made, and given back when it is gone.
 *
 * Kept windows: when a session ends, its window is kept for its VM
 * (window_keep_s) and given to the VM's next session of the same size, so
 * that a client that comes back pins nothing again (under CUDA a pin holds
 * back every VM's GPU work). A kept window stays in the budget and gives
 * way to the VM's window of another size (released first on the VM's
 * worker queue, whose next job, the new window, takes the budget there),
 * to another VM when the host's total is short, and at expiry, removal and
 * shutdown. It is never handed to another VM. New windows come at the
 * VM's rate of new pinned memory (budget.h, vgpu_budget_pin).
 *
 * Threads: the loop thread takes descriptors, attaches and detaches; a
 * backend thread that finishes a request posts its completion itself
 * (shm_complete(): one thread hand-off less on every request). A session's
 * lock guards what both touch: references, the taken count, the
 * completion ring's tail and backlog, the VM pointer (NULL once closed)
 * and the doorbell. A session is freed only on the loop thread: a backend
 * thread never drops the last reference (while the VM pointer is set, the
 * connection holds one; once it is NULL, completions go through the loop).
 *
 * Must never: read a descriptor in place (each is copied out before it is
 * decoded, so the guest cannot change it between check and use), trust an
 * index the client writes (its tail may only run ENTRIES ahead of our
 * head; our own indexes are kept privately and only published), take more
 * requests than the completion ring can answer, or unmap a window while a
 * request still points into it (requests hold references).
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "mediator.h"
#include "vgpu_ring.h"

#define SELF (&vgpu_transport_shm)
#define BATCH 64           /* descriptors taken per doorbell round, for fairness */

struct shm_global {
	uint64_t pending;      /* answers waiting for room in a completion ring (atomic) */
	int timer_fd;          /* once a second: kept windows past window_keep_s */
	struct vgpu_loop_watch timer_watch;
	bool watching;
};

/* A window: the memfd, its mapping, pinned by the backend. Its VM's
 * budget holds it (windows, window bytes) from the attach until it is
 * released; in between it serves one session, then may be kept for the
 * VM's next one (see "Kept windows" above). */
struct window {
	struct vgpu_job job;         /* releasing it */
	struct mediator *m;
	uint32_t slot;               /* the VM's, for its budget */
	char uuid[VGPU_UUID_STRLEN + 1]; /* the VM's: kept only for that VM */
	uint8_t *mem;
	size_t size;
	int memfd;                   /* ours; the client gets a copy */
	bool budgeted;               /* its budget is taken */
	bool pinned;                 /* host_register()ed */
	bool made;                   /* whole: may be kept and used again */
	uint64_t kept_ns;            /* when it was kept */
	struct window *next;         /* its VM's kept windows */
};

/* A VM's kept windows, newest first. Loop thread. */
struct shm_vm {
	struct window *kept;
};

struct session {
	struct mediator *m;
	struct vgpu_job job;         /* making the window (or making it ready again) */
	struct window *w;            /* not yet budgeted: its budget is taken on the
				      * worker, after the kept windows it replaces */
	struct vgpu_vm *owner;       /* the VM, while the window is made */
	int rc;                      /* the outcome of making it */
	char why[96];                /* why making it failed */
	vgpu_shm_ready_fn ready;     /* told when it is made */
	void *ready_ctx;
	pthread_mutex_t lock;        /* guards the fields marked (L) */
	struct vgpu_vm *vm;          /* (L) NULL once the VM or its connection is gone */
	int refs;                    /* (L) the connection + each request not yet answered */
	int conn_fd;                 /* the owning connection (borrowed): shut down on abuse */
	int doorbell_fd;             /* (L) client -> mediator; -1 once no longer served
				      * (written on the loop thread only) */
	int notify_fd;               /* mediator -> client */
	struct vgpu_loop_watch watch;
	uint32_t sq_head;            /* next descriptor to take (private copy) */
	uint32_t cq_tail;            /* (L) next completion slot (private copy) */
	uint32_t taken;              /* (L) descriptors taken, not yet completed */
	struct vgpu_request *backlog_head, *backlog_tail; /* (L) answered, no CQ room yet */
};

static struct shm_global *global(struct mediator *m)
{
	return vgpu_transport_ctx(m, SELF);
}

static uint32_t *index_at(struct session *s, size_t off)
{
	return (uint32_t *)(void *)(s->w->mem + off);
}

static void kick(int efd)
{
	uint64_t one = 1;

	if (write(efd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is already non-zero, which is all we want. */
	}
}

/* Give back a window's budget (any thread). */
static void give_budget(struct mediator *m, uint32_t slot, size_t size)
{
	vgpu_budget_give(m->budget, slot, VGPU_BUDGET_WINDOW_BYTES, size);
	vgpu_budget_give(m->budget, slot, VGPU_BUDGET_WINDOWS, 1);
}

/* A worker: unpin and unmap the window (when ours is the last reference,
 * munmap frees its pages: tens of ms per GiB), and give its budget back
 * here rather than on the loop: a window that replaces it takes that
 * budget in the VM's next job, which runs after this one. */
static void release_window(struct vgpu_job *job)
{
	struct window *w = (struct window *)(void *)job;
	struct mediator *m = w->m;

	if (w->pinned)
		m->backend->host_unregister(m->backend_ctx, w->mem);
	if (w->mem)
		munmap(w->mem, w->size);
	if (w->memfd >= 0)
		close(w->memfd);
	if (w->budgeted)
		give_budget(m, w->slot, w->size);
}

static void window_freed(struct vgpu_job *job)
{
	free(job);
}

/* Loop thread: release @w on a worker. */
static void window_release(struct window *w)
{
	w->job = (struct vgpu_job){ .run = release_window, .done = window_freed, .slot = w->slot };
	vgpu_workers_submit(w->m->workers, &w->job);
}

/* Loop thread: release @sv's windows kept since before @before_ns. */
static void release_kept(struct shm_vm *sv, uint64_t before_ns)
{
	struct window **pp = &sv->kept;

	while (*pp) {
		struct window *w = *pp;

		if (w->kept_ns < before_ns) {
			*pp = w->next;
			window_release(w);
		} else {
			pp = &w->next;
		}
	}
}

/* Loop thread: every VM's kept windows, to make room for another VM's. */
static void release_all_kept(struct mediator *m)
{
	for (long long i = 0; i < m->set.max_vms; i++) {
		struct shm_vm *sv = vgpu_vm_state(m, i, SELF);

		if (sv)
			release_kept(sv, UINT64_MAX);
	}
}

/* Loop thread: @vm's session is done with @w: keep it for the VM's next
 * window of the same size, or release it. @vm is the slot the session
 * was made for; by now another VM may have it (a window whose budget is
 * taken on the worker holds none while it waits), hence the uuid. */
static void window_put(struct mediator *m, struct vgpu_vm *vm, struct window *w)
{
	struct shm_vm *sv = vgpu_vm_state(m, vm->slot, SELF);

	if (w->made && sv && strcmp(vm->uuid, w->uuid) == 0 && !m->stopping &&
	    m->set.window_keep_s > 0) {
		w->kept_ns = vgpu_now_ns();
		w->next = sv->kept;
		sv->kept = w;
		return;
	}
	window_release(w);
}

/* Loop thread, the last reference gone. */
static void session_free(struct session *s)
{
	if (s->w)
		window_put(s->m, s->owner, s->w);
	if (s->notify_fd >= 0)
		close(s->notify_fd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* Loop thread. */
static void session_unref(struct session *s)
{
	pthread_mutex_lock(&s->lock);
	bool last = --s->refs == 0;
	pthread_mutex_unlock(&s->lock);
	if (last)
		session_free(s);
}

/* Loop thread: stop taking descriptors; answers to what was taken still
 * go out. */
static void stop_serving(struct session *s)
{
	int fd;

	pthread_mutex_lock(&s->lock);
	fd = s->doorbell_fd;
	s->doorbell_fd = -1;
	pthread_mutex_unlock(&s->lock);
	if (fd < 0)
		return;
	vgpu_loop_remove(s->m->loop, &s->watch);
	close(fd);
}

/* Loop thread: the session's VM or connection is gone. From here on its
 * completions go through the loop (shm_respond()). */
static void session_close(struct session *s)
{
	pthread_mutex_lock(&s->lock);
	s->vm = NULL;
	pthread_mutex_unlock(&s->lock);
	stop_serving(s);
}

/* A client broke the ring's rules: no more service, and its connection is
 * shut down so that it learns (the socket transport then detaches). Only
 * while the session is served, so the connection is still there. */
static void abuse(struct session *s, const char *why)
{
	vgpu_log_guest(&s->vm->rl, LOG_WARNING, "VM %s: shared-memory ring: %s; detaching",
		       s->vm->uuid, why);
	stop_serving(s);
	shutdown(s->conn_fd, SHUT_RDWR);
}

/* Move answers into the completion ring while it has room. Lock held;
 * the caller holds a reference besides the answers' own. */
static void flush_backlog_locked(struct session *s)
{
	uint32_t cq_head = __atomic_load_n(index_at(s, VGPU_RING_OFF_CQ_HEAD), __ATOMIC_ACQUIRE);
	bool posted = false, was_full = s->taken >= VGPU_RING_ENTRIES;

	while (s->backlog_head && s->cq_tail - cq_head < VGPU_RING_ENTRIES) {
		struct vgpu_request *req = s->backlog_head;
		struct vgpu_ring_cqe e = {
			.request_id = req->request_id,
			.status = req->status,
			.queue_ns = req->queue_ns,
			.exec_ns = req->exec_ns,
		};
		uint8_t *slot = s->w->mem + VGPU_RING_CQ_OFFSET +
				(size_t)(s->cq_tail % VGPU_RING_ENTRIES) * VGPU_RING_CQE_SIZE;

		vgpu_ring_encode_cqe(&e, slot);
		s->cq_tail++;
		s->backlog_head = req->next_done;
		if (!s->backlog_head)
			s->backlog_tail = NULL;
		__atomic_sub_fetch(&global(s->m)->pending, 1, __ATOMIC_RELAXED);
		s->taken--;
		posted = true;
		vgpu_request_free(req);
		s->refs--; /* never the last: the caller holds one */
	}
	if (!posted)
		return;
	__atomic_store_n(index_at(s, VGPU_RING_OFF_CQ_TAIL), s->cq_tail, __ATOMIC_RELEASE);
	kick(s->notify_fd);
	if (was_full && s->doorbell_fd >= 0)
		kick(s->doorbell_fd); /* descriptors may wait for the room made */
}

/* Take one descriptor at sq_head and admit or refuse it; false (nothing
 * taken) when there is no memory to answer it with. */
static bool take_one(struct session *s)
{
	struct mediator *m = s->m;
	struct vgpu_vm *vm = s->vm;
	uint8_t raw[VGPU_RING_DESC_SIZE];
	struct vgpu_ring_desc d;
	struct vgpu_ring_view rv;
	/* The request first: a descriptor is only taken once it can be answered. */
	struct vgpu_request *req = vgpu_request_new(m, vm, &vgpu_transport_shm, s, 0, 0);
	int rc;

	if (!req)
		return false;
	/* Our copy: the guest may rewrite the slot at any time from here on. */
	memcpy(raw, s->w->mem + VGPU_RING_SQ_OFFSET +
			    (size_t)(s->sq_head % VGPU_RING_ENTRIES) * VGPU_RING_DESC_SIZE,
	       sizeof(raw));
	s->sq_head++;
	rc = vgpu_ring_decode_desc(raw, &d);
	req->request_id = d.request_id;
	req->op = d.op;
	pthread_mutex_lock(&s->lock);
	s->refs++;
	s->taken++;
	pthread_mutex_unlock(&s->lock);
	if (rc == VGPU_OK)
		rc = vgpu_ring_check_desc(&d, &m->limits, s->w->size, &rv);
	if (rc != VGPU_OK) {
		vgpu_request_reject(req, vm, rc,
				    rc == VGPU_LIMIT	   ? "over the size limits"
				    : rc == VGPU_PROTOCOL ? "malformed ring descriptor"
							  : "bad sizes or offsets in its descriptor");
		return true;
	}
	struct vgpu_request_view view = {
		.op = rv.op,
		.params = rv.params,
		.out_count = rv.out_count,
	};
	for (int i = 0; i < rv.n_inputs; i++) {
		view.in[i] = (const float *)(const void *)(s->w->mem + rv.in_off[i]);
		view.in_count[i] = rv.in_count[i];
	}
	vgpu_request_admit(req, vm, &view, (float *)(void *)(s->w->mem + rv.out_off));
	return true;
}

/* How many more descriptors the completion ring can answer. Backend
 * threads only lower `taken`, so the figure stays safe while it ages. */
static uint32_t room(struct session *s)
{
	pthread_mutex_lock(&s->lock);
	uint32_t r = VGPU_RING_ENTRIES - s->taken;
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* Take what the client published, as far as the completion ring can
 * answer it, at most BATCH per round. Loop thread; s->doorbell_fd is only
 * written on it, so it reads it without the lock. */
static void take_descriptors(struct session *s)
{
	uint32_t tail = __atomic_load_n(index_at(s, VGPU_RING_OFF_SQ_TAIL), __ATOMIC_ACQUIRE);
	uint32_t budget;
	bool oom = false;
	int n = 0;

	if (tail - s->sq_head > VGPU_RING_ENTRIES) {
		abuse(s, "submission tail out of range");
		return;
	}
	budget = room(s);
	while (s->doorbell_fd >= 0 && s->sq_head != tail && budget > 0 && n < BATCH) {
		if (!take_one(s)) {
			oom = true; /* logged; left in the ring for the next doorbell */
			break;
		}
		budget--;
		n++;
	}
	if (!oom && s->doorbell_fd >= 0 && s->sq_head != tail && room(s) > 0)
		kick(s->doorbell_fd); /* more to take: come back next round */
	__atomic_store_n(index_at(s, VGPU_RING_OFF_SQ_HEAD), s->sq_head, __ATOMIC_RELEASE);
}

static void doorbell_event(void *ctx, uint32_t events)
{
	struct session *s = ctx;
	uint64_t n;

	(void)events;
	if (read(s->doorbell_fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: nothing new; look anyway. */
	}
	pthread_mutex_lock(&s->lock);
	s->refs++; /* hold s across the callbacks below */
	flush_backlog_locked(s);
	pthread_mutex_unlock(&s->lock);
	if (s->doorbell_fd >= 0)
		take_descriptors(s);
	session_unref(s);
}

/* Queue @req's answer and post what fits. Lock held, VM set. */
static void answer_locked(struct session *s, struct vgpu_request *req)
{
	req->next_done = NULL;
	if (s->backlog_tail)
		s->backlog_tail->next_done = req;
	else
		s->backlog_head = req;
	s->backlog_tail = req;
	__atomic_add_fetch(&global(s->m)->pending, 1, __ATOMIC_RELAXED);
	flush_backlog_locked(s);
}

/* A backend thread: post the completion now, unless the session is
 * closing (then the loop answers, and may free the session). */
static bool shm_complete(struct mediator *m, struct vgpu_request *req)
{
	struct session *s = req->reply_ctx;

	(void)m;
	pthread_mutex_lock(&s->lock);
	if (!s->vm) {
		pthread_mutex_unlock(&s->lock);
		return false;
	}
	/* The connection's reference outlives this: vm is set. */
	answer_locked(s, req);
	pthread_mutex_unlock(&s->lock);
	return true;
}

/* Loop thread: refusals at admission, and completions that a backend
 * thread left to the loop: posted, or dropped with a closed session. */
static void shm_respond(struct mediator *m, struct vgpu_request *req)
{
	struct session *s = req->reply_ctx;

	if (shm_complete(m, req))
		return;
	pthread_mutex_lock(&s->lock);
	s->taken--;
	pthread_mutex_unlock(&s->lock);
	vgpu_request_free(req);
	session_unref(s);
}

/* Write the control page: what the client reads to find its way. A kept
 * window's is written anew: indexes from 0, whatever its last client left. */
static void init_window(struct window *w)
{
	uint8_t *p = w->mem;

	memset(p, 0, VGPU_RING_PAGE);
	*(uint32_t *)(void *)(p + VGPU_RING_OFF_MAGIC) = VGPU_RING_MAGIC;
	*(uint32_t *)(void *)(p + VGPU_RING_OFF_VERSION) = VGPU_RING_VERSION;
	*(uint32_t *)(void *)(p + VGPU_RING_OFF_ENTRIES) = VGPU_RING_ENTRIES;
	uint64_t size = w->size;
	memcpy(p + VGPU_RING_OFF_WINDOW, &size, sizeof(size));
}

/* Take a window's budget for VM slot @slot; @count: count a refusal. */
static int take_budget(struct mediator *m, uint32_t slot, size_t size, bool count)
{
	int (*take)(struct vgpu_budget *, uint32_t, enum vgpu_budget_kind, uint64_t) =
		count ? vgpu_budget_take : vgpu_budget_try;
	int rc = take(m->budget, slot, VGPU_BUDGET_WINDOWS, 1);

	if (rc != VGPU_OK)
		return rc;
	rc = take(m->budget, slot, VGPU_BUDGET_WINDOW_BYTES, size);
	if (rc != VGPU_OK)
		vgpu_budget_give(m->budget, slot, VGPU_BUDGET_WINDOWS, 1);
	return rc;
}

/* A worker: make and pin the window, or make a kept one ready again;
 * s->rc says how it went. On failure what was made stays for
 * release_window(). */
static void make_window(struct vgpu_job *job)
{
	struct session *s = (struct session *)((char *)job - offsetof(struct session, job));
	struct mediator *m = s->m;
	struct window *w = s->w;
	int err = 0;

	if (!w->budgeted) {
		s->rc = take_budget(m, w->slot, w->size, true);
		if (s->rc != VGPU_OK)
			return; /* a refusal: socket.c says so */
		w->budgeted = true;
	}
	if (w->made) {
		init_window(w);
		s->rc = VGPU_OK;
		return;
	}
	w->memfd = memfd_create("vgpu-window", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (w->memfd < 0 || ftruncate(w->memfd, (off_t)w->size) != 0 ||
	    /* The client can neither shrink the window under us (SIGBUS) nor grow it. */
	    fcntl(w->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
		err = errno;
	if (err) {
		snprintf(s->why, sizeof(s->why), "cannot make it: %s", strerror(err));
		s->rc = err == ENOMEM || err == ENOSPC ? VGPU_NO_MEMORY : VGPU_IO_ERROR;
		return;
	}
	w->mem = mmap(NULL, w->size, PROT_READ | PROT_WRITE, MAP_SHARED, w->memfd, 0);
	if (w->mem == MAP_FAILED) {
		snprintf(s->why, sizeof(s->why), "cannot map it: %s", strerror(errno));
		w->mem = NULL;
		s->rc = VGPU_NO_MEMORY;
		return;
	}
	init_window(w);
	s->rc = m->backend->host_register(m->backend_ctx, w->mem, w->size);
	if (s->rc != VGPU_OK)
		snprintf(s->why, sizeof(s->why), "cannot pin it: %s", vgpu_strerror(s->rc));
	w->pinned = w->made = s->rc == VGPU_OK;
}

/* Loop thread: the window is made (or not); add its eventfds and hand it
 * to the connection. */
static void window_made(struct vgpu_job *job)
{
	struct session *s = (struct session *)((char *)job - offsetof(struct session, job));
	struct mediator *m = s->m;
	int fds[3] = { -1, -1, -1 };
	int rc = s->rc;

	if (rc == VGPU_OK && m->stopping)
		rc = VGPU_SHUTDOWN;
	if (rc == VGPU_OK) {
		s->doorbell_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		s->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		s->watch = (struct vgpu_loop_watch){ .fd = s->doorbell_fd, .fn = doorbell_event,
						     .ctx = s };
		if (s->doorbell_fd < 0 || s->notify_fd < 0 ||
		    vgpu_loop_add(m->loop, &s->watch, EPOLLIN) != VGPU_OK)
			rc = VGPU_IO_ERROR;
	}
	if (rc == VGPU_OK) {
		/* The client's copies: the last step that can fail. */
		fds[0] = fcntl(s->w->memfd, F_DUPFD_CLOEXEC, 0);
		fds[1] = fcntl(s->doorbell_fd, F_DUPFD_CLOEXEC, 0);
		fds[2] = fcntl(s->notify_fd, F_DUPFD_CLOEXEC, 0);
		if (fds[0] < 0 || fds[1] < 0 || fds[2] < 0) {
			vgpu_loop_remove(m->loop, &s->watch);
			rc = VGPU_IO_ERROR;
		}
	}
	if (rc != VGPU_OK) {
		if (s->why[0]) /* made on a worker, logged here: the limiter is the loop's */
			vgpu_log_guest(&s->owner->rl, LOG_ERR, "VM %s: a %zu-byte window: %s",
				       s->w->uuid, s->w->size, s->why);
		for (int i = 0; i < 3; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		if (s->doorbell_fd >= 0)
			close(s->doorbell_fd);
		s->doorbell_fd = -1;
		s->ready(s->ready_ctx, rc, NULL, NULL);
		session_free(s);
		return;
	}
	s->vm = s->owner;
	s->refs = 1;
	vgpu_log_guest(&s->owner->rl, LOG_INFO, "VM %s: shared-memory window of %zu MiB attached",
		       s->w->uuid, s->w->size >> 20);
	s->ready(s->ready_ctx, VGPU_OK, s, fds);
}

/* Loop thread: another VM was refused a window of @size for the host's
 * total: if that is what is short, every VM's kept windows give way for
 * its next try. They will pin again when used: the VM pays for that from
 * its own rate, so that it cannot make the others re-pin for free. */
static void make_room(struct mediator *m, struct vgpu_vm *vm, size_t size)
{
	struct vgpu_budget_usage u;

	vgpu_budget_usage(m->budget, vm->slot, &u);
	if (u.held[VGPU_BUDGET_WINDOWS] < u.limit[VGPU_BUDGET_WINDOWS] &&
	    size <= u.limit[VGPU_BUDGET_WINDOW_BYTES] - u.held[VGPU_BUDGET_WINDOW_BYTES] &&
	    vgpu_budget_pin(m->budget, vm->slot, size, vgpu_now_ns()) == VGPU_OK)
		release_all_kept(m);
}

/* Loop thread: the window @vm's new session will use: a kept one of
 * @size, or a new one. A new one's budget is taken here, or, when it fits
 * only once the VM's kept windows give way, on the worker after their
 * release (w->budgeted false). NULL with *rc set when refused. */
static struct window *window_get(struct mediator *m, struct vgpu_vm *vm, size_t size, int *rc)
{
	struct shm_vm *sv = vgpu_vm_state(m, vm->slot, SELF);
	struct window *w;

	*rc = VGPU_OK;
	for (struct window **pp = &sv->kept; *pp; pp = &(*pp)->next) {
		if ((*pp)->size == size) {
			w = *pp;
			*pp = w->next;
			return w;
		}
	}
	/* With kept windows, a refusal is not final: do not count it yet. */
	*rc = take_budget(m, vm->slot, size, !sv->kept);
	bool replace = *rc == VGPU_BUSY && sv->kept;
	if (*rc == VGPU_BUSY && !replace) {
		make_room(m, vm, size);
		return NULL;
	}
	if (*rc != VGPU_OK && !replace) {
		if (sv->kept) /* final (more than the budget): count it now */
			take_budget(m, vm->slot, size, true);
		return NULL;
	}
	/* A new window is pinned, and later freed: at the VM's rate
	 * (pin_rate_mib_s; under CUDA a pin holds back every VM's GPU work),
	 * checked before the kept windows give way. */
	*rc = vgpu_budget_pin(m->budget, vm->slot, size, vgpu_now_ns());
	w = *rc == VGPU_OK ? calloc(1, sizeof(*w)) : NULL;
	if (!w) {
		if (*rc == VGPU_OK)
			*rc = VGPU_NO_MEMORY;
		if (!replace)
			give_budget(m, vm->slot, size);
		return NULL;
	}
	if (replace)
		release_kept(sv, UINT64_MAX);
	w->m = m;
	w->slot = vm->slot;
	memcpy(w->uuid, vm->uuid, sizeof(w->uuid));
	w->size = size;
	w->memfd = -1;
	w->budgeted = !replace;
	return w;
}

int vgpu_shm_attach(struct mediator *m, struct vgpu_vm *vm, uint64_t data_bytes, int conn_fd,
		    vgpu_shm_ready_fn ready, void *ctx)
{
	uint64_t max = (uint64_t)m->set.shm_max_mib << 20;
	struct session *s;
	struct window *w;
	int rc;

	if (m->stopping)
		return VGPU_SHUTDOWN;
	if (!vgpu_vm_state(m, vm->slot, SELF))
		return VGPU_NO_MEMORY; /* vm_added() could not set it up (logged) */
	if (data_bytes < VGPU_RING_MIN_DATA || data_bytes > VGPU_RING_MAX_DATA ||
	    data_bytes % VGPU_RING_PAGE)
		return VGPU_INVALID_PARAM;
	if (data_bytes > max)
		return VGPU_LIMIT;
	size_t size = (size_t)(VGPU_RING_DATA_OFFSET + data_bytes);
	w = window_get(m, vm, size, &rc);
	if (!w)
		return rc;
	s = calloc(1, sizeof(*s));
	if (!s || pthread_mutex_init(&s->lock, NULL) != 0) {
		free(s);
		window_put(m, vm, w); /* kept again, or released with its budget */
		return VGPU_NO_MEMORY;
	}
	s->m = m;
	s->w = w;
	s->owner = vm;
	s->conn_fd = conn_fd;
	s->doorbell_fd = s->notify_fd = -1;
	s->rc = VGPU_ERROR;
	s->ready = ready;
	s->ready_ctx = ctx;
	s->job = (struct vgpu_job){ .run = make_window, .done = window_made, .slot = vm->slot };
	vgpu_workers_submit(m->workers, &s->job);
	return VGPU_OK;
}

void vgpu_shm_detach(void *session)
{
	struct session *s = session;

	if (!s)
		return;
	/* Closed and drained in one step: from here on backend threads hand
	 * their completions to the loop, and answers that found no room are
	 * dropped with the client. */
	pthread_mutex_lock(&s->lock);
	s->vm = NULL;
	while (s->backlog_head) {
		struct vgpu_request *req = s->backlog_head;

		s->backlog_head = req->next_done;
		__atomic_sub_fetch(&global(s->m)->pending, 1, __ATOMIC_RELAXED);
		s->taken--;
		vgpu_request_free(req);
		s->refs--; /* never the last: the connection's is dropped below */
	}
	s->backlog_tail = NULL;
	pthread_mutex_unlock(&s->lock);
	session_close(s);
	session_unref(s);
}

void vgpu_shm_vm_usage(struct mediator *m, const struct vgpu_vm *vm, struct vgpu_shm_usage *ret)
{
	const struct shm_vm *sv = vgpu_vm_state(m, vm->slot, SELF);

	memset(ret, 0, sizeof(*ret));
	for (const struct window *w = sv ? sv->kept : NULL; w; w = w->next) {
		ret->kept++;
		ret->kept_bytes += w->size;
	}
}

static int shm_vm_added(struct mediator *m, struct vgpu_vm *vm)
{
	struct shm_vm *sv = calloc(1, sizeof(*sv));

	vgpu_vm_set_state(m, vm, SELF, sv);
	return sv ? VGPU_OK : VGPU_NO_MEMORY;
}

/* Its sessions belong to the socket transport's connections, which its
 * removal closes (their windows are released as their last requests end);
 * its kept windows are released now. */
static void shm_vm_removed(struct mediator *m, struct vgpu_vm *vm)
{
	struct shm_vm *sv = vgpu_vm_state(m, vm->slot, SELF);

	(void)m;
	if (!sv)
		return;
	release_kept(sv, UINT64_MAX);
	free(sv);
	vgpu_vm_set_state(m, vm, SELF, NULL);
}

/* Once a second: windows kept longer than window_keep_s are released. */
static void keep_timer_event(void *ctx, uint32_t events)
{
	struct mediator *m = ctx;
	uint64_t ticks, keep_ns = (uint64_t)m->set.window_keep_s * 1000000000ull,
			now = vgpu_now_ns();

	(void)events;
	if (read(global(m)->timer_fd, &ticks, sizeof(ticks)) < 0) {
		/* EAGAIN: look anyway */
	}
	for (long long i = 0; now > keep_ns && i < m->set.max_vms; i++) {
		struct shm_vm *sv = vgpu_vm_state(m, i, SELF);

		if (sv)
			release_kept(sv, now - keep_ns);
	}
}

static int shm_start(struct mediator *m)
{
	struct itimerspec second = { .it_interval = { 1, 0 }, .it_value = { 1, 0 } };
	struct shm_global *g = calloc(1, sizeof(*g));

	if (!g)
		return VGPU_NO_MEMORY;
	vgpu_transport_set_ctx(m, SELF, g);
	g->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	g->timer_watch = (struct vgpu_loop_watch){ .fd = g->timer_fd, .fn = keep_timer_event,
						   .ctx = m };
	if (g->timer_fd < 0 || timerfd_settime(g->timer_fd, 0, &second, NULL) != 0 ||
	    vgpu_loop_add(m->loop, &g->timer_watch, EPOLLIN) != VGPU_OK)
		return VGPU_IO_ERROR;
	g->watching = true;
	return VGPU_OK;
}

/* Shutdown: sessions go on taking descriptors, which admission answers
 * VGPU_SHUTDOWN, as the socket transport does for requests on open
 * connections; new windows are refused (vgpu_shm_attach()), and none is
 * kept any more. */
static void shm_stop_accepting(struct mediator *m)
{
	release_all_kept(m);
}

static void shm_stop(struct mediator *m)
{
	struct shm_global *g = global(m);

	if (!g)
		return;
	if (g->watching)
		vgpu_loop_remove(m->loop, &g->timer_watch);
	if (g->timer_fd >= 0)
		close(g->timer_fd);
	free(g);
	vgpu_transport_set_ctx(m, SELF, NULL);
}

static uint64_t shm_pending(struct mediator *m)
{
	return __atomic_load_n(&global(m)->pending, __ATOMIC_RELAXED);
}

const struct vgpu_transport vgpu_transport_shm = {
	.name = "shm",
	.zero_copy = true,
	.start = shm_start,
	.stop_accepting = shm_stop_accepting,
	.stop = shm_stop,
	.vm_added = shm_vm_added,
	.vm_removed = shm_vm_removed,
	.respond = shm_respond,
	.complete = shm_complete,
	.pending = shm_pending,
};
