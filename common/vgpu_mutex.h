/* SPDX-License-Identifier: MIT */
/*
 * vgpu_mutex.h - the mutexes on a request's way through the mediator. A
 * request passes from thread to thread (loop, launcher, waiter) by one
 * thread changing a counter under a lock that another, spinning on the
 * counter, then takes: the spinner sees the change while the lock is still
 * held a few hundred nanoseconds more. A plain glibc mutex then sleeps in
 * the kernel at once, and its holder's unlock must wake it: a futex round
 * trip and a thread wake-up, microseconds, on the request's way. glibc's
 * adaptive mutex (PTHREAD_MUTEX_ADAPTIVE_NP) spins a bounded number of
 * times (glibc.pthread.mutex_spin_count, default 100) before it sleeps,
 * which covers such short holds.
 */
#ifndef VGPU_MUTEX_H
#define VGPU_MUTEX_H

#include <pthread.h>

/* pthread_mutex_init() of an adaptive mutex; its return. */
static inline int vgpu_mutex_init(pthread_mutex_t *mu)
{
	pthread_mutexattr_t attr;
	int rc = pthread_mutexattr_init(&attr);

	if (rc != 0)
		return rc;
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP /* glibc, _GNU_SOURCE */
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
	rc = pthread_mutex_init(mu, &attr);
	pthread_mutexattr_destroy(&attr);
	return rc;
}

#endif
