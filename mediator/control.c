/* SPDX-License-Identifier: MIT */
/*
 * control.c - RUNDIR/control.sock, for vgpu-admin and the host agent: a
 * client writes one command line, "stats" (one JSON document back) or
 * "metrics" (Prometheus' text format, metrics.c), and the connection
 * closes. Only root can connect (mode 0600).
 *
 * Must never: block the loop on a slow client (commands are read without
 * blocking, bounded to 64 bytes; the reply is sent with a short send
 * timeout), or answer anything but the commands below.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "mediator.h"

#define CMD_MAX 64
#define CLIENTS_MAX 16       /* control connections at once (root's tools) */
#define ACCEPT_PAUSE_MS 100  /* rest after accept() failed or the clients are many */

struct control {
	struct mediator *m;
	int fd;
	struct vgpu_loop_watch watch;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int n_clients;
};

struct control_client {
	struct control *ctl;
	int fd;
	struct vgpu_loop_watch watch;
	char cmd[CMD_MAX + 1];
	size_t got;
};

static json_t *hist_json(const struct vgpu_hist *h)
{
	return json_pack("{s:f, s:f}", "p50", vgpu_hist_quantile(h, 0.50) / 1e3, "p99",
			 vgpu_hist_quantile(h, 0.99) / 1e3);
}

/* Per kind: held now, the VM's limit, refusals. */
static json_t *budget_json(struct mediator *m, uint32_t slot)
{
	struct vgpu_budget_usage u;
	json_t *o = json_object();

	vgpu_budget_usage(m->budget, slot, &u);
	for (int k = 0; k < VGPU_BUDGET_KINDS; k++)
		json_object_set_new(o, vgpu_budget_kind_name(k),
				    json_pack("{s:I, s:I, s:I}", "held", (json_int_t)u.held[k],
					      "limit", (json_int_t)u.limit[k], "refused",
					      (json_int_t)u.refused[k]));
	json_object_set_new(o, "new_pinned", json_pack("{s:I, s:I}", "rate", (json_int_t)u.pin_rate,
						       "refused", (json_int_t)u.pin_refused));
	return o;
}

static json_t *series_json(const struct vgpu_series *s)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o}",
			 "submitted", (json_int_t)s->submitted, "completed", (json_int_t)s->completed,
			 "failed", (json_int_t)s->failed, "rejected", (json_int_t)s->rejected,
			 "bytes_in", (json_int_t)s->bytes_in, "bytes_out", (json_int_t)s->bytes_out,
			 "queue_wait_us", hist_json(&s->queue_wait), "exec_us", hist_json(&s->exec));
}

