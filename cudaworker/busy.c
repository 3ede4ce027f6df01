/* SPDX-License-Identifier: MIT */
/*
 * busy.c - what the worker tells its mediator of its VM's GPU work, and
 * how it holds while the mediator says so (docs/scheduler.md, "A CUDA
 * worker's work").
 *
 * Busy: some process has launched since it last synchronized, or a kernel
 * was launched in the last BUSY_LINGER_NS. A thread of its own tells the
 * mediator when that starts and when it ends (BUSY flag, cuda_call.h),
 * looking every BUSY_POLL_NS while busy and asleep otherwise: a launch
 * only stores its time and, at the start of a burst, wakes that thread;
 * no system call on the launch's way otherwise. A flag the socket had no
 * room for is sent again at the next look.
 *
 * Pace: while the mediator says the VM is over its rate limit, its pool
 * over its cap or the VM ahead of its share (mediator/pace.h), each launch
 * waits until the deadline it gave, or until it says no longer.
 *
 * Hold: while the mediator says a higher priority VM's worker is busy,
 * each launch waits until it says no longer, at most --hold-us.
 */
#include <errno.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

#include "vgpu_clock.h"
#include "worker.h"

#define BUSY_POLL_NS ((uint64_t)250 * 1000)
#define BUSY_LINGER_NS ((uint64_t)1000 * 1000)

static void pause_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };

	nanosleep(&ts, NULL);
}

void worker_busy(struct worker *w, bool *conn_busy, bool busy)
{
	if (busy) {
		atomic_store(&w->last_launch_ns, vgpu_now_ns());
		if (!atomic_load(&w->busy_awake)) {
			pthread_mutex_lock(&w->lock);
			if (!atomic_load(&w->busy_awake)) {
				atomic_store(&w->busy_awake, true);
				pthread_cond_signal(&w->busy_cv);
			}
			pthread_mutex_unlock(&w->lock);
		}
	}
	if (*conn_busy == busy)
		return;
	*conn_busy = busy;
	pthread_mutex_lock(&w->lock);
	w->busy_conns += busy ? 1 : -1;
	pthread_mutex_unlock(&w->lock);
}

/* Whether the VM's processes have GPU work outstanding, as far as the
 * worker can tell. */
static bool busy_now(struct worker *w)
{
	int conns;

	pthread_mutex_lock(&w->lock);
	conns = w->busy_conns;
	pthread_mutex_unlock(&w->lock);
	return conns > 0 || vgpu_now_ns() - atomic_load(&w->last_launch_ns) < BUSY_LINGER_NS;
}

static bool tell(bool busy)
{
	struct vgpu_cuda_flag f = { .magic = VGPU_CUDA_BUSY_MAGIC, .on = busy };

	return send(WORKER_CONTROL_FD, &f, sizeof(f), MSG_DONTWAIT | MSG_NOSIGNAL) ==
	       (ssize_t)sizeof(f);
}

void *worker_busy_main(void *arg)
{
	struct worker *w = arg;
	bool told = false;   /* what the mediator last heard: busy */

	for (;;) {
		pthread_mutex_lock(&w->lock);
		while (!atomic_load(&w->busy_awake))
			pthread_cond_wait(&w->busy_cv, &w->lock);
		pthread_mutex_unlock(&w->lock);
		for (;;) {
			bool busy = busy_now(w);

			if (busy != told && tell(busy))
				told = busy;
			else if (busy != told && errno != EAGAIN && errno != EINTR)
				return NULL; /* the mediator is gone */
			if (!busy && !told) {
				/* Asleep from here, unless a launch came after the
				 * look above: it saw busy_awake still set and did
				 * not wake anyone, so look once more after clearing
				 * it (both sequentially consistent: one of the two
				 * sees the other). */
				atomic_store(&w->busy_awake, false);
				if (!busy_now(w))
					break;
				atomic_store(&w->busy_awake, true);
			}
			pause_ns(BUSY_POLL_NS);
		}
	}
}

void worker_gate(struct worker *w)
{
	uint64_t until, now;

	/* Looked at again each ms at most: a new deadline, or none, counts. */
	while ((until = atomic_load_explicit(&w->paced_until, memory_order_acquire)) &&
	       (now = vgpu_now_ns()) < until)
		pause_ns(until - now < 1000000u ? until - now : 1000000u);

	if (!w->hold_ns || !atomic_load_explicit(&w->hold, memory_order_acquire))
		return;
	until = vgpu_now_ns() + w->hold_ns;
	while (atomic_load_explicit(&w->hold, memory_order_acquire) && vgpu_now_ns() < until)
		pause_ns(20000);
}
