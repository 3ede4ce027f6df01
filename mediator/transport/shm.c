/* SPDX-License-Identifier: MIT */
/*
 * shm.c - the shared-memory ring transport (ARCHITECTURE.md, Transports):
 * the fast path. A connection on a VM's socket asks for a window
 * (socket.c calls vgpu_shm_attach()); the mediator makes a sealed memfd
 * with a submission ring, a completion ring and a data area, pins it for
 * the backend, and the client gets the memfd, a doorbell eventfd it writes
 * after publishing descriptors, and its end of a datagram socket pair on
 * which this side signals completions (ring.c: nothing the client shares
 * can make the mediator block). Inputs are read and outputs written in
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
 * Serving the window (taking descriptors, posting completions, the rules
 * a client must keep) is ring.c's, shared with the device's windows in
 * guest RAM; a session is a ring server plus the window it serves.
 */
#include <errno.h>
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
#include "ring.h"
#include "vgpu_ring.h"

#define SELF (&vgpu_transport_shm)

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

/* A window's session: the ring server (ring.c) of one client's
 * connection, and what making its window needs. */
struct session {
	struct vgpu_ring_server rs;  /* must stay first */
	struct vgpu_job job;         /* making the window (or making it ready again) */
	struct window *w;            /* not yet budgeted: its budget is taken on the
				      * worker, after the kept windows it replaces */
	struct vgpu_vm *owner;       /* the VM the window is made for */
	int rc;                      /* the outcome of making it */
	char why[96];                /* why making it failed */
	vgpu_shm_ready_fn ready;     /* told when it is made */
	void *ready_ctx;
	int conn_fd;                 /* the owning connection (borrowed): shut down on abuse */
};

static struct shm_global *global(struct mediator *m)
{
	return vgpu_transport_ctx(m, SELF);
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
		vgpu_budget_give_window(m->budget, w->slot, w->size);
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

/* Loop thread: the session is done with its window (never served, or
 * its ring server released). */
static void session_free(struct session *s)
{
	if (s->w)
		window_put(s->rs.m, s->owner, s->w);
	free(s);
}

static void session_released(struct vgpu_ring_server *rs)
{
	session_free((struct session *)(void *)rs);
}

/* The client broke the ring's rules: its connection is shut down so that
 * it learns (the socket transport then detaches). */
static void session_abused(struct vgpu_ring_server *rs)
{
	shutdown(((struct session *)(void *)rs)->conn_fd, SHUT_RDWR);
}

/* A worker: make and pin the window, or make a kept one ready again;
 * s->rc says how it went. On failure what was made stays for
 * release_window(). */
static void make_window(struct vgpu_job *job)
{
	struct session *s = (struct session *)((char *)job - offsetof(struct session, job));
	struct mediator *m = s->rs.m;
	struct window *w = s->w;
	int err = 0;

	if (!w->budgeted) {
		s->rc = vgpu_budget_take_window(m->budget, w->slot, w->size, true);
		if (s->rc != VGPU_OK)
			return; /* a refusal: socket.c says so */
		w->budgeted = true;
	}
	if (w->made) {
		vgpu_ring_init_window(w->mem, w->size);
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
	vgpu_ring_init_window(w->mem, w->size);
	s->rc = m->backend->host_register(m->backend_ctx, w->mem, w->size);
	if (s->rc != VGPU_OK)
		snprintf(s->why, sizeof(s->why), "cannot pin it: %s", vgpu_strerror(s->rc));
	w->pinned = w->made = s->rc == VGPU_OK;
}

/* Loop thread: the window is made (or not); serve it and hand its
 * descriptors to the connection. */
static void window_made(struct vgpu_job *job)
{
	struct session *s = (struct session *)((char *)job - offsetof(struct session, job));
	struct mediator *m = s->rs.m;
	int fds[3] = { -1, -1, -1 };
	int doorbell = -1, notify = -1, pair[2] = { -1, -1 };
	int rc = s->rc;

	if (rc == VGPU_OK && m->stopping)
		rc = VGPU_SHUTDOWN;
	if (rc == VGPU_OK) {
		doorbell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) == 0) {
			notify = pair[0];
			fds[2] = pair[1]; /* the client's end */
		}
		/* The client's copies. */
		fds[0] = fcntl(s->w->memfd, F_DUPFD_CLOEXEC, 0);
		fds[1] = doorbell < 0 ? -1 : fcntl(doorbell, F_DUPFD_CLOEXEC, 0);
		if (fds[0] < 0 || fds[1] < 0 || fds[2] < 0)
			rc = VGPU_IO_ERROR;
	}
	if (rc == VGPU_OK) {
		s->rs.mem = s->w->mem;
		s->rs.size = s->w->size;
		rc = vgpu_ring_serve(&s->rs, s->owner, doorbell, notify); /* takes both */
		doorbell = notify = -1;
	}
	if (rc != VGPU_OK) {
		if (s->why[0]) /* made on a worker, logged here: the limiter is the loop's */
			vgpu_log_guest(&s->owner->rl, LOG_ERR, "VM %s: a %zu-byte window: %s",
				       s->w->uuid, s->w->size, s->why);
		int all[5] = { fds[0], fds[1], fds[2], doorbell, notify };
		for (int i = 0; i < 5; i++)
			if (all[i] >= 0)
				close(all[i]);
		s->ready(s->ready_ctx, rc, NULL, NULL);
		session_free(s);
		return;
	}
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
	*rc = vgpu_budget_take_window(m->budget, vm->slot, size, !sv->kept);
	bool replace = *rc == VGPU_BUSY && sv->kept;
	if (*rc == VGPU_BUSY && !replace) {
		make_room(m, vm, size);
		return NULL;
	}
	if (*rc != VGPU_OK && !replace) {
		if (sv->kept) /* final (more than the budget): count it now */
			vgpu_budget_take_window(m->budget, vm->slot, size, true);
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
			vgpu_budget_give_window(m->budget, vm->slot, size);
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
	if (!s) {
		window_put(m, vm, w); /* kept again, or released with its budget */
		return VGPU_NO_MEMORY;
	}
	s->rs.m = m;
	s->rs.transport = SELF;
	s->rs.pending = &global(m)->pending;
	s->rs.abused = session_abused;
	s->rs.release = session_released;
	s->w = w;
	s->owner = vm;
	s->conn_fd = conn_fd;
	s->rc = VGPU_ERROR;
	s->ready = ready;
	s->ready_ctx = ctx;
	s->job = (struct vgpu_job){ .run = make_window, .done = window_made, .slot = vm->slot };
	vgpu_workers_submit(m->workers, &s->job);
	return VGPU_OK;
}

void vgpu_shm_detach(void *session)
{
	if (session)
		vgpu_ring_close(&((struct session *)session)->rs);
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
	.respond = vgpu_ring_respond,
	.complete = vgpu_ring_complete,
	.pending = shm_pending,
};
