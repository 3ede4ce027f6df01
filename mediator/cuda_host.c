/* SPDX-License-Identifier: MIT */
/*
 * cuda_host.c - the mediator's side of guests' libcuda.so.1
 * (docs/specs/cuda-remoting.md): each VM's CUDA calls run in a worker
 * process of their own (vgpu-cuda-worker), started here on the VM's first
 * CUDA message, with the GPUs of the VM's pool and its device-memory
 * quota of that moment, as the `cuda_worker_user` (nobody by default).
 * Every connection on which a VM's process speaks CUDA is handed to the
 * worker, with the header already read, over a SOCK_SEQPACKET control
 * socket; from then on the worker alone serves it.
 *
 * A worker that exits (a crash, a kill) is reaped through its pidfd and
 * logged; one whose contexts a kernel fault made unusable retires (it
 * says so, and serves its processes to their end); either way the next
 * CUDA message of its VM starts another, at most one in
 * `worker_respawn_ms` (one started sooner waits out the rest in the
 * worker: a guest cannot make the mediator fork or load the driver in a
 * loop, and no program is refused for it). A worker whose
 * VM's pool GPUs or quota changed is let go (its control socket closed: it
 * serves the connections it has, then exits) and a new one, started at
 * once, takes the new connections, so a running process keeps its context and a new one sees
 * the new settings. A VM that leaves the registry lets its worker go the
 * same way; the mediator stopping kills them all.
 *
 * Priority (`worker_hold_us`): a worker says when its processes' kernels
 * are outstanding (BUSY); while one of a higher priority VM's is, the
 * workers of lower ones on a GPU it shares are told to HOLD, and each of
 * their launches waits (at most worker_hold_us). The GPU's own
 * time-slicing between the workers' contexts does the rest.
 *
 * Shares, rate limits and caps (pace.h): on every BUSY change and every
 * VGPU_PACE_STEP_NS while any worker is busy, the time since the last
 * step is charged to the workers that ran and each is told whether to
 * PACE its launches, and until when.
 *
 * Never: block the loop on a worker (every send is non-blocking), or let
 * a worker outlive the mediator (its parent-death signal, and the kill
 * here).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cuda_call.h"
#include "cuda_desc.h"
#include "mediator.h"
#include "pace.h"

extern char **environ;

struct vgpu_cuda_worker {
	struct mediator *m;
	struct vgpu_vm *vm;          /* NULL once let go */
	char uuid[VGPU_UUID_STRLEN + 1];
	pid_t pid;
	int ctl;                     /* -1 once let go */
	int pidfd;
	struct vgpu_loop_watch watch;
	struct vgpu_loop_watch ctl_watch; /* its reports */
	bool reading;                /* ctl_watch is in the loop */
	struct vgpu_cuda_report report;   /* the latest (zero: none yet) */
	int priority;                /* its VM's, when started */
	bool busy;                   /* it says its processes have kernels outstanding */
	bool held;                   /* told to hold */
	struct vgpu_pace_worker pace;
	uint64_t told_until;         /* the PACE deadline it was last told; 0: none */
	uint64_t gpus;               /* what it was started with */
	long long quota_mib;
	struct vgpu_cuda_worker *next;
};

static void unlink_worker(struct mediator *m, struct vgpu_cuda_worker *w)
{
	for (struct vgpu_cuda_worker **p = &m->cuda_workers; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			return;
		}
}

/* No more connections for it: its control socket shut for writing, it
 * finishes what it serves, then exits. Its reports and BUSY flags still
 * come (it may serve a long program yet). */
static void let_go(struct vgpu_cuda_worker *w)
{
	if (w->vm && w->vm->cuda == w)
		w->vm->cuda = NULL;
	if (w->vm && w->ctl >= 0)
		shutdown(w->ctl, SHUT_WR);
	w->vm = NULL;
}

/* Its control socket closed here (it ended, or is gone). */
static void close_ctl(struct vgpu_cuda_worker *w)
{
	if (w->reading)
		vgpu_loop_remove(w->m->loop, &w->ctl_watch);
	w->reading = false;
	if (w->ctl >= 0)
		close(w->ctl);
	w->ctl = -1;
}

/* Each worker told to hold its launches while a worker of a higher
 * priority VM that shares a GPU with it is busy, and to go on when none
 * is (`worker_hold_us`). A worker let go is not told (its socket is shut
 * for that), but its being busy still holds the others. */
