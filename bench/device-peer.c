/* SPDX-License-Identifier: MIT */
/*
 * device-peer - the mediator's own time on the device path, host side: a
 * process plays a vgpu-stub device and its guest (guest RAM in a sealed
 * memfd, sent in a DEVICE message; a ring window registered in it), then
 * times requests one at a time from its doorbell write to the completion
 * posted in the ring (spinning on the completion tail, so that no wake-up
 * of ours is counted). The mediator's overhead is that time less the
 * request's execution (exec_ns, which the mediator reports in the
 * completion: the backend's copies and kernel).
 *
 *   device-peer SOCKET [--n FLOATS] [--repeat N] [--warmup N] [--noise-ms MS] [--trace FILE]
 *               [--always-ring] [--json]
 *
 * Prints p50 and p99 of the round trip and of the overhead (microseconds),
 * the overhead split into the request's time in the mediator's queue
 * (queue_ns: admitted to picked by the scheduler) and the rest (doorbell
 * to admitted, the backend's submit, completion posted), and those two averaged
 * over the slowest 1% of requests by overhead (where the tail goes); exit
 * status 1 when a request fails or its result is wrong (checked against
 * a + b for every request).
 *
 * --trace FILE writes each request's time, overhead and time queued, in
 * order (where in time the slow ones fall).
 *
 * Like libvgpu, it skips the doorbell while the mediator watches the
 * submission tail, and, spinning on its completions, asks for no signal
 * (vgpu_ring.h: sq_flags, cq_flags); it counts the doorbells it wrote.
 * --always-ring writes a doorbell for every request and asks for every
 * signal, as a client of before the flags does. The time starts right
 * before the tail is published.
 *
 * Also, for telling the mediator's tail from the machine's: "noise", the
 * gaps of 5 us and more that this process, spinning on the clock alone for
 * --noise-ms (default 1000) before the requests, saw in its own run (a
 * core taken away: interrupts, the hypervisor), per second and the
 * largest; and the median time between the slowest 1% of requests.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vgpu_clock.h"
#include "vgpu_device.h"
#include "vgpu_ring.h"

#define RAM (64u << 20)
#define WIN_GPA (1u << 20)
#define WIN (VGPU_RING_DATA_OFFSET + (8u << 20))

static _Noreturn void die(const char *what)
{
	fprintf(stderr, "device-peer: %s%s%s\n", what, errno ? ": " : "", errno ? strerror(errno) : "");
	exit(1);
}

/* The mediator's next message (replies and IDENTITY are one size) into @msg,
 * its header into @h. */
static void next_message(int s, uint8_t msg[VGPU_DEV_REPLY_MSG], struct vgpu_msg_header *h)
{
	size_t got = 0;

	while (got < VGPU_DEV_REPLY_MSG) {
		ssize_t n = recv(s, msg + got, VGPU_DEV_REPLY_MSG - got, 0);
		if (n <= 0)
			die("the mediator closed the connection");
		got += (size_t)n;
	}
	errno = 0;
	if (vgpu_proto_decode_header(msg, &vgpu_proto_default_limits, h) != VGPU_OK)
		die("malformed message");
}

/* The reply to the last message sent (of type @want): IDENTITY messages
 * (the VM's pool and priority, unasked) on the way are checked, then
 * skipped. */
