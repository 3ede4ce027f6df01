/* SPDX-License-Identifier: MIT */
/*
 * settings.c - the mediator's settings: name, type, bounds, default and
 * help of each (vgpu-mediator(8) and docs/mediator.md list them; keep in
 * step). main.c reads them from the config file and the command line;
 * tests start from the defaults (vgpu_conf_defaults()).
 */
#include <stddef.h>

#include "conf.h"
#include "mediator.h"

#define S(f) offsetof(struct mediator_settings, f), sizeof(((struct mediator_settings *)0)->f)
#define I(f) offsetof(struct mediator_settings, f), 0
const struct vgpu_conf_option vgpu_mediator_options[] = {
	{ "db", VGPU_CONF_PATH, S(db), 0, 0, VGPU_DEFAULT_DB_PATH, "the registry" },
	{ "spool_dir", VGPU_CONF_PATH, S(spool_dir), 0, 0, "/var/vgpu", "spool directory (per-VM subdirectories)" },
	{ "run_dir", VGPU_CONF_PATH, S(run_dir), 0, 0, "/run/vgpu", "sockets and the lock file" },
	{ "backend", VGPU_CONF_STRING, S(backend), 0, 0, "auto", "auto, cuda or cpu" },
	{ "log", VGPU_CONF_STRING, S(log), 0, 0, "stderr", "stderr or syslog" },
	{ "log_level", VGPU_CONF_STRING, S(log_level), 0, 0, "info", "error, warning, notice, info, debug" },
	{ "max_request_mib", VGPU_CONF_INT, I(max_request_mib), 1, 1024, "512", "largest request payload, MiB" },
	{ "max_elems_mi", VGPU_CONF_INT, I(max_elems_mi), 1, 256, "64", "largest array, Mi floats" },
	{ "max_dim", VGPU_CONF_INT, I(max_dim), 1, 16384, "8192", "largest sgemm dimension" },
	{ "queue_per_vm", VGPU_CONF_INT, I(queue_per_vm), 1, 65536, "64", "queued requests per VM" },
	{ "queue_total", VGPU_CONF_INT, I(queue_total), 1, 1048576, "1024", "queued requests in all" },
	{ "max_inflight", VGPU_CONF_INT, I(max_inflight), 1, 1024, "16", "requests in the backend at once" },
	{ "cpu_threads", VGPU_CONF_INT, I(cpu_threads), 0, 1024, "0", "cpu backend threads (0: one per core), per GPU" },
	{ "sched_guard_us", VGPU_CONF_INT, I(sched_guard_us), 0, 1000000, "0", "while a priority level has work on a GPU, or was given work there this many microseconds ago, the levels below it get one work there at most (0: off)" },
	{ "copy_slice_kib", VGPU_CONF_INT, I(copy_slice_kib), 0, 1048576, "1024", "cuda: copies of works below high priority go in pieces of this many KiB, so that a high-priority copy waits for one piece (0: whole copies)" },
	{ "gpu_hold_us", VGPU_CONF_INT, I(gpu_hold_us), 0, 1000, "200", "cuda: while works of a level run, those of the levels below hold still between their pieces, until this many microseconds after the last (0: off; docs/scheduler.md)" },
	{ "cuda_worker", VGPU_CONF_PATH, S(cuda_worker), 0, 0, VGPU_LIBEXECDIR "/vgpu-cuda-worker", "the program that runs a VM's CUDA calls (guests' libcuda.so.1), one process per VM" },
	{ "cuda_worker_user", VGPU_CONF_STRING, S(cuda_worker_user), 0, 0, "nobody", "the user a VM's CUDA worker runs as when the mediator is root (empty: the mediator's own)" },
	{ "worker_hold_us", VGPU_CONF_INT, I(worker_hold_us), 0, 100000, "200", "CUDA workers: while a higher priority VM's worker has kernels outstanding, each launch of a lower one's waits up to this many microseconds (0: off; docs/scheduler.md)" },
	{ "worker_respawn_ms", VGPU_CONF_INT, I(worker_respawn_ms), 100, 10000, "1000", "CUDA workers: a VM's worker starts at most once in this many milliseconds; one started sooner (after a fault or a crash) waits out the rest before it loads the driver" },
	{ "gpus", VGPU_CONF_INT, I(gpus), 0, VGPU_MAX_GPUS, "0", "GPUs to drive, 0 to N-1 (0: every one the backend has; the cpu backend poses as this many, 1 by default)" },
	{ "registry_poll_ms", VGPU_CONF_INT, I(registry_poll_ms), 50, 10000, "500", "registry re-read interval" },
	{ "max_vms", VGPU_CONF_INT, I(max_vms), 1, 4096, "256", "VMs served at once" },
	{ "max_conns_per_vm", VGPU_CONF_INT, I(max_conns_per_vm), 1, 1024, "8", "socket connections per VM" },
	{ "spool_sync", VGPU_CONF_BOOL, offsetof(struct mediator_settings, spool_sync), 0, 0, 0, "no", "fsync spool files: answers survive a host crash too" },
	{ "spool_stale_s", VGPU_CONF_INT, I(spool_stale_s), 1, 31536000, "3600", "age (s) of uncollected answers and clients' temporary files to remove" },
	{ "spool_poll_ms", VGPU_CONF_INT, I(spool_poll_ms), 10, 10000, "100", "spool scan interval (inotify also wakes it)" },
	{ "shm_max_mib", VGPU_CONF_INT, I(shm_max_mib), 1, 2048, "1024", "data area of one shared-memory window, MiB" },
	{ "shm_total_mib", VGPU_CONF_INT, I(shm_total_mib), 1, 1048576, "4096", "all shared-memory windows together, MiB (pinned host memory)" },
	{ "poll_us", VGPU_CONF_INT, I(poll_us), 0, 10000, "200", "after activity the loop polls this long before it sleeps (latency for CPU)" },
	{ "vm_buffer_mib", VGPU_CONF_INT, I(vm_buffer_mib), 1, 1048576, "1024", "request and response buffers one VM may hold, MiB" },
	{ "buffer_total_mib", VGPU_CONF_INT, I(buffer_total_mib), 1, 1048576, "4096", "request and response buffers of all VMs together, MiB" },
	{ "vm_requests", VGPU_CONF_INT, I(vm_requests), 1, 65536, "256", "requests one VM may have held (queued, running, answers unsent)" },
	{ "vm_windows", VGPU_CONF_INT, I(vm_windows), 0, 1024, "4", "shared-memory windows per VM" },
	{ "vm_window_mib", VGPU_CONF_INT, I(vm_window_mib), 1, 1048576, "2048", "all of one VM's shared-memory windows, MiB" },
	{ "window_keep_s", VGPU_CONF_INT, I(window_keep_s), 0, 3600, "30", "a window whose client is gone is kept this long for the VM's next window of its size (0: released at once)" },
	{ "device_dma", VGPU_CONF_STRING, S(device_dma), 0, 0, "auto", "how the GPU reaches a device window in guest RAM: auto (straight from guest RAM where it can be pinned, KVM; staged where it cannot, Xen) or staged (always through the mediator's pinned staging: guest RAM is never locked)" },
	{ "pin_rate_mib_s", VGPU_CONF_INT, I(pin_rate_mib_s), 0, 1048576, "64", "MiB of new pinned memory (windows made; request buffers the CUDA backend has no block cached for) one VM may have per second once past its first vm_window_mib + vm_buffer_mib (0: no limit)" },
	{ "msg_timeout_ms", VGPU_CONF_INT, I(msg_timeout_ms), 100, 3600000, "10000", "a message begun on a socket must be complete within this, or the connection is closed" },
	{ "workers", VGPU_CONF_INT, I(workers), 1, 64, "2", "threads for slow work: making and releasing windows, pinning new request buffers (CUDA), large spool reads and writes" },
	{ "spool_uid_base", VGPU_CONF_INT, I(spool_uid_base), 1, 2147483646, "1879048192", "a VM's spool req/ and resp/ belong to uid and gid spool_uid_base + vm_id" },
	{ "sched_aging_ms", VGPU_CONF_INT, I(sched_aging_ms), 1, 60000, "50", "work that waited this long may pass higher priority levels, within sched_floor_permille" },
	{ "sched_floor_permille", VGPU_CONF_INT, I(sched_floor_permille), 0, 1000, "50", "GPU time (per mille) each lower priority level may take from higher ones for work older than sched_aging_ms (0: strict priority, lower levels may starve)" },
	{ "sched_inflight_us", VGPU_CONF_INT, I(sched_inflight_us), 0, 10000000, "2000", "estimated GPU time of the work one GPU is given at once (as many works as the backend needs always: one per cpu thread, two for cuda; work of a level above all that runs is not held back); keeps the backlog in the scheduler, where weights apply (0: max_inflight alone)" },
	{ NULL, 0, 0, 0, 0, 0, NULL, NULL },
};
