/* SPDX-License-Identifier: MIT */
/*
 * cpu.c - the CPU backend: the catalogue run by a pool of worker threads.
 *
 * Accepted works wait in one FIFO per priority level; a free worker takes
 * the oldest work of the highest level. A work is cut into parts
 * (cpu_ops.c) that several workers may run at once; the worker that
 * finishes the last part calls done(). Because workers take parts, not
 * whole works, a high-priority work overtakes a large low-priority one at
 * the next part boundary.
 *
 * A work's slot is released (and max_inflight capacity returned) before its
 * done() runs, so a caller that submits again from done() or right after it
 * never sees a spurious VGPU_BUSY.
 *
 * Never: call done() from submit() or with the lock held, allocate in
 * submit(), or let fini() return while a worker may still call done().
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend_internal.h"
#include "cpu_ops.h"
#include "vgpu_mutex.h"

#define CPU_MAX_THREADS 1024

struct cpu_node {
	struct vgpu_work *work;
	uint32_t parts;       /* parts the work is cut into */
	uint32_t next_part;   /* next part to hand to a worker */
	uint32_t parts_done;  /* parts finished */
	uint64_t start_ns;    /* when part 0 started */
	double partial[VGPU_CPU_MAX_PARTS]; /* reduce_sum: each part's sum */
	struct cpu_node *next;  /* in a level's FIFO, or in the free list */
};

struct cpu_ctx {
	pthread_mutex_t lock;
	pthread_cond_t work_cond;  /* a part is queued, or stopping */
	struct cpu_node *head[VGPU_PRIORITY_LEVELS], *tail[VGPU_PRIORITY_LEVELS];
	struct cpu_node *free_nodes;
	struct cpu_node *nodes;    /* max_inflight of them */
	int max_inflight;
	int inflight;              /* accepted, done() not yet called */
	bool stopping;             /* fini: accept nothing more */
	int n_threads;
	pthread_t *threads;
};

static int cpu_probe(char *err, size_t err_size)
{
	if (err && err_size)
		err[0] = '\0';
	return VGPU_OK;
}

static struct cpu_node *first_queued(struct cpu_ctx *c, int *ret_level)
{
	for (int l = VGPU_PRIORITY_LEVELS - 1; l >= 0; l--) {
		if (c->head[l]) {
			*ret_level = l;
			return c->head[l];
		}
	}
	return NULL;
}

/* Called with the lock held after the last part of @node finished; returns
 * with it held, having called done() without it. */
static void finish(struct cpu_ctx *c, struct cpu_node *node)
{
	struct vgpu_work *w = node->work;
	uint64_t exec_ns = vgpu_now_ns() - node->start_ns;

	if (w->op == VGPU_OP_REDUCE_SUM) {
		double sum = 0.0;

		for (uint32_t i = 0; i < node->parts; i++)
			sum += node->partial[i];
		w->out[0] = (float)sum;
	}
	node->next = c->free_nodes;
	c->free_nodes = node;
	c->inflight--;
	pthread_mutex_unlock(&c->lock);
	w->done(w, VGPU_OK, exec_ns);
	pthread_mutex_lock(&c->lock);
}