static void reply(int s, uint16_t want)
{
	uint8_t msg[VGPU_DEV_REPLY_MSG];
	struct vgpu_msg_header h;
	struct vgpu_dev_identity id;
	uint16_t answered;
	int32_t status;
	uint64_t window;

	for (next_message(s, msg, &h); h.type == VGPU_MSG_IDENTITY; next_message(s, msg, &h))
		if (vgpu_dev_parse_identity(msg, &h, msg + VGPU_PROTO_HEADER_SIZE, &id) != VGPU_OK)
			die("malformed identity");
	if (vgpu_dev_parse_reply(msg, &h, msg + VGPU_PROTO_HEADER_SIZE, &answered, &status,
				 &window) != VGPU_OK ||
	    answered != want)
		die("malformed reply");
	if (status != VGPU_OK) {
		fprintf(stderr, "device-peer: refused: %s\n", vgpu_strerror(status));
		exit(1);
	}
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* One request's overhead and its two parts, ordered by the overhead. */
struct split {
	uint64_t over, queue, rest, at;
};

/* Gaps of GAP_NS and more seen while spinning on the clock for @ms. */
#define GAP_NS 5000u
struct noise {
	double per_s, max_us;
};

static struct noise clock_noise(unsigned ms)
{
	uint64_t t0 = vgpu_now_ns(), last = t0, end = t0 + (uint64_t)ms * 1000000u, gaps = 0, max = 0;

	while (last < end) {
		uint64_t now = vgpu_now_ns();

		if (now - last >= GAP_NS) {
			gaps++;
			if (now - last > max)
				max = now - last;
		}
		last = now;
	}
	return (struct noise){ ms ? (double)gaps * 1000.0 / ms : 0, (double)max / 1000.0 };
}

static int cmp_at(const void *a, const void *b)
{
	return cmp(&((const struct split *)a)->at, &((const struct split *)b)->at);
}

static int cmp_split(const void *a, const void *b)
{
	return cmp(&((const struct split *)a)->over, &((const struct split *)b)->over);
}

static double pct(uint64_t *v, unsigned n, unsigned q)
{
	unsigned rank = (n * q + 99) / 100;

	return (double)v[rank ? rank - 1 : 0] / 1000.0;
}

int main(int argc, char **argv)
{
	unsigned n = 1024, repeat = 2000, warmup = 200, noise_ms = 1000;
	const char *trace = NULL;
	bool json = false, always_ring = false;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	if (argc < 2 || strlen(argv[1]) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "usage: device-peer SOCKET [--n FLOATS] [--repeat N] [--warmup N] [--noise-ms MS] [--trace FILE] [--always-ring] [--json]\n");
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--always-ring") == 0)
			always_ring = true;
		else if (i + 1 < argc && strcmp(argv[i], "--n") == 0)
			n = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (i + 1 < argc && strcmp(argv[i], "--repeat") == 0)
			repeat = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (i + 1 < argc && strcmp(argv[i], "--warmup") == 0)
			warmup = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (i + 1 < argc && strcmp(argv[i], "--noise-ms") == 0)
			noise_ms = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (i + 1 < argc && strcmp(argv[i], "--trace") == 0)
			trace = argv[++i];
		else
			return fprintf(stderr, "device-peer: bad argument %s\n", argv[i]), 2;
	}
	if (n < 1 || (uint64_t)n * 12 > (8u << 20) || repeat < 1 || repeat > 1000000 || noise_ms > 60000)
		return fprintf(stderr, "device-peer: --n 1..699050, --repeat 1..1000000, --noise-ms 0..60000\n"), 2;

	/* The "guest": its RAM, sealed as QEMU's memory-backend-memfd does. */
	int ram = memfd_create("guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int doorbell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int pair[2] = { -1, -1 }; /* completions: the mediator's end is sent */
	int notify = socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) == 0
			     ? pair[1] : -1;
	if (ram < 0 || ftruncate(ram, RAM) != 0 ||
	    fcntl(ram, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0 || doorbell < 0 || notify < 0)
		die("guest RAM");
	uint8_t *w = mmap(NULL, WIN, PROT_READ | PROT_WRITE, MAP_SHARED, ram, WIN_GPA);
	if (w == MAP_FAILED)
		die("mmap");

	/* The "device": DEVICE, then WINDOW. */
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memcpy(addr.sun_path, argv[1], strlen(argv[1]) + 1);
	if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof(addr)) != 0)
		die("connect");
	struct vgpu_dev_hello hello = { .version = VGPU_DEV_VERSION, .memory = VGPU_DEV_MEM_MEMFD,
					.n_regions = 1, .regions = { { 0, RAM, 0 } } };
	static uint8_t msg[VGPU_PROTO_HEADER_SIZE + VGPU_DEV_MAX_PAYLOAD];
	int fds[3] = { ram, doorbell, notify };
	union {
		char buf[CMSG_SPACE(sizeof(fds))];
		struct cmsghdr align;
	} ctl = { 0 };
	struct iovec iov = { .iov_base = msg, .iov_len = vgpu_dev_encode_hello(1, &hello, msg) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	if (sendmsg(s, &mh, MSG_NOSIGNAL) != (ssize_t)iov.iov_len)
		die("DEVICE");
	reply(s, VGPU_MSG_DEVICE);
	struct vgpu_dev_window win = { .action = VGPU_DEV_REGISTER, .n_extents = 1, .bytes = WIN,
				       .extents = { { WIN_GPA, WIN } } };
	size_t len = vgpu_dev_encode_window(2, &win, msg);
	if (send(s, msg, len, MSG_NOSIGNAL) != (ssize_t)len)
		die("WINDOW");
	reply(s, VGPU_MSG_WINDOW);

	/* The "guest program": a + b into c, one request at a time. */
	const uint32_t a = VGPU_RING_DATA_OFFSET, b = a + (uint32_t)((n * 4 + 63) / 64 * 64),
		       c = b + (uint32_t)((n * 4 + 63) / 64 * 64);
	float *fa = (float *)(void *)(w + a), *fb = (float *)(void *)(w + b),
	      *fc = (float *)(void *)(w + c);
	for (unsigned i = 0; i < n; i++) {
		fa[i] = (float)i;
		fb[i] = 0.5f * (float)i;
	}
	uint32_t *cq_tail = (uint32_t *)(void *)(w + VGPU_RING_OFF_CQ_TAIL);
	uint32_t *cq_head = (uint32_t *)(void *)(w + VGPU_RING_OFF_CQ_HEAD);
	uint64_t *rtt = calloc(repeat, sizeof(*rtt)), *over = calloc(repeat, sizeof(*over));
	uint64_t *queue = calloc(repeat, sizeof(*queue)), *rest = calloc(repeat, sizeof(*rest));
	struct split *by_over = calloc(repeat, sizeof(*by_over));
	uint64_t *queue_gap = calloc(repeat, sizeof(*queue_gap));
	struct noise noise = clock_noise(noise_ms);
	uint32_t tail = 0, head = 0, bad = 0, rung = 0;
	uint64_t one = 1;
	if (!rtt || !over || !queue || !rest || !by_over || !queue_gap)
		die("memory");
	/* It spins on the completion tail all along: no signals needed. */
	__atomic_store_n((uint32_t *)(void *)(w + VGPU_RING_OFF_CQ_FLAGS),
			 always_ring ? 0 : VGPU_RING_CQ_POLLING, __ATOMIC_SEQ_CST);
	for (unsigned k = 0; k < warmup + repeat; k++) {
		struct vgpu_ring_desc d = { .request_id = k + 1, .op = VGPU_OP_VECTOR_ADD,
					    .params = { .n = n }, .in_off = { a, b, 0 }, .out_off = c };
		struct vgpu_ring_cqe e;

		fc[n - 1] = -1.0f;
		vgpu_ring_encode_desc(&d, w + VGPU_RING_SQ_OFFSET +
						  (size_t)(tail % VGPU_RING_ENTRIES) * VGPU_RING_DESC_SIZE);
		uint64_t t0 = vgpu_now_ns();
		bool ring = vgpu_ring_publish(w, ++tail);

		if (always_ring || ring) {
			if (write(doorbell, &one, sizeof(one)) != sizeof(one))
				die("doorbell");
			rung += k >= warmup;
		}
		while (__atomic_load_n(cq_tail, __ATOMIC_ACQUIRE) == head)
			;
		uint64_t t1 = vgpu_now_ns();
		if (vgpu_ring_decode_cqe(w + VGPU_RING_CQ_OFFSET +
						 (size_t)(head % VGPU_RING_ENTRIES) * VGPU_RING_CQE_SIZE,
					 &e) != VGPU_OK ||
		    e.request_id != k + 1 || e.status != VGPU_OK || fc[n - 1] != 1.5f * (float)(n - 1) ||
		    fc[0] != 0.0f)
			bad++;
		__atomic_store_n(cq_head, ++head, __ATOMIC_RELEASE);
		if (k >= warmup) {
			rtt[k - warmup] = t1 - t0;
			uint64_t o = t1 - t0 > e.exec_ns ? t1 - t0 - e.exec_ns : 0;

			over[k - warmup] = o;
			queue[k - warmup] = e.queue_ns;
			rest[k - warmup] = o > e.queue_ns ? o - e.queue_ns : 0;
			by_over[k - warmup] = (struct split){ o, e.queue_ns, rest[k - warmup], t0 };
		}
	}
	qsort(rtt, repeat, sizeof(*rtt), cmp);
	qsort(over, repeat, sizeof(*over), cmp);
	qsort(queue, repeat, sizeof(*queue), cmp);
	qsort(rest, repeat, sizeof(*rest), cmp);
	if (trace) {
		/* Each request in order: microseconds since the first, its
		 * overhead and time queued (ns): where in time the tail falls. */
		FILE *f = fopen(trace, "w");

		if (!f)
			die("trace");
		for (unsigned i = 0; i < repeat; i++)
			fprintf(f, "%.1f %" PRIu64 " %" PRIu64 "\n",
				(double)(by_over[i].at - by_over[0].at) / 1e3, by_over[i].over,
				by_over[i].queue);
		if (fclose(f) != 0)
			die("trace");
	}
	qsort(by_over, repeat, sizeof(*by_over), cmp_split);
	unsigned tail_n = repeat / 100 ? repeat / 100 : 1;
	double tail_q = 0, tail_r = 0;
	for (unsigned i = repeat - tail_n; i < repeat; i++) {
		tail_q += (double)by_over[i].queue / 1e3 / tail_n;
		tail_r += (double)by_over[i].rest / 1e3 / tail_n;
	}
	/* The slowest 1% in time order: the median time between them. */
	qsort(by_over + repeat - tail_n, tail_n, sizeof(*by_over), cmp_at);
	for (unsigned i = 1; i < tail_n; i++)
		queue_gap[i - 1] = by_over[repeat - tail_n + i].at - by_over[repeat - tail_n + i - 1].at;
	qsort(queue_gap, tail_n > 1 ? tail_n - 1 : 0, sizeof(*queue_gap), cmp);
	double tail_every_ms = tail_n > 1 ? (double)queue_gap[(tail_n - 1) / 2] / 1e6 : 0;
	if (json)
		printf("{\"n\":%u,\"repeat\":%u,\"wrong\":%u,\"rtt_us\":{\"p50\":%.3f,\"p99\":%.3f},"
		       "\"overhead_us\":{\"p50\":%.3f,\"p99\":%.3f},"
		       "\"queue_us\":{\"p50\":%.3f,\"p99\":%.3f},\"rest_us\":{\"p50\":%.3f,\"p99\":%.3f},"
		       "\"slowest_1pct_us\":{\"queue\":%.3f,\"rest\":%.3f},\"slowest_1pct_every_ms\":%.3f,"
		       "\"noise\":{\"gaps_5us_per_s\":%.1f,\"max_us\":%.1f},\"doorbells\":%u}\n",
		       n, repeat, bad, pct(rtt, repeat, 50), pct(rtt, repeat, 99), pct(over, repeat, 50),
		       pct(over, repeat, 99), pct(queue, repeat, 50), pct(queue, repeat, 99),
		       pct(rest, repeat, 50), pct(rest, repeat, 99), tail_q, tail_r, tail_every_ms,
		       noise.per_s, noise.max_us, rung);
	else
		printf("device path, vector_add n=%u, %u requests (%u wrong): doorbell to completion "
		       "p50 %.1f us p99 %.1f us; less execution p50 %.1f us p99 %.1f us "
		       "(queued p50 %.1f p99 %.1f, the rest p50 %.1f p99 %.1f; slowest 1%%: "
		       "queued %.1f, the rest %.1f on average, one every %.2f ms); this process alone "
		       "on the clock: %.1f gaps of 5 us or more per second, the largest %.1f us; "
		       "%u doorbells written\n",
		       n, repeat, bad, pct(rtt, repeat, 50), pct(rtt, repeat, 99), pct(over, repeat, 50),
		       pct(over, repeat, 99), pct(queue, repeat, 50), pct(queue, repeat, 99),
		       pct(rest, repeat, 50), pct(rest, repeat, 99), tail_q, tail_r, tail_every_ms,
		       noise.per_s, noise.max_us, rung);
	return bad ? 1 : 0;
}
