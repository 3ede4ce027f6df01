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
#include <unistd.h>

#include "mediator.h"
#include "vgpu_ring.h"

#define IDX 2              /* this transport's index in transport_state */
#define BATCH 64           /* descriptors taken per doorbell round, for fairness */

struct shm_global {
	uint64_t pending;      /* answers waiting for room in a completion ring (atomic) */
};

struct session {
	struct mediator *m;
	struct vgpu_job job;         /* making, then releasing the window */
	uint32_t slot;               /* the VM's, for its budget */
	struct vgpu_vm *owner;       /* the VM, while the window is made */
	int memfd;                   /* while made: handed to the client */
	int rc;                      /* the outcome of making it */
	bool pinned;                 /* host_register()ed */
	char why[96];                /* why making it failed */
	vgpu_shm_ready_fn ready;     /* told when it is made */
	void *ready_ctx;
	pthread_mutex_t lock;        /* guards the fields marked (L) */
	struct vgpu_vm *vm;          /* (L) NULL once the VM or its connection is gone */
	int refs;                    /* (L) the connection + each request not yet answered */
	int conn_fd;                 /* the owning connection (borrowed): shut down on abuse */
	uint8_t *win;                /* the mapping, pinned by the backend */
	size_t win_size;
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
	return m->transport_ctx[IDX];
}

static uint32_t *index_at(struct session *s, size_t off)
{
	return (uint32_t *)(void *)(s->win + off);
}

