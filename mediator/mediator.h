/* SPDX-License-Identifier: MIT */
/*
 * mediator.h - the state of one vgpu-mediator process and the pieces that
 * share it: settings, the VM table (from the registry), transports, the
 * request life cycle, the dispatcher and the control socket.
 *
 * Threads: the loop thread owns the VM table, every connection and every
 * response but those a zero-copy transport posts from a backend thread
 * itself (vgpu_transport.complete); the dispatcher thread only pops the
 * queue and submits to the backend; backend threads call work_done(),
 * which records the outcome and either posts a window's completion (and
 * frees the request) or hands the request to the loop; worker threads
 * (worker.h) run slow jobs whose results only the loop thread uses.
 * Shared state between them is the queue (its own lock), the stats and the
 * budgets (their own locks), a window session's fields (its lock), the
 * completion list and the in-flight count (done_lock), and the workers'
 * job lists (theirs).
 */
#ifndef VGPU_MEDIATOR_H
#define VGPU_MEDIATOR_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "conf.h"
#include "budget.h"
#include "log.h"
#include "loop.h"
#include "queue.h"
#include "stats.h"
#include "vgpu_config.h"
#include "vgpu_protocol.h"
#include "worker.h"

#define VGPU_MAX_TRANSPORTS 8 /* registered at once: socket, spool, shm, and room */
/* spool_uid_base + vm_id stays below 2^31 - 1: larger uids are read as
 * negative by some tools, and (uid_t)-1 means "unchanged". */
#define VGPU_SPOOL_UID_MAX 2147483646
#define VGPU_POOLS 26 /* 'A' .. 'Z': the queue's pools 0 .. 25 */

static inline uint32_t vgpu_pool_index(char pool)
{
	return (uint32_t)(pool - 'A');
}

/* A pool's scheduler settings as last given to the queue. */
struct vgpu_pool_state {
	bool defined;
	int weight;
	int cap_percent;
	unsigned gpus;
};

/* Settings: defaults, then the config file, then the command line. */
struct mediator_settings {
	char db[4096];
	char spool_dir[4096];
	char run_dir[4096];
	char backend[16];          /* auto | cpu | cuda */
	char log[16];              /* stderr | syslog */
	char log_level[16];
	char device_dma[16];        /* auto | staged */
	long long max_request_mib; /* payload limit */
	long long max_elems_mi;    /* floats per array, in Mi */
	long long max_dim;         /* sgemm dimensions */
	long long queue_per_vm;
	long long queue_total;
	long long max_inflight;
	long long cpu_threads;
	long long gpus;             /* 0: all the backend has */
	long long copy_slice_kib;   /* cuda: copies below high priority in pieces */
	long long gpu_hold_us;      /* cuda: lower levels hold while a higher runs (0: off) */
	char cuda_worker[4096];     /* the CUDA worker program (cuda_host.c) */
	char cuda_worker_user[64];  /* the user it runs as ("" : the mediator's) */
	long long worker_hold_us;   /* lower VMs' workers hold launches while a higher is busy */
	long long worker_respawn_ms; /* a VM's worker starts at most once in this long */
	long long registry_poll_ms;
	long long max_vms;
	long long max_conns_per_vm;
	long long spool_poll_ms;
	bool spool_sync;            /* fsync the spool's files and journal */
	long long spool_stale_s;    /* age after which leftovers are removed */
	long long shm_max_mib;      /* data area of one shared-memory window */
	long long shm_total_mib;    /* all windows together (pinned memory) */
	long long poll_us;          /* the loop polls this long after activity */
	/* Per-VM budgets (budget.h) and their host-wide totals. */
	long long vm_buffer_mib;    /* request and response buffers held */
	long long buffer_total_mib; /* the same, all VMs together */
	long long vm_requests;      /* requests held (queued, running, answers unsent) */
	long long vm_windows;       /* shared-memory windows */
	long long vm_window_mib;    /* bytes of those windows */
	long long window_keep_s;    /* a window whose client left is kept this long */
	long long pin_rate_mib_s;   /* new pinned memory per VM (budget.h, vgpu_budget_pin) */
	long long msg_timeout_ms;   /* a message started must be complete by then */
	long long workers;          /* threads for slow work off the loop */
	long long spool_uid_base;   /* a VM's spool belongs to uid/gid base + vm_id */
	long long sched_aging_ms;   /* scheduler.h: work this old may pass higher levels */
	long long sched_floor_permille; /* ... within this share of GPU time per level */
	long long sched_inflight_us; /* estimated GPU time one GPU is given at once */
	long long sched_guard_us;   /* a level active this long holds lower ones to one work */
};