void vgpu_cuda_regate(struct mediator *m)
{
	for (struct vgpu_cuda_worker *w = m->cuda_workers; w; w = w->next)
		if (w->vm)
			w->priority = w->vm->priority;
	for (struct vgpu_cuda_worker *w = m->cuda_workers; w; w = w->next) {
		bool hold = false;

		for (const struct vgpu_cuda_worker *b = m->cuda_workers; b && !hold; b = b->next)
			hold = b->busy && b->priority > w->priority && (b->gpus & w->gpus);
		hold = hold && m->set.worker_hold_us > 0;
		struct vgpu_cuda_flag f = { .magic = VGPU_CUDA_HOLD_MAGIC, .on = hold };

		if (w->vm && w->ctl >= 0 && hold != w->held &&
		    send(w->ctl, &f, sizeof(f), MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)sizeof(f))
			w->held = hold;
	}
}

/* The pacing's step (pace.h): the time since the last charged, each
 * worker told to PACE or not, the next step timed. A worker let go is
 * charged but cannot be told (its socket is shut for that). */
static void pace(struct mediator *m)
{
	uint64_t now = vgpu_now_ns(), next;
	struct vgpu_pace_worker *list = NULL, **tail = &list;
	bool any = false;

	for (struct vgpu_cuda_worker *w = m->cuda_workers; w; w = w->next) {
		const struct vgpu_vm *vm = vgpu_vm_by_uuid(m, w->uuid);

		w->pace.slot = vm ? (uint32_t)vm->slot : UINT32_MAX;
		w->pace.gpus = w->gpus;
		w->pace.busy = w->busy;
		w->pace.fixed = !w->vm || w->ctl < 0;
		w->pace.next = NULL;
		*tail = &w->pace;
		tail = &w->pace.next;
		any |= w->busy;
	}
	vgpu_queue_pace(m->queue, list, m->cuda_step_ns ? m->cuda_step_ns : now, now);
	m->cuda_step_ns = now;
	for (struct vgpu_cuda_worker *w = m->cuda_workers; w; w = w->next) {
		uint64_t until = w->pace.paced_until;
		/* At most a second a message: the next step tells again. */
		uint64_t us = until > now ? (until - now + 999) / 1000 : 0;
		struct vgpu_cuda_flag f = { .magic = VGPU_CUDA_PACE_MAGIC,
					    .on = (uint32_t)(us > 1000000 ? 1000000 : us) };

		uint64_t told = w->told_until;

		/* Told anew: a deadline given or lifted, shortened, or longer
		 * than the one the worker has, which ends within 100 ms. */
		if (w->pace.fixed || (until ? told && until >= told && (until == told ||
								    told > now + 100000000u)
					    : !told))
			continue;
		if (send(w->ctl, &f, sizeof(f), MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)sizeof(f))
			w->told_until = until ? now + (uint64_t)f.on * 1000u : 0;
	}
	next = vgpu_pace_next(list, now);
	if (!next || next > now + VGPU_PACE_STEP_NS)
		next = now + VGPU_PACE_STEP_NS;
	/* No one busy: no step until one is (a zero time disarms it). */
	struct itimerspec its = { .it_value = { 0, any ? (long)(next - now) : 0 } };

	timerfd_settime(m->cuda_tick_fd, 0, &its, NULL);
}

void vgpu_cuda_tick(void *ctx, uint32_t events)
{
	struct mediator *m = ctx;
	uint64_t fired;

	(void)events;
	if (read(m->cuda_tick_fd, &fired, sizeof(fired)) == (ssize_t)sizeof(fired))
		pace(m);
}

/* It retired (@rc: the sticky error that ended its contexts): no new
 * connections for it; the VM's next one starts another worker. */
static void retired(struct vgpu_cuda_worker *w, uint32_t rc)
{
	struct vgpu_vm *vm = w->vm;

	if (!vm)
		return;
	vgpu_log(LOG_WARNING, "VM %s: its CUDA worker (pid %d) retired: error %u left its "
		 "contexts unusable; the VM's new processes get a new worker", w->uuid, (int)w->pid, rc);
	vm->cuda_deaths++;
	let_go(w);
}

