/* SPDX-License-Identifier: MIT */
/*
 * guest_ring.c - a guest program (static, root) that drives the vgpu-stub
 * device's ring registers directly, without a driver: for the VM tests of
 * the device path (tests/vm/test-ring.sh). It finds the device in sysfs,
 * turns bus mastering on, maps BAR0 (resource0), places a ring window in
 * huge pages of its own memory (physically contiguous, never moved; their
 * guest-physical addresses from /proc/self/pagemap), registers it, and
 * speaks the ring (protocol/vgpu_ring.h) with its own descriptors, as a
 * hostile guest could. It prints one line per check for the host.
 *
 * usage: guest_ring ops REPEAT       every op REPEAT times, verified against the
 *                                    CPU reference: "RING-OPS <op>=<ok>/<total> ..."
 *        guest_ring hostile          bad descriptors, bad extent lists, a bad
 *                                    register, a doorbell storm, a broken ring:
 *                                    "RING-HOSTILE name=result ..."
 *        guest_ring loop SECONDS     vector_adds until SECONDS pass, through
 *                                    mediator restarts: every request ends once, by
 *                                    a verified result or an error (link loss):
 *                                    "RING-LOOP ok=N errors=N wrong=N twice=N relinks=N"
 * Needs: a kernel booted with hugepages=N (N >= 4).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "submit.h"
#include "vgpu-stub-regs.h"
#include "vgpu_ring.h"

#define HUGE (2u << 20)
#define DATA_MIB 4
#define WINDOW (VGPU_RING_DATA_OFFSET + (DATA_MIB << 20)) /* 3 huge pages */
#define ALLOC (3 * HUGE + HUGE) /* the window, then a huge page for lists */
#define LIST_OFF (3 * HUGE)

static volatile uint32_t *regs;
static uint8_t *mem;          /* the window, then the list page */
static uint64_t mem_gpa[ALLOC / HUGE]; /* guest-physical address of each huge page */
static uint32_t sq_tail, cq_head;
static size_t next_free;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint32_t rd(uint32_t off)
{
	return regs[off / 4];
}

static void wr(uint32_t off, uint32_t v)
{
	regs[off / 4] = v;
}

