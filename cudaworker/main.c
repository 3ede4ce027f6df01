/* SPDX-License-Identifier: MIT */
/*
 * vgpu-cuda-worker - runs one VM's CUDA calls on the host's GPUs
 * (docs/specs/cuda-remoting.md, "The worker"). Started by vgpu-mediator,
 * never by hand:
 *
 *   vgpu-cuda-worker --vm-uuid UUID --gpus 0,1 [--mem-quota-mib N]
 *                    [--hold-us N] [--user NAME] [--start-delay-ms N]
 *
 * with the control socket (SOCK_SEQPACKET) as descriptor 3: each message
 * on it is the 32-byte header the mediator read from a new connection of
 * the VM's libcuda.so.1 and that connection's descriptor; the worker
 * serves each on a thread of its own. When the control socket closes (the
 * mediator let it go) it serves the connections it has to their end, then
 * exits, and its GPU memory and contexts go with it; when the mediator
 * dies it is killed (its parent-death signal). About once a second it
 * sends the mediator a report on the same socket (struct
 * vgpu_cuda_report: its processes, memory, launches; vgpu-admin stats),
 * and when its processes' GPU work starts and ends (BUSY); the mediator
 * tells it when a higher priority VM's worker is busy (HOLD): then each
 * launch waits, at most --hold-us (default 0: never). A call answered
 * with one of CUDA's sticky errors (a kernel fault) retires it: it tells
 * the mediator (RETIRE), which starts another worker for the VM's new
 * processes (--start-delay-ms: one started within a second of the last
 * waits that long before it loads the driver), hands back a connection
 * that reached it meanwhile, and serves the processes it has (their
 * contexts gone, as they would be natively) for WORKER_RETIRE_GRACE_MS
 * at most, then exits, freeing what they held.
 *
 * Started as root with --user, it becomes that user (groups dropped, no
 * new privileges) before it loads the driver: a VM's worker reaches the
 * GPU device files and nothing of the registry's or the other VMs'.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vgpu_clock.h"
#include "worker.h"

#define PROG "vgpu-cuda-worker"

static struct worker W;

struct job {
	int fd;
	uint8_t head[VGPU_PROTO_HEADER_SIZE];
};

static void *conn_main(void *arg)
{
	struct job *j = arg;

	worker_serve(&W, j->fd, j->head);
	free(j);
	pthread_mutex_lock(&W.lock);
	if (--W.conns == 0)
		pthread_cond_broadcast(&W.idle);
	pthread_mutex_unlock(&W.lock);
	return NULL;
}

/* CUDA's errors after which the process "must be terminated and
 * relaunched" (cuda.h): the context is gone for every later call. */
static bool sticky(CUresult rc)
{
	switch (rc) {
	case CUDA_ERROR_ECC_UNCORRECTABLE:
	case CUDA_ERROR_CONTAINED:
	case CUDA_ERROR_ILLEGAL_ADDRESS:
	case CUDA_ERROR_LAUNCH_TIMEOUT:
	case CUDA_ERROR_ASSERT:
	case CUDA_ERROR_HARDWARE_STACK_ERROR:
	case CUDA_ERROR_ILLEGAL_INSTRUCTION:
	case CUDA_ERROR_MISALIGNED_ADDRESS:
	case CUDA_ERROR_INVALID_ADDRESS_SPACE:
	case CUDA_ERROR_INVALID_PC:
	case CUDA_ERROR_LAUNCH_FAILED:
	case CUDA_ERROR_TENSOR_MEMORY_LEAK:
	case CUDA_ERROR_EXTERNAL_DEVICE:
		return true;
	default:
		return false;
	}
}