/* A connection it took after it retired, back (@fd, its header @head):
 * to the VM's current worker. */
static void handed_back(struct vgpu_cuda_worker *w, int fd, const uint8_t *head)
{
	struct vgpu_vm *vm = vgpu_vm_by_uuid(w->m, w->uuid);

	if (!vm || vgpu_cuda_handoff(w->m, vm, fd, head) != VGPU_OK)
		vgpu_log(LOG_WARNING, "VM %s: a CUDA program's connection is closed: no CUDA "
			 "worker for it", w->uuid);
	close(fd);
}

/* Its control socket is readable: its reports, flags and handed-back
 * connections (a few at most a round: a worker cannot keep the loop
 * here). Anything else is dropped (a descriptor with it closed); its end
 * (or an error) is for its pidfd to tell. */
static void reported(void *ctx, uint32_t events)
{
	struct vgpu_cuda_worker *w = ctx;
	bool was = w->busy;

	(void)events;
	for (int i = 0; i < 4 && w->ctl >= 0; i++) {
		union {
			struct vgpu_cuda_report r;
			struct vgpu_cuda_flag f;
			uint8_t head[VGPU_PROTO_HEADER_SIZE];
		} u;
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = { .iov_base = &u, .iov_len = sizeof(u) };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
				      .msg_controllen = sizeof(ctl.buf) };
		ssize_t got = recvmsg(w->ctl, &msg, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
		struct cmsghdr *cm;
		int fd = -1;

		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (got <= 0) { /* it closed its end, or is gone: nothing more to read */
			close_ctl(w);
			w->busy = false;
			break;
		}
		cm = CMSG_FIRSTHDR(&msg);
		if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(cm), sizeof(int));
		if (fd >= 0 && got == (ssize_t)sizeof(u.head) && !(msg.msg_flags & MSG_CTRUNC))
			handed_back(w, fd, u.head);
		else if (fd >= 0)
			close(fd);
		else if (got == (ssize_t)sizeof(u.r) && u.r.magic == VGPU_CUDA_REPORT_MAGIC)
			w->report = u.r;
		else if (got == (ssize_t)sizeof(u.f) && u.f.magic == VGPU_CUDA_BUSY_MAGIC)
			w->busy = u.f.on != 0;
		else if (got == (ssize_t)sizeof(u.f) && u.f.magic == VGPU_CUDA_RETIRE_MAGIC)
			retired(w, u.f.on);
	}
	if (w->busy != was) {
		vgpu_cuda_regate(w->m);
		pace(w->m);
	}
}

/* Its pidfd is readable: it exited. */
static void exited(void *ctx, uint32_t events)
{
	struct vgpu_cuda_worker *w = ctx;
	struct mediator *m = w->m;
	int status = 0;

	(void)events;
	if (waitpid(w->pid, &status, WNOHANG) == 0)
		return; /* not yet */
	if (WIFSIGNALED(status))
		vgpu_log(LOG_WARNING, "VM %s: its CUDA worker (pid %d) was killed by signal %d; "
			 "its processes' contexts are lost", w->uuid, (int)w->pid, WTERMSIG(status));
	else if (WEXITSTATUS(status) != 0)
		vgpu_log(LOG_WARNING, "VM %s: its CUDA worker (pid %d) exited with status %d",
			 w->uuid, (int)w->pid, WEXITSTATUS(status));
	else
		vgpu_log(LOG_INFO, "VM %s: its CUDA worker (pid %d) exited", w->uuid, (int)w->pid);
	vgpu_loop_remove(m->loop, &w->watch);
	close(w->pidfd);
	/* What it sent before it ended (connections it handed back among
	 * them), then its socket: at most 256 messages. */
	for (int i = 0; i < 64 && w->ctl >= 0; i++)
		reported(w, 0);
	let_go(w);
	close_ctl(w);
	struct vgpu_vm *vm = vgpu_vm_by_uuid(m, w->uuid);
	bool was_busy = w->busy;

	w->busy = false;
	pace(m); /* its last time charged */
	if (vm) {
		vm->cuda_launches += w->report.launches;
		vm->cuda_gpu_ns += w->pace.gpu_ns;
		vm->cuda_paced_ns += w->pace.paced_ns;
		vm->cuda_deaths += WIFSIGNALED(status) || WEXITSTATUS(status) != 0;
	}
	unlink_worker(m, w);
	if (was_busy)
		vgpu_cuda_regate(m);
	free(w);
}