static int die(const char *what)
{
	fprintf(stderr, "guest_ring: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* The first vgpu-stub in sysfs: bus mastering on, BAR0 mapped. */
static void open_device(void)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;
	char path[512], buf[32];

	while (d && (e = readdir(d))) {
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		bool ours = fgets(buf, sizeof(buf), f) && strtoul(buf, NULL, 16) == VGPU_STUB_DEVICE_ID;
		fclose(f);
		if (!ours)
			continue;
		uint16_t cmd;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", e->d_name);
		int cfd = open(path, O_RDWR);
		if (cfd < 0 || pread(cfd, &cmd, 2, 4) != 2)
			die("config");
		cmd |= 0x6; /* memory space, bus master */
		if (pwrite(cfd, &cmd, 2, 4) != 2)
			die("config write");
		close(cfd);
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource0", e->d_name);
		int fd = open(path, O_RDWR | O_SYNC);
		if (fd < 0)
			die("resource0");
		regs = mmap(NULL, VGPU_STUB_BAR0_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (regs == MAP_FAILED)
			die("mmap resource0");
		closedir(d);
		return;
	}
	fprintf(stderr, "guest_ring: no vgpu-stub device\n");
	exit(2);
}

/* The guest-physical address of the page at @p (locked, present). */
static uint64_t gpa_of(void *p)
{
	static int fd = -1;
	uint64_t entry;

	if (fd < 0 && (fd = open("/proc/self/pagemap", O_RDONLY)) < 0)
		die("pagemap");
	if (pread(fd, &entry, 8, (off_t)((uintptr_t)p / 4096 * 8)) != 8 || !(entry >> 63))
		die("pagemap entry");
	return (entry & ((1ull << 55) - 1)) * 4096 + (uintptr_t)p % 4096;
}

static void alloc_memory(void)
{
	mem = mmap(NULL, ALLOC, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE | MAP_LOCKED, -1, 0);
	if (mem == MAP_FAILED)
		die("huge pages (boot with hugepages=4 or more)");
	for (unsigned i = 0; i < ALLOC / HUGE; i++)
		mem_gpa[i] = gpa_of(mem + (size_t)i * HUGE);
}

/* Wait until @reg & @mask == @want, up to @secs; the last value read. */
static uint32_t wait_reg(uint32_t reg, uint32_t mask, uint32_t want, double secs)
{
	double end = now_s() + secs;
	uint32_t v;

	while (((v = rd(reg)) & mask) != want && now_s() < end)
		usleep(1000);
	return v;
}

/* Write an extent list of @n entries at the list page and register it;
 * the final WIN_STATE (WIN_ERROR in *err). */
static uint32_t register_list(const uint64_t (*ext)[2], uint32_t n, uint64_t list_gpa,
			      int32_t *err)
{
	for (uint32_t i = 0; i < n; i++)
		memcpy(mem + LIST_OFF + i * 16, ext[i], 16);
	wr(VGPU_STUB_REG_WIN_LIST_LO, (uint32_t)list_gpa);
	wr(VGPU_STUB_REG_WIN_LIST_HI, (uint32_t)(list_gpa >> 32));
	wr(VGPU_STUB_REG_WIN_EXTENTS, n);
	wr(VGPU_STUB_REG_WIN_CTRL, VGPU_STUB_WIN_CTRL_REGISTER);
	uint32_t st = wait_reg(VGPU_STUB_REG_WIN_STATE, ~0u, VGPU_STUB_WIN_REGISTERED, 20);
	if (st == VGPU_STUB_WIN_REGISTERING) /* refused states come at once */
		st = wait_reg(VGPU_STUB_REG_WIN_STATE, ~0u, VGPU_STUB_WIN_REGISTERED, 20);
	*err = (int32_t)rd(VGPU_STUB_REG_WIN_ERROR);
	return st;
}

/* The window's extents: its huge pages, merged where contiguous. */
static uint32_t window_extents(uint64_t ext[][2])
{
	uint32_t n = 0;

	for (uint64_t off = 0; off < WINDOW; off += HUGE) {
		uint64_t len = WINDOW - off < HUGE ? WINDOW - off : HUGE;
		uint64_t gpa = mem_gpa[off / HUGE];

		if (n && ext[n - 1][0] + ext[n - 1][1] == gpa)
			ext[n - 1][1] += len;
		else {
			ext[n][0] = gpa;
			ext[n][1] = len;
			n++;
		}
	}
	return n;
}

static int register_window(void)
{
	uint64_t ext[4][2];
	uint32_t n = window_extents(ext);
	int32_t err;

	uint32_t st = register_list((const uint64_t(*)[2])ext, n, mem_gpa[LIST_OFF / HUGE], &err);
	if (st != VGPU_STUB_WIN_REGISTERED) {
		fprintf(stderr, "guest_ring: window state %u error %d\n", st, err);
		return -1;
	}
	/* The mediator wrote the control page: indexes from 0. */
	if (*(uint32_t *)(void *)mem != VGPU_RING_MAGIC) {
		fprintf(stderr, "guest_ring: no control page\n");
		return -1;
	}
	sq_tail = cq_head = 0;
	next_free = VGPU_RING_DATA_OFFSET;
	return 0;
}

static uint32_t *idx(size_t off)
{
	return (uint32_t *)(void *)(mem + off);
}

static uint32_t put_array(const float *src, uint64_t count)
{
	uint32_t off = (uint32_t)next_free;

	if (src)
		memcpy(mem + off, src, count * 4);
	next_free += (count * 4 + 63) / 64 * 64;
	return off;
}

static void submit(const struct vgpu_ring_desc *d)
{
	vgpu_ring_encode_desc(d, mem + VGPU_RING_SQ_OFFSET +
					 (size_t)(sq_tail % VGPU_RING_ENTRIES) * VGPU_RING_DESC_SIZE);
	sq_tail++;
	__atomic_store_n(idx(VGPU_RING_OFF_SQ_TAIL), sq_tail, __ATOMIC_RELEASE);
	wr(VGPU_STUB_REG_DOORBELL, 1);
}

/* Take one completion, waiting up to @secs; false when none came. */
static bool take(struct vgpu_ring_cqe *e, double secs)
{
	double end = now_s() + secs;

	while (__atomic_load_n(idx(VGPU_RING_OFF_CQ_TAIL), __ATOMIC_ACQUIRE) == cq_head) {
		if (now_s() > end || !(rd(VGPU_STUB_REG_STATUS) & VGPU_STUB_STATUS_WINDOW))
			return false;
		usleep(50);
	}
	if (vgpu_ring_decode_cqe(mem + VGPU_RING_CQ_OFFSET +
					 (size_t)(cq_head % VGPU_RING_ENTRIES) * VGPU_RING_CQE_SIZE,
				 e) != VGPU_OK)
		e->status = 999;
	cq_head++;
	__atomic_store_n(idx(VGPU_RING_OFF_CQ_HEAD), cq_head, __ATOMIC_RELEASE);
	return true;
}

/* One op, its inputs in the window, verified: 1 ok, 0 wrong, -1 error. */
static int run_op(struct submit_work *w, uint64_t id)
{
	struct vgpu_ring_desc d = { .request_id = id, .op = (uint16_t)w->op, .params = w->params };
	struct vgpu_ring_cqe e;
	int inplace = vgpu_proto_inplace_input(w->op);

	next_free = VGPU_RING_DATA_OFFSET;
	for (int i = 0; i < w->n_inputs; i++)
		d.in_off[i] = put_array(w->in[i], w->in_count[i]);
	d.out_off = inplace >= 0 ? d.in_off[inplace] : put_array(NULL, w->out_count);
	submit(&d);
	if (!take(&e, 60) || e.request_id != id || e.status != VGPU_OK)
		return -1;
	return submit_work_check(w, (const float *)(const void *)(mem + d.out_off)) < 0;
}

static int ops(int repeat)
{
	static const struct {
		const char *name;
		int op;
		struct vgpu_op_params p;
	} cases[] = {
		{ "vector_add", VGPU_OP_VECTOR_ADD, { .n = 100000 } },
		{ "saxpy", VGPU_OP_SAXPY, { .n = 65537, .alpha = 2.5f } },
		{ "sgemm", VGPU_OP_SGEMM, { .m = 64, .n = 48, .k = 33, .alpha = 1.0f, .beta = 0.5f } },
		{ "reduce_sum", VGPU_OP_REDUCE_SUM, { .n = 250001 } },
	};
	uint64_t id = 1;
	int bad = 0;

	printf("RING-OPS");
	for (unsigned c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct submit_work w = { .op = cases[c].op, .params = cases[c].p };
		int ok = 0;

		if (vgpu_proto_op_shape(w.op, &w.params, &vgpu_proto_default_limits, &w.n_inputs,
					w.in_count, &w.out_count) != VGPU_OK ||
		    submit_work_init(&w, c + 1) != VGPU_OK || submit_work_reference(&w) != VGPU_OK)
			die("workload");
		for (int r = 0; r < repeat; r++) /* inputs copied in anew each time */
			ok += run_op(&w, id++) == 1;
		printf(" %s=%d/%d", cases[c].name, ok, repeat);
		bad += ok != repeat;
		submit_work_free(&w);
	}
	printf(" int-status=%s\n", rd(VGPU_STUB_REG_INT_STATUS) & VGPU_STUB_INT_COMPLETE ? "set" : "clear");
	return bad ? 1 : 0;
}

/* A vector_add of 16 floats whose descriptor has these fields; its
 * status (1000: no answer, 1001: another request's). */
static int32_t one_desc(uint64_t id, uint32_t in0, uint32_t in1, uint32_t out, uint16_t flags,
			uint32_t vm_id)
{
	struct vgpu_ring_desc d = { .request_id = id, .op = VGPU_OP_VECTOR_ADD, .flags = flags,
				    .params = { .vm_id = vm_id, .n = 16 },
				    .in_off = { in0, in1, 0 }, .out_off = out };
	struct vgpu_ring_cqe e;

	submit(&d);
	if (!take(&e, 30))
		return 1000;
	return e.request_id == id ? e.status : 1001;
}

static int hostile(void)
{
	const uint32_t a = VGPU_RING_DATA_OFFSET, b = a + 64, c = a + 128;
	uint64_t ext[4][2];
	uint32_t n = window_extents(ext);
	int32_t err;
	uint32_t st;

	printf("RING-HOSTILE");
	/* Descriptors: each refused, the window goes on. */
	printf(" in-rings=%d", one_desc(1, VGPU_RING_SQ_OFFSET, b, c, 0, 0));
	printf(" past-window=%d", one_desc(2, a, WINDOW - 32, c, 0, 0));
	printf(" reserved-flags=%d", one_desc(3, a, b, c, 1, 0));
	printf(" other-vm=%d", one_desc(4, a, b, c, 0, 4242));
	printf(" good=%d", one_desc(5, a, b, c, 0, 0));
	/* A doorbell storm: nothing published, nothing happens. */
	for (int i = 0; i < 20000; i++)
		wr(VGPU_STUB_REG_DOORBELL, (uint32_t)i);
	printf(" after-storm=%d", one_desc(6, a, b, c, 0, 0));
	/* Extent lists: memory the guest does not have, a list not page
	 * aligned, no extents, overlapping extents. Each refused (a
	 * registration replaces the window registered before, so none is
	 * left until a good one). */
	uint64_t far[1][2] = { { 64ull << 30, WINDOW } };
	st = register_list((const uint64_t(*)[2])far, 1, mem_gpa[LIST_OFF / HUGE], &err);
	printf(" list-outside-ram=%u/%d", st, err);
	st = register_list((const uint64_t(*)[2])ext, n, mem_gpa[LIST_OFF / HUGE] + 8, &err);
	printf(" list-unaligned=%u/%d", st, err);
	st = register_list((const uint64_t(*)[2])ext, 0, mem_gpa[LIST_OFF / HUGE], &err);
	printf(" list-empty=%u/%d", st, err);
	uint64_t twice[2][2] = { { mem_gpa[0], HUGE }, { mem_gpa[0], WINDOW - HUGE } };
	st = register_list((const uint64_t(*)[2])twice, 2, mem_gpa[LIST_OFF / HUGE], &err);
	printf(" list-overlap=%u/%d", st, err);
	/* A good one again, then a broken ring: the window is lost. */
	printf(" reregister=%d", register_window());
	printf(" served=%d", one_desc(7, a, b, c, 0, 0));
	wr(VGPU_STUB_REG_INT_STATUS, VGPU_STUB_INT_ALL);
	__atomic_store_n(idx(VGPU_RING_OFF_SQ_TAIL), sq_tail + 5000, __ATOMIC_RELEASE);
	wr(VGPU_STUB_REG_DOORBELL, 1);
	st = wait_reg(VGPU_STUB_REG_WIN_STATE, ~0u, VGPU_STUB_WIN_REFUSED, 20);
	printf(" tail-jump=%u/%d int=%s", st, (int32_t)rd(VGPU_STUB_REG_WIN_ERROR),
	       rd(VGPU_STUB_REG_INT_STATUS) & VGPU_STUB_INT_WINDOW ? "window" : "none");
	/* Read-only and unknown registers: ignored. */
	wr(VGPU_STUB_REG_WIN_STATE, 2);
	wr(0x300, 1);
	printf(" ro-write=%u", rd(VGPU_STUB_REG_WIN_STATE));
	printf(" again=%d\n", register_window());
	return 0;
}

static int loop(double secs)
{
	struct submit_work w = { .op = VGPU_OP_VECTOR_ADD, .params = { .n = 4096 } };
	uint64_t ok = 0, errors = 0, wrong = 0, twice = 0, relinks = 0, id = 0;
	double end = now_s() + secs;

	if (vgpu_proto_op_shape(w.op, &w.params, &vgpu_proto_default_limits, &w.n_inputs,
				w.in_count, &w.out_count) != VGPU_OK ||
	    submit_work_init(&w, 7) != VGPU_OK || submit_work_reference(&w) != VGPU_OK)
		die("workload");
	while (now_s() < end) {
		if (!(rd(VGPU_STUB_REG_STATUS) & VGPU_STUB_STATUS_WINDOW)) {
			/* The link went: the device registers the window again once
			 * the mediator is back; the rings start anew. */
			relinks++;
			wait_reg(VGPU_STUB_REG_STATUS, VGPU_STUB_STATUS_WINDOW, VGPU_STUB_STATUS_WINDOW,
				 30);
			if (*(uint32_t *)(void *)mem != VGPU_RING_MAGIC)
				break;
			sq_tail = cq_head = 0;
			continue;
		}
		id++;
		int r = run_op(&w, id);
		if (r == 1)
			ok++;
		else if (r == 0)
			wrong++;
		else
			errors++; /* answered with an error, or lost with the link */
		/* A late completion of an earlier request would show here. */
		struct vgpu_ring_cqe e;
		while (__atomic_load_n(idx(VGPU_RING_OFF_CQ_TAIL), __ATOMIC_ACQUIRE) != cq_head &&
		       take(&e, 0))
			twice += e.request_id <= id;
	}
	printf("RING-LOOP ok=%llu errors=%llu wrong=%llu twice=%llu relinks=%llu\n",
	       (unsigned long long)ok, (unsigned long long)errors, (unsigned long long)wrong,
	       (unsigned long long)twice, (unsigned long long)relinks);
	submit_work_free(&w);
	return wrong || twice ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: guest_ring ops REPEAT | hostile | loop SECONDS\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	open_device();
	if (!(rd(VGPU_STUB_REG_CAPABILITIES) & VGPU_STUB_CAP_RING)) {
		printf("RING-NONE\n");
		return 1;
	}
	if (!(wait_reg(VGPU_STUB_REG_STATUS, VGPU_STUB_STATUS_LINK, VGPU_STUB_STATUS_LINK, 30) &
	      VGPU_STUB_STATUS_LINK)) {
		printf("RING-NOLINK\n");
		return 1;
	}
	alloc_memory();
	if (register_window() != 0) {
		printf("RING-NOWINDOW\n");
		return 1;
	}
	if (strcmp(argv[1], "ops") == 0)
		return ops(argc > 2 ? atoi(argv[2]) : 1);
	if (strcmp(argv[1], "hostile") == 0)
		return hostile();
	if (strcmp(argv[1], "loop") == 0)
		return loop(argc > 2 ? atof(argv[2]) : 10);
	return 2;
}
