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
 *   device-peer SOCKET [--n FLOATS] [--repeat N] [--warmup N] [--json]
 *
 * Prints p50 and p99 of the round trip and of the overhead (microseconds);
 * exit status 1 when a request fails or its result is wrong (checked
 * against a + b for every request).
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

static void reply(int s, uint16_t want)
{
	uint8_t msg[VGPU_DEV_REPLY_MSG];
	struct vgpu_msg_header h;
	uint16_t answered;
	int32_t status;
	uint64_t window;
	size_t got = 0;

	while (got < sizeof(msg)) {
		ssize_t n = recv(s, msg + got, sizeof(msg) - got, 0);
		if (n <= 0)
			die("the mediator closed the connection");
		got += (size_t)n;
	}
	errno = 0;
	if (vgpu_proto_decode_header(msg, &vgpu_proto_default_limits, &h) != VGPU_OK ||
	    vgpu_dev_parse_reply(msg, &h, msg + VGPU_PROTO_HEADER_SIZE, &answered, &status,
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

static double pct(uint64_t *v, unsigned n, unsigned q)
{
	unsigned rank = (n * q + 99) / 100;

	return (double)v[rank ? rank - 1 : 0] / 1000.0;
}

int main(int argc, char **argv)
{
	unsigned n = 1024, repeat = 2000, warmup = 200;
	bool json = false;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	if (argc < 2 || strlen(argv[1]) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "usage: device-peer SOCKET [--n FLOATS] [--repeat N] [--warmup N] [--json]\n");
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (i + 1 < argc && strcmp(argv[i], "--n") == 0)
			n = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (i + 1 < argc && strcmp(argv[i], "--repeat") == 0)
			repeat = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (i + 1 < argc && strcmp(argv[i], "--warmup") == 0)
			warmup = (unsigned)strtoul(argv[++i], NULL, 10);
		else
			return fprintf(stderr, "device-peer: bad argument %s\n", argv[i]), 2;
	}
	if (n < 1 || (uint64_t)n * 12 > (8u << 20) || repeat < 1 || repeat > 1000000)
		return fprintf(stderr, "device-peer: --n 1..699050, --repeat 1..1000000\n"), 2;

	/* The "guest": its RAM, sealed as QEMU's memory-backend-memfd does. */
	int ram = memfd_create("guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int doorbell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int notify = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
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
	uint32_t *sq_tail = (uint32_t *)(void *)(w + VGPU_RING_OFF_SQ_TAIL);
	uint32_t *cq_tail = (uint32_t *)(void *)(w + VGPU_RING_OFF_CQ_TAIL);
	uint32_t *cq_head = (uint32_t *)(void *)(w + VGPU_RING_OFF_CQ_HEAD);
	uint64_t *rtt = calloc(repeat, sizeof(*rtt)), *over = calloc(repeat, sizeof(*over));
	uint32_t tail = 0, head = 0, bad = 0;
	uint64_t one = 1;
	if (!rtt || !over)
		die("memory");
	for (unsigned k = 0; k < warmup + repeat; k++) {
		struct vgpu_ring_desc d = { .request_id = k + 1, .op = VGPU_OP_VECTOR_ADD,
					    .params = { .n = n }, .in_off = { a, b, 0 }, .out_off = c };
		struct vgpu_ring_cqe e;

		fc[n - 1] = -1.0f;
		vgpu_ring_encode_desc(&d, w + VGPU_RING_SQ_OFFSET +
						  (size_t)(tail % VGPU_RING_ENTRIES) * VGPU_RING_DESC_SIZE);
		__atomic_store_n(sq_tail, ++tail, __ATOMIC_RELEASE);
		uint64_t t0 = vgpu_now_ns();
		if (write(doorbell, &one, sizeof(one)) != sizeof(one))
			die("doorbell");
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
			over[k - warmup] = t1 - t0 > e.exec_ns ? t1 - t0 - e.exec_ns : 0;
		}
	}
	qsort(rtt, repeat, sizeof(*rtt), cmp);
	qsort(over, repeat, sizeof(*over), cmp);
	if (json)
		printf("{\"n\":%u,\"repeat\":%u,\"wrong\":%u,\"rtt_us\":{\"p50\":%.3f,\"p99\":%.3f},"
		       "\"overhead_us\":{\"p50\":%.3f,\"p99\":%.3f}}\n",
		       n, repeat, bad, pct(rtt, repeat, 50), pct(rtt, repeat, 99), pct(over, repeat, 50),
		       pct(over, repeat, 99));
	else
		printf("device path, vector_add n=%u, %u requests (%u wrong): doorbell to completion "
		       "p50 %.1f us p99 %.1f us; less execution p50 %.1f us p99 %.1f us\n",
		       n, repeat, bad, pct(rtt, repeat, 50), pct(rtt, repeat, 99), pct(over, repeat, 50),
		       pct(over, repeat, 99));
	return bad ? 1 : 0;
}