void worker_answered(struct worker *w, CUresult rc)
{
	int none = 0;
	struct vgpu_cuda_flag f = { .magic = VGPU_CUDA_RETIRE_MAGIC, .on = (uint32_t)rc };

	if (!sticky(rc) || !atomic_compare_exchange_strong(&w->retired, &none, (int)rc))
		return;
	fprintf(stderr, PROG ": VM %s: error %d leaves its CUDA contexts unusable: retiring "
			"(the VM's new processes get a new worker)\n", w->uuid, (int)rc);
	/* Blocking: the mediator must hear it (it reads this socket always). */
	while (send(WORKER_CONTROL_FD, &f, sizeof(f), MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

/* A connection the mediator handed us after we retired: back to it as it
 * came, for a new worker (cuda_call.h, RETIRE). */
static void hand_back(struct job *j)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = j->head, .iov_len = sizeof(j->head) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			      .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *cm;

	memset(&ctl, 0, sizeof(ctl));
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &j->fd, sizeof(int));
	while (sendmsg(WORKER_CONTROL_FD, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

/* About once a second, what `vgpu-admin stats` shows of the VM's CUDA
 * work, to the mediator (never blocking: a report it has no room for is
 * dropped; a closed socket ends the reports). */
static void *report_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct vgpu_cuda_report r = { .magic = VGPU_CUDA_REPORT_MAGIC };

		sleep(1);
		pthread_mutex_lock(&W.lock);
		r.conns = (uint32_t)W.conns;
		r.held = W.held + W.pool_held;
		r.image_bytes = W.image_bytes;
		r.window_bytes = W.window_bytes;
		r.streams = W.streams;
		r.events = W.events;
		pthread_mutex_unlock(&W.lock);
		r.launches = atomic_load_explicit(&W.launches, memory_order_relaxed);
		if (send(WORKER_CONTROL_FD, &r, sizeof(r), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
		    errno != EAGAIN && errno != EINTR)
			return NULL;
	}
}

/* "0,1,3" into @out (at most VGPU_CUDA_MAX_DEVICES ordinals 0..63). */
static int parse_gpus(const char *s, int *out)
{
	int n = 0;

	while (*s) {
		char *end;
		long v = strtol(s, &end, 10);

		if (end == s || v < 0 || v > 63 || n == VGPU_CUDA_MAX_DEVICES ||
		    (*end && *end != ','))
			return -1;
		out[n++] = (int)v;
		s = *end ? end + 1 : end;
	}
	return n;
}

static int become(const char *user)
{
	struct passwd *pw = getpwnam(user);

	if (!pw) {
		fprintf(stderr, PROG ": no user %s\n", user);
		return -1;
	}
	if (setgroups(0, NULL) || setgid(pw->pw_gid) || setuid(pw->pw_uid)) {
		fprintf(stderr, PROG ": cannot become %s: %s\n", user, strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vm-uuid", required_argument, NULL, 'v' },
		{ "gpus", required_argument, NULL, 'g' },
		{ "mem-quota-mib", required_argument, NULL, 'q' },
		{ "hold-us", required_argument, NULL, 'h' },
		{ "user", required_argument, NULL, 'u' },
		{ "start-delay-ms", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	const char *uuid = "?", *user = NULL;
	int ordinals[VGPU_CUDA_MAX_DEVICES], n = 0, opt;
	unsigned long long delay_ms = 0;
	char *end;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'v':
			uuid = optarg;
			break;
		case 'g':
			n = parse_gpus(optarg, ordinals);
			break;
		case 'q': {
			unsigned long long mib = strtoull(optarg, &end, 10);

			if (*end || mib > (1ull << 30)) /* 1 EiB: beyond any device */
				n = -1;
			else
				W.quota = (uint64_t)mib << 20;
			break;
		}
		case 'h': {
			unsigned long long us = strtoull(optarg, &end, 10);

			if (*end || us > 1000000)
				n = -1;
			else
				W.hold_ns = us * 1000u;
			break;
		}
		case 'u':
			user = optarg;
			break;
		case 'd':
			delay_ms = strtoull(optarg, &end, 10);
			if (*end || delay_ms > 10000)
				n = -1;
			break;
		default:
			n = -1;
		}
	}
	if (n <= 0 || optind != argc) {
		fprintf(stderr, "usage: " PROG " --vm-uuid UUID --gpus N[,N...] [--mem-quota-mib N] "
				"[--hold-us N] [--user NAME] [--start-delay-ms N] (started by vgpu-mediator)\n");
		return 2;
	}
	if (user && geteuid() == 0 && become(user))
		return 1;
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	pthread_mutex_init(&W.lock, NULL);
	pthread_cond_init(&W.idle, NULL);
	pthread_cond_init(&W.busy_cv, NULL);
	pthread_mutex_init(&W.limits_lock, NULL);
	W.uuid = uuid;
	/* The mediator starts a VM's workers at most once a second: one
	 * started sooner waits here, before the driver (connections wait in
	 * the control socket meanwhile). */
	if (delay_ms) {
		struct timespec ts = { .tv_sec = (time_t)(delay_ms / 1000),
				       .tv_nsec = (long)(delay_ms % 1000) * 1000000 };

		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	worker_driver_up(&W, ordinals, n);
	fprintf(stderr, PROG ": VM %s: %u GPU%s%s\n", uuid, W.desc.count,
		W.desc.count == 1 ? "" : "s", W.drv_status ? " (no usable driver)" : "");
	pthread_t reporter, busy;
	if (pthread_create(&reporter, NULL, report_main, NULL) == 0)
		pthread_detach(reporter);
	if (pthread_create(&busy, NULL, worker_busy_main, &W) == 0)
		pthread_detach(busy);

	for (;;) {
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} ctl;
		struct job *j = malloc(sizeof(*j));
		struct iovec iov;
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
				      .msg_controllen = sizeof(ctl.buf) };
		struct cmsghdr *cm;
		pthread_t t;
		ssize_t got;

		if (!j)
			return 1;
		j->fd = -1;
		iov = (struct iovec){ j->head, sizeof(j->head) };
		got = recvmsg(WORKER_CONTROL_FD, &msg, MSG_CMSG_CLOEXEC);
		if (got < 0 && errno == EINTR) {
			free(j);
			continue;
		}
		if (got <= 0) {
			/* The mediator let us go (new settings for the VM, or the VM
			 * left): the connections we have are served to their end.
			 * (A mediator that died took us with it: PDEATHSIG.) */
			free(j);
			atomic_store(&W.hold, false); /* nobody can lift it now */
			atomic_store(&W.paced_until, 0);
			/* Retired, it waits WORKER_RETIRE_GRACE_MS at most: its
			 * contexts are gone, so its processes lose nothing
			 * more, and their device memory must not stay held
			 * beside the next worker's (a VM that faults again and
			 * again would hold its quota many times over). */
			struct timespec until;

			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += WORKER_RETIRE_GRACE_MS / 1000;
			pthread_mutex_lock(&W.lock);
			while (W.conns > 0)
				if (!atomic_load(&W.retired))
					pthread_cond_wait(&W.idle, &W.lock);
				else if (pthread_cond_timedwait(&W.idle, &W.lock, &until) == ETIMEDOUT)
					break;
			pthread_mutex_unlock(&W.lock);
			return 0;
		}
		cm = CMSG_FIRSTHDR(&msg);
		if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&j->fd, CMSG_DATA(cm), sizeof(int));
		if (j->fd < 0 && got == (ssize_t)sizeof(struct vgpu_cuda_flag)) {
			struct vgpu_cuda_flag f;

			memcpy(&f, j->head, sizeof(f));
			if (f.magic == VGPU_CUDA_HOLD_MAGIC)
				atomic_store_explicit(&W.hold, f.on != 0, memory_order_release);
			else if (f.magic == VGPU_CUDA_PACE_MAGIC)
				atomic_store_explicit(&W.paced_until,
						      f.on ? vgpu_now_ns() + (uint64_t)f.on * 1000u : 0,
						      memory_order_release);
			free(j);
			continue;
		}
		if (j->fd >= 0 && got == (ssize_t)sizeof(j->head) && atomic_load(&W.retired)) {
			hand_back(j);
			close(j->fd);
			free(j);
			continue;
		}
		pthread_mutex_lock(&W.lock);
		bool ok = j->fd >= 0 && got == (ssize_t)sizeof(j->head) && W.conns < WORKER_MAX_CONNS;
		if (ok)
			W.conns++;
		pthread_mutex_unlock(&W.lock);
		if (ok && pthread_create(&t, NULL, conn_main, j) == 0) {
			pthread_detach(t);
			continue;
		}
		if (ok) {
			pthread_mutex_lock(&W.lock);
			W.conns--;
			pthread_mutex_unlock(&W.lock);
		}
		if (j->fd >= 0)
			close(j->fd);
		free(j);
	}
}