/* "0,1" of the GPUs in @mask: the first VGPU_CUDA_MAX_DEVICES of them
 * (what a description holds). */
static void gpu_list(uint64_t mask, char *out, size_t size)
{
	size_t n = 0;
	int k = 0;

	out[0] = '\0';
	for (int i = 0; i < 64 && n < size && k < VGPU_CUDA_MAX_DEVICES; i++)
		if (mask >> i & 1) {
			n += (size_t)snprintf(out + n, size - n, "%s%d", n ? "," : "", i);
			k++;
		}
}

static int spawn(struct mediator *m, struct vgpu_vm *vm, uint64_t gpus)
{
	char gpu_arg[256], quota_arg[32], hold_arg[32], delay_arg[32];
	char *argv[16];
	int argc = 0, sv[2], rc;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	struct vgpu_cuda_worker *w;
	pid_t pid;

	/* At most one start in worker_respawn_ms: one sooner is made now and
	 * waits in the worker (its connections queued meanwhile), so a program
	 * is never refused for it. Each start waits for the one before it, so
	 * a VM whose workers keep failing makes one in that time. */
	uint64_t now = vgpu_now_ns(), delay = 0, respawn = (uint64_t)m->set.worker_respawn_ms * 1000000u;

	if (vm->cuda_spawned_ns && vm->cuda_spawned_ns + respawn > now)
		delay = vm->cuda_spawned_ns + respawn - now;
	if (delay > respawn) /* the last one is still waiting (it died meanwhile) */
		delay = respawn;
	vm->cuda_spawned_ns = now + delay;
	snprintf(delay_arg, sizeof(delay_arg), "%llu", (unsigned long long)(delay / 1000000));
	gpu_list(gpus, gpu_arg, sizeof(gpu_arg));
	snprintf(quota_arg, sizeof(quota_arg), "%lld", vm->mem_quota_mib);
	argv[argc++] = (char *)"vgpu-cuda-worker";
	argv[argc++] = (char *)"--vm-uuid";
	argv[argc++] = vm->uuid;
	argv[argc++] = (char *)"--gpus";
	argv[argc++] = gpu_arg;
	if (vm->mem_quota_mib > 0) {
		argv[argc++] = (char *)"--mem-quota-mib";
		argv[argc++] = quota_arg;
	}
	snprintf(hold_arg, sizeof(hold_arg), "%lld", m->set.worker_hold_us);
	argv[argc++] = (char *)"--hold-us";
	argv[argc++] = hold_arg;
	if (m->set.cuda_worker_user[0]) {
		argv[argc++] = (char *)"--user";
		argv[argc++] = m->set.cuda_worker_user;
	}
	if (delay) {
		argv[argc++] = (char *)"--start-delay-ms";
		argv[argc++] = delay_arg;
	}
	argv[argc] = NULL;

	w = calloc(1, sizeof(*w));
	if (!w)
		return VGPU_NO_MEMORY;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
		free(w);
		return VGPU_ERROR;
	}
	/* The worker's end becomes its descriptor 3; nothing else of ours
	 * goes with it. */
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
	posix_spawn_file_actions_addclosefrom_np(&fa, 4);
	/* Not the mediator's blocked signals (its loop takes SIGTERM and the
	 * like through a signalfd) nor its ignored SIGPIPE. */
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawn(&pid, m->set.cuda_worker, &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	close(sv[1]);
	if (rc != 0) {
		vgpu_log(LOG_ERR, "VM %s: cannot start its CUDA worker %s: %s", vm->uuid,
			 m->set.cuda_worker, strerror(rc));
		close(sv[0]);
		free(w);
		return VGPU_ERROR;
	}
	*w = (struct vgpu_cuda_worker){ .m = m, .vm = vm, .pid = pid, .ctl = sv[0], .gpus = gpus,
					.quota_mib = vm->mem_quota_mib, .priority = vm->priority };
	snprintf(w->uuid, sizeof(w->uuid), "%s", vm->uuid);
	w->pidfd = pidfd_open(pid, 0);
	w->watch = (struct vgpu_loop_watch){ .fd = w->pidfd, .fn = exited, .ctx = w };
	w->ctl_watch = (struct vgpu_loop_watch){ .fd = w->ctl, .fn = reported, .ctx = w };
	if (w->pidfd < 0 || vgpu_loop_add(m->loop, &w->watch, EPOLLIN) != VGPU_OK ||
	    vgpu_loop_add(m->loop, &w->ctl_watch, EPOLLIN) != VGPU_OK) {
		if (w->pidfd >= 0)
			vgpu_loop_remove(m->loop, &w->watch); /* if it was added */
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		if (w->pidfd >= 0)
			close(w->pidfd);
		close(w->ctl);
		free(w);
		return VGPU_ERROR;
	}
	w->reading = true;
	w->next = m->cuda_workers;
	m->cuda_workers = w;
	vm->cuda = w;
	vm->cuda_starts++;
	vgpu_cuda_regate(m); /* held from the start while a higher VM's worker is busy */
	vgpu_log(LOG_NOTICE, "VM %s: CUDA worker started (pid %d, GPUs %s%s%s%s%s%s)", vm->uuid,
		 (int)pid, gpu_arg, vm->mem_quota_mib > 0 ? ", quota MiB " : "",
		 vm->mem_quota_mib > 0 ? quota_arg : "", delay ? ", waits " : "", delay ? delay_arg : "",
		 delay ? " ms" : "");
	return VGPU_OK;
}