/* One GPU: a backend instance and the dispatcher thread that feeds it
 * (dispatch.c). The counts are under mediator.done_lock. */
struct vgpu_gpu {
	struct mediator *m;
	uint32_t index;
	void *ctx;                           /* the backend instance */
	pthread_t dispatcher;
	bool started;                        /* the dispatcher thread exists */
	pthread_cond_t room_cond;            /* a slot of this GPU freed */
	uint32_t inflight;                   /* backend slots taken: works not done,
					      * plus the dispatcher's reservation */
	bool idle_reserved;                  /* that reservation is held, unused */
	bool exited;                         /* the dispatcher is done */
};

/* One registered VM, in mediator.vms[slot]; loop thread only. */
struct vgpu_vm {
	bool in_use;
	uint32_t slot;
	char uuid[VGPU_UUID_STRLEN + 1];
	char name[VGPU_NAME_MAX + 1];
	int vm_id;
	char pool;
	int priority;                        /* applies to queued work too (scheduler.h) */
	int weight;                          /* within its pool */
	int rate_limit_ms;                   /* GPU-ms per second; 0: none */
	long long mem_quota_mib;             /* device memory; 0: none */
	struct vgpu_cuda_worker *cuda;       /* its CUDA worker (cuda_host.c), or NULL */
	uint64_t cuda_spawned_ns;            /* when it was last started; 0: never */
	uint64_t cuda_starts, cuda_deaths;   /* its workers started; killed or failed */
	uint64_t cuda_launches;              /* by its workers that exited */
	uint64_t cuda_gpu_ns, cuda_paced_ns; /* of its workers that exited (pace.h) */
	struct vgpu_ratelimit rl;            /* for this VM's guest-triggered messages */
	void *transport_state[VGPU_MAX_TRANSPORTS];
};

struct mediator;
struct vgpu_request;

/* A way for guests to reach the mediator (ARCHITECTURE.md, Transports).
 * Registered with vgpu_mediator_add_transport(); its state, global and per
 * VM, is found through the struct itself (vgpu_transport_ctx(),
 * vgpu_vm_state()), never through a fixed number. */
struct vgpu_transport {
	const char *name;
	bool zero_copy;                      /* data stays in the guest's window:
					      * no payload or response buffers */
	int (*start)(struct mediator *m);
	/* Stop taking new requests (shutdown); responses still go out. */
	void (*stop_accepting)(struct mediator *m);
	/* Release the transport's own state; every VM was removed before. */
	void (*stop)(struct mediator *m);
	int (*vm_added)(struct mediator *m, struct vgpu_vm *vm);
	void (*vm_removed)(struct mediator *m, struct vgpu_vm *vm);
	/* Optional: @vm's vm_id, pool or priority changed (what a transport
	 * may show the VM: spool's uid, the device's registers). */
	void (*vm_updated)(struct mediator *m, struct vgpu_vm *vm);
	/* Send req->resp on the channel it came from (loop thread), then
	 * request_free() it; drop it when the channel is gone. */
	void (*respond)(struct mediator *m, struct vgpu_request *req);
	/* Optional, for zero-copy transports: called on a backend thread when
	 * @req is done (statistics recorded); answer it there and return true,
	 * or return false, doing nothing, to have the loop respond() as usual. */
	bool (*complete)(struct mediator *m, struct vgpu_request *req);
	/* Responses not yet written out (shutdown waits for 0). */
	uint64_t (*pending)(struct mediator *m);
};