static void *worker_main(void *arg)
{
	struct cpu_ctx *c = arg;

	pthread_setname_np(pthread_self(), "vgpu-cpu");
	pthread_mutex_lock(&c->lock);
	for (;;) {
		int level;
		struct cpu_node *node = first_queued(c, &level);

		if (!node) {
			if (c->stopping)
				break;
			pthread_cond_wait(&c->work_cond, &c->lock);
			continue;
		}
		uint32_t part = node->next_part++;

		if (part == 0)
			node->start_ns = vgpu_now_ns();
		if (node->next_part == node->parts) {
			c->head[level] = node->next;
			if (!c->head[level])
				c->tail[level] = NULL;
		} else {
			pthread_cond_signal(&c->work_cond); /* another part for another worker */
		}
		pthread_mutex_unlock(&c->lock);
		double sum = vgpu_cpu_op_run_part(node->work, part, node->parts);
		pthread_mutex_lock(&c->lock);
		node->partial[part] = sum;
		if (++node->parts_done == node->parts)
			finish(c, node);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static void cpu_stop(struct cpu_ctx *c, int started)
{
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_cond_broadcast(&c->work_cond);
	pthread_mutex_unlock(&c->lock);
	for (int i = 0; i < started; i++)
		pthread_join(c->threads[i], NULL);
	pthread_cond_destroy(&c->work_cond);
	pthread_mutex_destroy(&c->lock);
	free(c->threads);
	free(c->nodes);
	free(c);
}

static int cpu_init(const struct vgpu_backend_config *cfg, void **ret_ctx, char *err,
		    size_t err_size)
{
	struct cpu_ctx *c;
	long threads = cfg->threads;
	int rc;

	if (cfg->threads < 0 || cfg->threads > CPU_MAX_THREADS || cfg->max_inflight < 0 ||
	    cfg->max_inflight > VGPU_BACKEND_MAX_INFLIGHT) {
		snprintf(err, err_size, "cpu: threads must be 0..%d and max_inflight 0..%d",
			 CPU_MAX_THREADS, VGPU_BACKEND_MAX_INFLIGHT);
		return VGPU_INVALID_PARAM;
	}
	if (threads == 0) {
		threads = sysconf(_SC_NPROCESSORS_ONLN);
		if (threads < 1)
			threads = 1;
		if (threads > CPU_MAX_THREADS)
			threads = CPU_MAX_THREADS;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, err_size, "cpu: out of memory");
		return VGPU_NO_MEMORY;
	}
	c->max_inflight = cfg->max_inflight ? cfg->max_inflight : VGPU_BACKEND_DEFAULT_INFLIGHT;
	c->nodes = calloc((size_t)c->max_inflight, sizeof(*c->nodes));
	c->threads = calloc((size_t)threads, sizeof(*c->threads));
	if (!c->nodes || !c->threads) {
		free(c->nodes);
		free(c->threads);
		free(c);
		snprintf(err, err_size, "cpu: out of memory");
		return VGPU_NO_MEMORY;
	}
	for (int i = c->max_inflight - 1; i >= 0; i--) {
		c->nodes[i].next = c->free_nodes;
		c->free_nodes = &c->nodes[i];
	}
	vgpu_mutex_init(&c->lock);
	pthread_cond_init(&c->work_cond, NULL);
	c->n_threads = (int)threads;
	for (int i = 0; i < c->n_threads; i++) {
		rc = pthread_create(&c->threads[i], NULL, worker_main, c);
		if (rc != 0) {
			cpu_stop(c, i);
			snprintf(err, err_size, "cpu: cannot start worker thread: %s", strerror(rc));
			return VGPU_ERROR;
		}
	}
	*ret_ctx = c;
	return VGPU_OK;
}

static void cpu_fini(void *ctx)
{
	struct cpu_ctx *c = ctx;

	if (c)
		cpu_stop(c, c->n_threads); /* workers drain every queue before they exit */
}

static int cpu_submit(void *ctx, struct vgpu_work *work)
{
	struct cpu_ctx *c = ctx;
	struct cpu_node *node;
	int rc = vgpu_backend_work_check(work);

	if (rc != VGPU_OK)
		return rc;
	pthread_mutex_lock(&c->lock);
	if (c->stopping) {
		rc = VGPU_SHUTDOWN;
	} else if (c->inflight >= c->max_inflight || !c->free_nodes) {
		rc = VGPU_BUSY;
	} else {
		int level = work->priority;

		node = c->free_nodes;
		c->free_nodes = node->next;
		node->work = work;
		node->parts = vgpu_cpu_op_parts(work);
		node->next_part = 0;
		node->parts_done = 0;
		node->next = NULL;
		if (c->tail[level])
			c->tail[level]->next = node;
		else
			c->head[level] = node;
		c->tail[level] = node;
		c->inflight++;
		pthread_cond_signal(&c->work_cond);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static void *cpu_host_alloc(void *ctx, size_t size)
{
	(void)ctx;
	if (size > SIZE_MAX - 63)
		return NULL;
	size = size ? (size + 63) & ~(size_t)63 : 64;
	return aligned_alloc(64, size);
}

static void cpu_host_free(void *ctx, void *ptr, size_t size)
{
	(void)ctx;
	(void)size;
	free(ptr);
}

/* The CPU reads any memory at full speed: nothing to do. */
static int cpu_host_register(void *ctx, void *ptr, size_t size)
{
	(void)ctx;
	(void)ptr;
	(void)size;
	return VGPU_OK;
}

static void cpu_host_unregister(void *ctx, void *ptr)
{
	(void)ctx;
	(void)ptr;
}

static unsigned cpu_concurrency(void *ctx)
{
	return (unsigned)((struct cpu_ctx *)ctx)->n_threads;
}

const struct vgpu_backend_ops vgpu_backend_cpu = {
	.name = "cpu",
	.probe = cpu_probe,
	.init = cpu_init,
	.fini = cpu_fini,
	.submit = cpu_submit,
	.host_alloc = cpu_host_alloc,
	.host_free = cpu_host_free,
	.host_register = cpu_host_register,
	.host_unregister = cpu_host_unregister,
	.concurrency = cpu_concurrency,
};