int vgpu_cuda_handoff(struct mediator *m, struct vgpu_vm *vm, int fd,
		      const uint8_t head[VGPU_PROTO_HEADER_SIZE])
{
	uint64_t gpus = vgpu_gpu_mask(m, m->pools[vgpu_pool_index(vm->pool)].gpus);
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = (void *)head, .iov_len = VGPU_PROTO_HEADER_SIZE };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			      .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *cm;
	int rc;

	if (vm->cuda && (vm->cuda->gpus != gpus || vm->cuda->quota_mib != vm->mem_quota_mib)) {
		/* New settings: new processes go to a new worker, at once (the
		 * once-a-second bound is for workers that die, not for the
		 * administrator's changes: the connection was closed). */
		let_go(vm->cuda);
		vm->cuda_spawned_ns = 0;
	}
	if (!vm->cuda && (rc = spawn(m, vm, gpus)) != VGPU_OK)
		return rc;
	memset(&ctl, 0, sizeof(ctl));
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	if (sendmsg(vm->cuda->ctl, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) != VGPU_PROTO_HEADER_SIZE) {
		vgpu_log(LOG_WARNING, "VM %s: its CUDA worker does not take connections (%s)",
			 vm->uuid, strerror(errno));
		return VGPU_BUSY;
	}
	return VGPU_OK;
}

void vgpu_cuda_vm_usage(struct mediator *m, const struct vgpu_vm *vm,
			struct vgpu_cuda_usage *u)
{
	*u = (struct vgpu_cuda_usage){ .pid = vm->cuda ? vm->cuda->pid : 0,
				       .starts = vm->cuda_starts, .deaths = vm->cuda_deaths,
				       .launches = vm->cuda_launches, .gpu_ns = vm->cuda_gpu_ns,
				       .paced_ns = vm->cuda_paced_ns };
	for (const struct vgpu_cuda_worker *w = m->cuda_workers; w; w = w->next) {
		if (strcmp(w->uuid, vm->uuid) != 0)
			continue;
		u->workers++;
		u->processes += w->report.conns;
		u->mem_held += w->report.held;
		u->launches += w->report.launches;
		u->image_bytes += w->report.image_bytes;
		u->window_bytes += w->report.window_bytes;
		u->streams += w->report.streams;
		u->events += w->report.events;
		u->gpu_ns += w->pace.gpu_ns;
		u->paced_ns += w->pace.paced_ns;
	}
}

void vgpu_cuda_release(struct mediator *m, struct vgpu_vm *vm)
{
	if (vm) {
		if (vm->cuda)
			let_go(vm->cuda);
		return;
	}
	while (m->cuda_workers) {
		struct vgpu_cuda_worker *w = m->cuda_workers;

		kill(w->pid, SIGKILL);
		waitpid(w->pid, NULL, 0);
		vgpu_loop_remove(m->loop, &w->watch);
		close(w->pidfd);
		let_go(w);
		close_ctl(w);
		m->cuda_workers = w->next;
		free(w);
	}
}