struct vgpu_request;
typedef void (*vgpu_request_ready_fn)(void *reply_ctx, struct vgpu_request *req, int rc);

struct vgpu_request {
	struct vgpu_queue_item item;         /* queue link: must stay first */
	struct vgpu_work work;
	struct mediator *m;
	const struct vgpu_transport *transport;
	void *reply_ctx;                     /* the transport's channel (refcounted by it) */
	uint32_t vm_slot;
	uint64_t request_id;
	int op;
	int status;
	uint8_t *payload;                    /* host_alloc()ed */
	size_t payload_len;
	uint8_t *resp;                       /* host_alloc()ed: prefix + output, or
					      * prefix[] for an error answer */
	size_t resp_len;
	size_t resp_cap;
	uint64_t payload_held, resp_held;    /* bytes taken from the VM's budget */
	uint8_t params_raw[VGPU_PROTO_PARAMS_SIZE]; /* head(): for the payload's start */
	struct vgpu_job job;                 /* alloc() on a worker */
	vgpu_request_ready_fn ready;         /* alloc()'s */
	int alloc_rc;
	bool counted;                        /* one of the VM's budget of requests */
	uint8_t prefix[VGPU_PROTO_RESPONSE_PREFIX];
	uint64_t queue_ns, exec_ns;
	struct vgpu_request *next_done;
};

struct mediator {
	struct mediator_settings set;
	struct vgpu_proto_limits limits;
	const struct vgpu_backend_ops *backend;
	void *backend_ctx;                   /* GPU 0's: the host-memory ops' */
	struct vgpu_gpu gpu[VGPU_MAX_GPUS];  /* n_gpus of them */
	uint32_t next_gpu;                   /* loop thread: where dispatch_now starts */
	struct vgpu_loop *loop;
	struct vgpu_queue *queue;
	struct vgpu_stats *stats;
	struct vgpu_budget *budget;          /* what each VM holds (budget.h) */
	struct vgpu_workers *workers;        /* slow work off the loop (worker.h) */
	vgpu_db *db;                         /* loop thread: registry polling */
	struct vgpu_vm *vms;                 /* max_vms slots */
	struct vgpu_pool_state pools[VGPU_POOLS];
	uint32_t n_gpus;                     /* GPUs: backend instances, dispatchers */
	struct vgpu_cuda_worker *cuda_workers; /* cuda_host.c: every one alive */
	int cuda_tick_fd;                    /* their pacing's steps (pace.h), while any is busy */
	struct vgpu_loop_watch cuda_tick;
	uint64_t cuda_step_ns;               /* the last step */
	const struct vgpu_transport *transports[VGPU_MAX_TRANSPORTS]; /* registered, in order */
	void *transport_ctx[VGPU_MAX_TRANSPORTS];  /* each transport's own state */
	int n_transports;
	uint64_t started_ns;
	uint64_t fd_need, fd_limit;          /* what the settings need; RLIMIT_NOFILE */
	void *control;                       /* control.c's state */

	pthread_mutex_t done_lock;           /* the GPUs' counts and the done list */
	struct vgpu_request *done_head, *done_tail;
	int done_efd;                        /* eventfd: completions waiting */
	struct vgpu_loop_watch done_watch;

	/* Loop thread: the ring windows served (ring.h), whether their
	 * submission tails are marked watched, and a count of removals from
	 * the list (a walk that called out starts again when it moved). */
	struct vgpu_ring_server *rings;
	bool rings_watched;
	uint64_t rings_gen;

	bool stopping;
};

