/* SPDX-License-Identifier: MIT */
/*
 * worker.h - threads for work too slow for the loop thread: making and
 * pinning a shared-memory window, releasing one, pinning a request's new
 * buffers, reading a large spool file and writing a large spool answer.
 * While a worker does that, the loop goes on serving every VM's small
 * requests.
 *
 * A job runs on a worker thread, then its done callback runs on the loop
 * thread. Jobs are taken round-robin between VMs (FIFO within a VM), and
 * one VM has at most one job running at a time: a VM that submits many
 * slow jobs occupies one worker, and delays another VM's jobs by at most
 * one job. Workers run at a lower CPU priority (nice 10) than the loop and
 * the backend.
 */
#ifndef VGPU_MEDIATOR_WORKER_H
#define VGPU_MEDIATOR_WORKER_H

#include <stdint.h>

#include "loop.h"

struct vgpu_job {
	void (*run)(struct vgpu_job *job);  /* on a worker thread */
	void (*done)(struct vgpu_job *job); /* then on the loop thread; may free the job */
	uint32_t slot;                      /* the VM it is for */
	struct vgpu_job *next;              /* the pool's */
};

struct vgpu_workers;

/* @threads workers for @max_vms VM slots; their completions are delivered
 * by @loop. */
int vgpu_workers_new(struct vgpu_loop *loop, int threads, uint32_t max_vms,
		     struct vgpu_workers **ret);
/* Queue @job (loop thread; slot < max_vms). Never fails: the caller holds
 * the job's memory. */
void vgpu_workers_submit(struct vgpu_workers *w, struct vgpu_job *job);
/* Jobs submitted whose done() has not run yet. */
uint32_t vgpu_workers_pending(struct vgpu_workers *w);
/* Run every queued job to its end (done() included, on the calling loop
 * thread), stop the threads and free the pool. NULL is fine. */
void vgpu_workers_free(struct vgpu_workers *w);

#endif