static void kick(int efd)
{
	uint64_t one = 1;

	if (write(efd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is already non-zero, which is all we want. */
	}
}

/* A worker: unpin and unmap the window (when ours is the last reference,
 * munmap frees its pages: tens of ms per GiB). */
static void release_window(struct vgpu_job *job)
{
	struct session *s = (struct session *)((char *)job - offsetof(struct session, job));
	struct mediator *m = s->m;

	if (s->pinned)
		m->backend->host_unregister(m->backend_ctx, s->win);
	if (s->win)
		munmap(s->win, s->win_size);
	if (s->memfd >= 0)
		close(s->memfd);
}

/* Loop thread: the window is gone; give back its budget. */
static void window_released(struct vgpu_job *job)
{
	struct session *s = (struct session *)((char *)job - offsetof(struct session, job));
	struct mediator *m = s->m;

	vgpu_budget_give(m->budget, s->slot, VGPU_BUDGET_WINDOW_BYTES, s->win_size);
	vgpu_budget_give(m->budget, s->slot, VGPU_BUDGET_WINDOWS, 1);
	if (s->notify_fd >= 0)
		close(s->notify_fd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* Loop thread, the last reference gone: release the window on a worker. */
static void session_free(struct session *s)
{
	s->job.run = release_window;
	s->job.done = window_released;
	vgpu_workers_submit(s->m->workers, &s->job);
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
		uint8_t *slot = s->win + VGPU_RING_CQ_OFFSET +
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
	memcpy(raw, s->win + VGPU_RING_SQ_OFFSET +
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
		rc = vgpu_ring_check_desc(&d, &m->limits, s->win_size, &rv);
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
		view.in[i] = (const float *)(const void *)(s->win + rv.in_off[i]);
		view.in_count[i] = rv.in_count[i];
	}
	vgpu_request_admit(req, vm, &view, (float *)(void *)(s->win + rv.out_off));
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

/* Write the control page: what the client reads to find its way. */
static void init_window(struct session *s)
{
	uint8_t *p = s->win;

	memset(p, 0, VGPU_RING_PAGE);
	*index_at(s, VGPU_RING_OFF_MAGIC) = VGPU_RING_MAGIC;
	*index_at(s, VGPU_RING_OFF_VERSION) = VGPU_RING_VERSION;
	*index_at(s, VGPU_RING_OFF_ENTRIES) = VGPU_RING_ENTRIES;
	uint64_t w = s->win_size;
	memcpy(p + VGPU_RING_OFF_WINDOW, &w, sizeof(w));
}

/* A worker: make and pin the window; s->rc says how it went.
 * On failure what was made stays for release_window(). */
static void make_window(struct vgpu_job *job)
{
	struct session *s = (struct session *)((char *)job - offsetof(struct session, job));
	struct mediator *m = s->m;
	size_t size = s->win_size;
	int err = 0;

	s->memfd = memfd_create("vgpu-window", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (s->memfd < 0 || ftruncate(s->memfd, (off_t)size) != 0 ||
	    /* The client can neither shrink the window under us (SIGBUS) nor grow it. */
	    fcntl(s->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
		err = errno;
	if (err) {
		snprintf(s->why, sizeof(s->why), "cannot make it: %s", strerror(err));
		s->rc = err == ENOMEM || err == ENOSPC ? VGPU_NO_MEMORY : VGPU_IO_ERROR;
		return;
	}
	s->win = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, s->memfd, 0);
	if (s->win == MAP_FAILED) {
		snprintf(s->why, sizeof(s->why), "cannot map it: %s", strerror(errno));
		s->win = NULL;
		s->rc = VGPU_NO_MEMORY;
		return;
	}
	init_window(s);
	s->rc = m->backend->host_register(m->backend_ctx, s->win, size);
	if (s->rc != VGPU_OK)
		snprintf(s->why, sizeof(s->why), "cannot pin it: %s", vgpu_strerror(s->rc));
	s->pinned = s->rc == VGPU_OK;
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
		fds[1] = fcntl(s->doorbell_fd, F_DUPFD_CLOEXEC, 0);
		fds[2] = fcntl(s->notify_fd, F_DUPFD_CLOEXEC, 0);
		if (fds[1] < 0 || fds[2] < 0) {
			vgpu_loop_remove(m->loop, &s->watch);
			rc = VGPU_IO_ERROR;
		}
	}
	if (rc != VGPU_OK) {
		if (s->why[0]) /* made on a worker, logged here: the limiter is the loop's */
			vgpu_log_guest(&s->owner->rl, LOG_ERR, "VM %s: a %zu-byte window: %s",
				       s->owner->uuid, s->win_size, s->why);
		for (int i = 1; i < 3; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		if (s->doorbell_fd >= 0)
			close(s->doorbell_fd);
		s->doorbell_fd = -1;
		s->ready(s->ready_ctx, rc, NULL, NULL);
		session_free(s);
		return;
	}
	fds[0] = s->memfd; /* the caller sends and closes it */
	s->memfd = -1;
	s->vm = s->owner;
	s->refs = 1;
	vgpu_log_guest(&s->owner->rl, LOG_INFO, "VM %s: shared-memory window of %zu MiB attached",
		       s->owner->uuid, s->win_size >> 20);
	s->ready(s->ready_ctx, VGPU_OK, s, fds);
}

int vgpu_shm_attach(struct mediator *m, struct vgpu_vm *vm, uint64_t data_bytes, int conn_fd,
		    vgpu_shm_ready_fn ready, void *ctx)
{
	uint64_t max = (uint64_t)m->set.shm_max_mib << 20;
	struct session *s;
	int rc;

	if (m->stopping)
		return VGPU_SHUTDOWN;
	if (data_bytes < VGPU_RING_MIN_DATA || data_bytes > VGPU_RING_MAX_DATA ||
	    data_bytes % VGPU_RING_PAGE)
		return VGPU_INVALID_PARAM;
	if (data_bytes > max)
		return VGPU_LIMIT;
	size_t size = (size_t)(VGPU_RING_DATA_OFFSET + data_bytes);
	rc = vgpu_budget_take(m->budget, vm->slot, VGPU_BUDGET_WINDOWS, 1);
	if (rc != VGPU_OK)
		return rc;
	rc = vgpu_budget_take(m->budget, vm->slot, VGPU_BUDGET_WINDOW_BYTES, size);
	if (rc != VGPU_OK) {
		vgpu_budget_give(m->budget, vm->slot, VGPU_BUDGET_WINDOWS, 1);
		return rc;
	}
	s = calloc(1, sizeof(*s));
	if (!s || pthread_mutex_init(&s->lock, NULL) != 0) {
		free(s);
		vgpu_budget_give(m->budget, vm->slot, VGPU_BUDGET_WINDOW_BYTES, size);
		vgpu_budget_give(m->budget, vm->slot, VGPU_BUDGET_WINDOWS, 1);
		return VGPU_NO_MEMORY;
	}
	s->m = m;
	s->slot = vm->slot;
	s->owner = vm;
	s->conn_fd = conn_fd;
	s->win_size = size;
	s->memfd = s->doorbell_fd = s->notify_fd = -1;
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

/* Sessions belong to the socket transport's connections: a VM's removal
 * closes its connections, which detaches their sessions. */
static int shm_vm_added(struct mediator *m, struct vgpu_vm *vm)
{
	(void)m;
	(void)vm;
	return VGPU_OK;
}

static void shm_vm_removed(struct mediator *m, struct vgpu_vm *vm)
{
	(void)m;
	(void)vm;
}

static int shm_start(struct mediator *m)
{
	m->transport_ctx[IDX] = calloc(1, sizeof(struct shm_global));
	return m->transport_ctx[IDX] ? VGPU_OK : VGPU_NO_MEMORY;
}

/* Shutdown: sessions go on taking descriptors, which admission answers
 * VGPU_SHUTDOWN, as the socket transport does for requests on open
 * connections; new windows are refused (vgpu_shm_attach()). */
static void shm_stop_accepting(struct mediator *m)
{
	(void)m;
}

static void shm_stop(struct mediator *m)
{
	free(m->transport_ctx[IDX]);
	m->transport_ctx[IDX] = NULL;
}

static uint64_t shm_pending(struct mediator *m)
{
	return __atomic_load_n(&global(m)->pending, __ATOMIC_RELAXED);
}

const struct vgpu_transport vgpu_transport_shm = {
	.name = "shm",
	.index = IDX,
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