/* request.c */
/* Admission: one path for every transport (head() and admit() differ only
 * in what they check first: a stream's head, or a ring's descriptor; then
 * the same checks, in the same order, before anything is allocated).
 * Each takes @req over.
 * new: a request for a message that arrived on @t for @vm (NULL, logged,
 * when out of memory).
 * head (stream transports: socket, spool): the header @raw/@h and the
 * parameter block @params of a request arrived; check them, the vm_id,
 * the queue's room and the VM's budget before anything is allocated. On
 * VGPU_OK *ret_req is a new request, its buffers not allocated yet: the
 * transport passes it to alloc(). VGPU_ERROR: not even the request could
 * be allocated, nothing was answered, and @reply_ctx was not taken (the
 * transport drops the channel). Otherwise the request was answered with
 * the returned status, and the transport skips the rest of the payload.
 * alloc: give a request from head() its payload buffer (h->payload_len
 * bytes, the parameter block copied in) and its answer buffer: at once
 * when that is cheap (the backend pins nothing, or has blocks of those
 * sizes pinned already), else on a worker thread (pinning new memory
 * takes milliseconds per MiB and holds back the GPU path: never on the
 * loop). Then, on the loop thread, @ready(reply_ctx, req, rc): on VGPU_OK
 * the transport fills the payload and passes it to submit(); otherwise
 * the transport only notes that the payload is to be skipped: @req is
 * answered right after ready() returns, and must not be touched.
 * submit: the payload is complete; queue it.
 * admit (zero-copy transports): @view is checked (sizes within the limits,
 * inputs readable); check the vm_id and the budget, then queue it with
 * its output at @out, or answer it at once.
 * reject: answer at once with @status, logging @why rate-limited and
 * counting it. */
struct vgpu_request *vgpu_request_new(struct mediator *m, struct vgpu_vm *vm,
				      const struct vgpu_transport *t, void *reply_ctx,
				      uint64_t request_id, int op);
int vgpu_request_head(struct mediator *m, struct vgpu_vm *vm, const struct vgpu_transport *t,
		      void *reply_ctx, const uint8_t raw[VGPU_PROTO_HEADER_SIZE],
		      const struct vgpu_msg_header *h, const uint8_t params[VGPU_PROTO_PARAMS_SIZE],
		      struct vgpu_request **ret_req);
void vgpu_request_alloc(struct vgpu_request *req, vgpu_request_ready_fn ready);
void vgpu_request_submit(struct vgpu_request *req, struct vgpu_vm *vm);
void vgpu_request_admit(struct vgpu_request *req, struct vgpu_vm *vm,
			const struct vgpu_request_view *view, float *out);
void vgpu_request_reject(struct vgpu_request *req, struct vgpu_vm *vm, int status,
			 const char *why);
/* Release everything @req holds. */
void vgpu_request_free(struct vgpu_request *req);
/* Answer @req with @status (loop thread), e.g. for a VM that went away. */
void vgpu_request_fail(struct vgpu_request *req, int status);
/* Count a finished request in the statistics (any thread, once). */
void vgpu_request_record(struct vgpu_request *req);
/* Loop thread: deliver every completed request (done_efd readable). */
void vgpu_deliver_done(void *ctx, uint32_t events);

/* dispatch.c */
int vgpu_dispatcher_start(struct mediator *m);
/* Loop thread, after a push: submit the queue's head at once if a GPU
 * has room and the scheduler gives it work. false when none did (the
 * caller then wakes the dispatchers, which submit when a slot frees or
 * the work may run). */
bool vgpu_dispatch_now(struct mediator *m);
/* After vgpu_queue_close(): true once every queued and in-flight request
 * has been handed to the loop. */
bool vgpu_dispatcher_drained(struct mediator *m);
/* Works GPU @gpu's backend holds now (UINT32_MAX: all GPUs together). */
uint32_t vgpu_dispatcher_inflight(struct mediator *m, uint32_t gpu);
/* Every dispatcher that was started. */
void vgpu_dispatcher_join(struct mediator *m);

/* settings.c: every setting of struct mediator_settings (conf.h's table). */
extern const struct vgpu_conf_option vgpu_mediator_options[];

/* core.c: a mediator's life, without its command line, signals, control
 * socket and registry polling (main.c), so that tests can run the core.
 * init: from m->set (settings already complete): limits, backend (the
 * one m->backend names if set, e.g. by a test; else the settings'), budgets,
 * loop, queue, statistics, workers, the VM table and the completion
 * eventfd. add_transport: register @t (before start; VGPU_LIMIT past
 * VGPU_MAX_TRANSPORTS, VGPU_EXISTS twice). start: start the transports in
 * their order, read the registry (VMs are added to every transport),
 * start the dispatcher. fini: remove every VM from the transports, run
 * the workers' last jobs, stop the transports and the backend, free all;
 * after a failed or partial init or start too (the caller joins the
 * dispatcher first if it was started). */