static char *stats_document(struct mediator *m)
{
	json_t *prio = json_array(), *vms = json_array();
	struct vgpu_series s;
	uint32_t inflight;

	for (int p = VGPU_PRIORITY_LEVELS - 1; p >= 0; p--) {
		vgpu_stats_priority(m->stats, p, &s);
		json_t *o = series_json(&s);
		json_object_set_new(o, "priority", json_integer(p));
		json_object_set_new(o, "priority_name", json_string(vgpu_priority_name(p)));
		json_object_set_new(o, "queued", json_integer(vgpu_queue_depth(m->queue, p)));
		json_array_append_new(prio, o);
	}
	for (long long i = 0; i < m->set.max_vms; i++) {
		const struct vgpu_vm *vm = &m->vms[i];
		char pool[2] = { vm->pool, '\0' };

		if (!vm->in_use)
			continue;
		vgpu_stats_vm(m->stats, vm->slot, &s);
		json_t *o = series_json(&s);
		json_object_set_new(o, "vm_uuid", json_string(vm->uuid));
		json_object_set_new(o, "vm_name", json_string(vm->name));
		json_object_set_new(o, "vm_id", json_integer(vm->vm_id));
		json_object_set_new(o, "pool_id", json_string(pool));
		json_object_set_new(o, "priority", json_integer(vm->priority));
		struct vgpu_sched_usage su;
		char ran_on[96];
		vgpu_queue_usage(m->queue, vm->slot, UINT32_MAX, UINT32_MAX, &su);
		if (su.vm_gpus)
			vgpu_gpus_format((unsigned)su.vm_gpus, ran_on);
		else
			snprintf(ran_on, sizeof(ran_on), "-");
		json_object_set_new(o, "sched",
				    json_pack("{s:i, s:i, s:f, s:I, s:I, s:I, s:I, s:s}", "weight",
					      vm->weight, "rate_limit_ms", vm->rate_limit_ms, "gpu_ms",
					      su.vm_ns / 1e6, "picks", (json_int_t)su.picks, "aged",
					      (json_int_t)su.aged, "mem_held", (json_int_t)su.mem_held,
					      "mem_quota", (json_int_t)su.mem_quota, "ran_on", ran_on));
		json_object_set_new(o, "budget", budget_json(m, vm->slot));
		struct vgpu_shm_usage w;
		struct vgpu_device_usage dw;
		vgpu_shm_vm_usage(m, vm, &w);
		vgpu_device_vm_usage(m, vm, &dw);
		json_object_set_new(o, "windows",
				    json_pack("{s:I, s:I, s:I, s:I}", "kept", (json_int_t)w.kept,
					      "kept_bytes", (json_int_t)w.kept_bytes, "device_direct",
					      (json_int_t)dw.direct, "device_staged",
					      (json_int_t)dw.staged));
		struct vgpu_cuda_usage cu;
		vgpu_cuda_vm_usage(m, vm, &cu);
		json_object_set_new(o, "cuda",
				    json_pack("{s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
					      "s:f, s:f}",
					      "worker_pid", (int)cu.pid, "workers",
					      (json_int_t)cu.workers, "starts", (json_int_t)cu.starts,
					      "deaths", (json_int_t)cu.deaths, "processes",
					      (json_int_t)cu.processes, "mem_held",
					      (json_int_t)cu.mem_held, "mem_quota",
					      (json_int_t)(vm->mem_quota_mib > 0
								    ? vm->mem_quota_mib << 20 : 0),
					      "launches", (json_int_t)cu.launches, "image_bytes",
					      (json_int_t)cu.image_bytes, "streams",
					      (json_int_t)cu.streams, "events", (json_int_t)cu.events,
					      "gpu_ms", cu.gpu_ns / 1e6, "paced_ms", cu.paced_ns / 1e6));
		json_array_append_new(vms, o);
	}
	json_t *pools = json_array(), *gpus = json_array();
	for (uint32_t p = 0; p < VGPU_POOLS; p++) {
		const struct vgpu_pool_state *ps = &m->pools[p];
		char id[2] = { (char)('A' + p), '\0' }, list[96];
		struct vgpu_sched_usage su;

		if (!ps->defined)
			continue;
		json_t *per_gpu = json_array();
		vgpu_queue_usage(m->queue, UINT32_MAX, p, UINT32_MAX, &su);
		vgpu_gpus_format(ps->gpus, list);
		for (uint32_t g = 0; g < m->n_gpus; g++) {
			struct vgpu_sched_usage gu;

			vgpu_queue_usage(m->queue, UINT32_MAX, p, g, &gu);
			json_array_append_new(per_gpu, json_real(gu.pool_gpu_ns / 1e6));
		}
		json_array_append_new(pools, json_pack("{s:s, s:i, s:i, s:s, s:f, s:o}", "pool_id",
						       id, "weight", ps->weight, "cap_percent",
						       ps->cap_percent, "gpus", list, "gpu_ms",
						       su.pool_ns / 1e6, "gpu_ms_per_gpu", per_gpu));
	}
	uint64_t up_ns = vgpu_now_ns() - m->started_ns;
	for (uint32_t g = 0; g < m->n_gpus; g++) {
		struct vgpu_sched_usage su;

		vgpu_queue_usage(m->queue, UINT32_MAX, UINT32_MAX, g, &su);
		json_array_append_new(gpus, json_pack("{s:i, s:f, s:f, s:i}", "gpu", (int)g,
						      "busy_ms", su.gpu_ns / 1e6, "load",
						      up_ns ? (double)su.gpu_ns / (double)up_ns : 0.0,
						      "inflight",
						      (int)vgpu_dispatcher_inflight(m, g)));
	}
	inflight = vgpu_dispatcher_inflight(m, UINT32_MAX);
	json_t *root = json_pack("{s:{s:s, s:s, s:I, s:i, s:i, s:{s:I, s:I}}, s:o, s:o, s:o, s:o}",
				 "mediator",
				 "version", VGPU_VERSION, "backend", m->backend->name, "uptime_s",
				 (json_int_t)((vgpu_now_ns() - m->started_ns) / 1000000000ull),
				 "queued", (int)vgpu_queue_depth(m->queue, -1), "inflight",
				 (int)inflight, "fds", "need", (json_int_t)m->fd_need, "limit",
				 (json_int_t)m->fd_limit, "priorities", prio, "pools", pools, "gpus",
				 gpus, "vms", vms);
	char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;

	json_decref(root);
	return text;
}