int vgpu_mediator_init(struct mediator *m);
int vgpu_mediator_add_transport(struct mediator *m, const struct vgpu_transport *t);
int vgpu_mediator_start(struct mediator *m);
/* Shutdown, first step: the transports take no new requests, the queue
 * closes; what was accepted goes on. drained: everything accepted was
 * answered and written, and no worker job is left. */
void vgpu_mediator_stop_accepting(struct mediator *m);
/* One turn of the loop (main.c's, and tests'): with *@poll_until ahead of
 * now, look without sleeping (served rings' submission tails, then the
 * loop's watches), else unwatch the rings and sleep in the loop for up to 200 ms; after activity, poll
 * again for poll_us (*@poll_until moved).
 * Returns vgpu_loop_run_once()'s result. */
int vgpu_mediator_turn(struct mediator *m, uint64_t *poll_until);
bool vgpu_mediator_drained(struct mediator *m);
void vgpu_mediator_fini(struct mediator *m);
/* Transport @t's own state (set by its start()), and setting it. */
void *vgpu_transport_ctx(struct mediator *m, const struct vgpu_transport *t);
void vgpu_transport_set_ctx(struct mediator *m, const struct vgpu_transport *t, void *ctx);

/* vms.c */
/* Read the registry and add, update or remove VMs (loop thread). */
int vgpu_vms_reload(struct mediator *m);
struct vgpu_vm *vgpu_vm_by_uuid(struct mediator *m, const char *uuid);

/* The GPUs of a registry mask (0: all) that this host has, as a bit mask. */
uint64_t vgpu_gpu_mask(const struct mediator *m, unsigned gpus);

/* cuda_host.c: hand a connection of @vm's libcuda.so.1 (its first header
 * read, @head) to the VM's CUDA worker, started if need be with the VM's
 * GPUs and quota of now. VGPU_OK: the worker has it (the caller closes
 * its own descriptor); else why not (logged). Loop thread. */
int vgpu_cuda_handoff(struct mediator *m, struct vgpu_vm *vm, int fd,
		      const uint8_t head[VGPU_PROTO_HEADER_SIZE]);
/* cuda_host.c: @vm's CUDA work, from its workers' reports (about a
 * second old): the workers alive (its current one and any let go that
 * still serve processes), what they serve and hold, kernels launched by
 * every worker it had. */
struct vgpu_cuda_usage {
	pid_t pid;                 /* its current worker; 0: none */
	uint64_t starts, deaths, workers, processes, mem_held, launches;
	uint64_t image_bytes, window_bytes, streams, events;
	uint64_t gpu_ns, paced_ns;  /* GPU time charged to its workers; time they were paced */
};
void vgpu_cuda_vm_usage(struct mediator *m, const struct vgpu_vm *vm,
			struct vgpu_cuda_usage *u);
/* cuda_host.c: each worker told whether to hold its launches, from who is
 * busy and the VMs' priorities (also after the registry changed). */
void vgpu_cuda_regate(struct mediator *m);
/* cuda_host.c: the pacing's step (pace.h), on m->cuda_tick. */
void vgpu_cuda_tick(void *ctx, uint32_t events);
/* cuda_host.c: @vm left: its workers let go (they finish the calls in
 * flight and exit). NULL: every VM's, killed (the mediator stops). */
void vgpu_cuda_release(struct mediator *m, struct vgpu_vm *vm);
/* Transport @t's state for VM slot @slot; NULL when the slot is free. */
void *vgpu_vm_state(struct mediator *m, long long slot, const struct vgpu_transport *t);
/* Set transport @t's state for @vm (its vm_added() and vm_removed()). */
void vgpu_vm_set_state(struct mediator *m, struct vgpu_vm *vm, const struct vgpu_transport *t,
		       void *state);

/* control.c */
int vgpu_control_start(struct mediator *m);
/* metrics.c: the figures in Prometheus' text format (malloc'd; NULL when
 * out of memory), for the control socket's "metrics". Loop thread. */
char *vgpu_metrics_document(struct mediator *m);
void vgpu_control_stop(struct mediator *m);

/* transport/socket.c, transport/spool.c, transport/shm.c, transport/device.c */
extern const struct vgpu_transport vgpu_transport_socket;
extern const struct vgpu_transport vgpu_transport_spool;
extern const struct vgpu_transport vgpu_transport_shm;
extern const struct vgpu_transport vgpu_transport_device;

/* transport/device.c, for the socket transport. hello: the first message
 * of @vm's connection @conn_fd is a DEVICE message (@raw, @h, @payload:
 * its whole payload, vgpu_dev_header_ok() checked) that came with @n_fds
 * descriptors @fds (taken over: each is closed or kept, and set to -1
 * where kept). The device is answered on @conn_fd (a DEVICE_REPLY); the
 * session, or NULL when refused (the caller closes the connection).
 * window: a WINDOW message on the session's connection (answered there).
 * detach: the connection is gone (its window is closed and unmapped once
 * its last request is answered). */
void *vgpu_device_hello(struct mediator *m, struct vgpu_vm *vm, int conn_fd,
			const uint8_t raw[VGPU_PROTO_HEADER_SIZE], const struct vgpu_msg_header *h,
			const uint8_t *payload, int *fds, int n_fds);
void vgpu_device_window(void *session, const uint8_t raw[VGPU_PROTO_HEADER_SIZE],
			const struct vgpu_msg_header *h, const uint8_t *payload);
void vgpu_device_detach(void *session);
/* @vm's device windows being served: the GPU copies straight from guest
 * RAM (direct: pinned), or through staging (staged: Xen's foreign pages
 * cannot be pinned). */
struct vgpu_device_usage {
	uint32_t direct, staged;
};
void vgpu_device_vm_usage(struct mediator *m, const struct vgpu_vm *vm,
			  struct vgpu_device_usage *ret);

/* transport/shm.c, for the socket transport: the connection @conn_fd of
 * @vm asked for a window with @data_bytes of data area. What can be
 * checked at once is: VGPU_INVALID_PARAM for a size that is not whole
 * pages within the ring's bounds, VGPU_LIMIT past shm_max_mib or the VM's
 * budget of windows, VGPU_BUSY past what the VM or the host holds or
 * past the VM's rate of new pinned memory, VGPU_NO_MEMORY, VGPU_SHUTDOWN;
 * then nothing else happens. On VGPU_OK the window (a kept one of the VM,
 * or a new one) is made ready on a worker thread, and @ready(@ctx, ...) is
 * called later on the loop thread: with VGPU_OK, the new session and its
 * window memfd, doorbell eventfd and notify socket (the callee sends them to the
 * client and closes them), or with an error (VGPU_BUSY when the budget of
 * a window that replaces kept ones, taken on the worker, was refused,
 * VGPU_NO_MEMORY, VGPU_IO_ERROR, VGPU_BACKEND when pinning failed,
 * VGPU_SHUTDOWN), a NULL session and no fds. The session shuts @conn_fd
 * down when its client breaks the ring's rules, and lives until
 * vgpu_shm_detach(). */
typedef void (*vgpu_shm_ready_fn)(void *ctx, int rc, void *session, int fds[3]);
int vgpu_shm_attach(struct mediator *m, struct vgpu_vm *vm, uint64_t data_bytes, int conn_fd,
		    vgpu_shm_ready_fn ready, void *ctx);
/* The connection that owned @session is gone (NULL is fine). */
void vgpu_shm_detach(void *session);
/* @vm's kept windows, for statistics: their client left; kept
 * window_keep_s for the VM's next window of the same size, still in its
 * budget. */
struct vgpu_shm_usage {
	uint64_t kept, kept_bytes;
};
void vgpu_shm_vm_usage(struct mediator *m, const struct vgpu_vm *vm,
		       struct vgpu_shm_usage *ret);

#endif