static void client_close(struct control_client *cl)
{
	cl->ctl->n_clients--;
	vgpu_loop_remove(cl->ctl->m->loop, &cl->watch);
	close(cl->fd);
	free(cl);
}

static void client_event(void *ctx, uint32_t events)
{
	struct control_client *cl = ctx;
	ssize_t n;

	(void)events;
	n = recv(cl->fd, cl->cmd + cl->got, CMD_MAX - cl->got, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_close(cl);
		return;
	}
	cl->got += (size_t)n;
	cl->cmd[cl->got] = '\0';
	char *nl = strchr(cl->cmd, '\n');
	if (!nl && cl->got < CMD_MAX)
		return;
	if (nl)
		*nl = '\0';

	char *reply = strcmp(cl->cmd, "stats") == 0	  ? stats_document(cl->ctl->m)
		      : strcmp(cl->cmd, "metrics") == 0 ? vgpu_metrics_document(cl->ctl->m)
							: strdup("{\"error\":\"unknown command\"}");
	if (reply) {
		struct timeval tv = { .tv_sec = 1 };
		size_t off = 0, len = strlen(reply);

		/* Blocking with a 1 s deadline: the reply is small and the peer root. */
		fcntl(cl->fd, F_SETFL, fcntl(cl->fd, F_GETFL) & ~O_NONBLOCK);
		setsockopt(cl->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		while (off < len) {
			ssize_t w = send(cl->fd, reply + off, len - off, MSG_NOSIGNAL);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		if (off == len && len && reply[len - 1] != '\n')
			send(cl->fd, "\n", 1, MSG_NOSIGNAL);
		free(reply);
	}
	client_close(cl);
}

static void accept_event(void *ctx, uint32_t events)
{
	struct control *ctl = ctx;
	struct control_client *cl;
	int fd;

	(void)events;
	if (ctl->n_clients >= CLIENTS_MAX) {
		/* Level-triggered: resting the socket keeps the loop from spinning. */
		vgpu_loop_pause(ctl->m->loop, &ctl->watch, EPOLLIN, ACCEPT_PAUSE_MS);
		return;
	}
	fd = accept4(ctl->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			vgpu_loop_pause(ctl->m->loop, &ctl->watch, EPOLLIN, ACCEPT_PAUSE_MS);
		return;
	}
	cl = calloc(1, sizeof(*cl));
	if (!cl) {
		close(fd);
		return;
	}
	cl->ctl = ctl;
	cl->fd = fd;
	cl->watch = (struct vgpu_loop_watch){ .fd = fd, .fn = client_event, .ctx = cl };
	if (vgpu_loop_add(ctl->m->loop, &cl->watch, EPOLLIN) != VGPU_OK) {
		close(fd);
		free(cl);
		return;
	}
	ctl->n_clients++;
}

int vgpu_control_start(struct mediator *m)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct control *ctl = calloc(1, sizeof(*ctl));

	if (!ctl)
		return VGPU_NO_MEMORY;
	ctl->m = m;
	if ((size_t)snprintf(ctl->path, sizeof(ctl->path), "%s/control.sock", m->set.run_dir) >=
	    sizeof(ctl->path)) {
		free(ctl);
		return VGPU_LIMIT;
	}
	memcpy(addr.sun_path, ctl->path, strlen(ctl->path) + 1);
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	unlink(ctl->path);
	if (ctl->fd < 0 || bind(ctl->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    chmod(ctl->path, 0600) != 0 || listen(ctl->fd, 8) != 0) {
		vgpu_log(LOG_ERR, "cannot listen on %s: %s", ctl->path, strerror(errno));
		if (ctl->fd >= 0)
			close(ctl->fd);
		free(ctl);
		return VGPU_IO_ERROR;
	}
	ctl->watch = (struct vgpu_loop_watch){ .fd = ctl->fd, .fn = accept_event, .ctx = ctl };
	vgpu_loop_add(m->loop, &ctl->watch, EPOLLIN);
	m->control = ctl;
	return VGPU_OK;
}

void vgpu_control_stop(struct mediator *m)
{
	struct control *ctl = m->control;

	if (!ctl)
		return;
	vgpu_loop_remove(m->loop, &ctl->watch);
	close(ctl->fd);
	unlink(ctl->path);
	free(ctl);
	m->control = NULL;
}
