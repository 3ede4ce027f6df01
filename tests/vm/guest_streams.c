/* SPDX-License-Identifier: MIT */
/*
 * guest_streams.c - a guest program (static) that uses the guest driver's
 * streams (guest/driver/vgpu_uapi.h) wrongly on purpose, for
 * tests/vm/test-cuda-vm.sh: every misuse refused with its error, a stream
 * whose index leaves its ring closed by the mediator, and a second
 * process unable to map the first one's slot. One line for the host:
 *
 *   STREAMS-HOSTILE name=result ...   (result: 0, an errno name, or what
 *                                      was seen)
 *
 * usage: guest_streams [DEVICE]   (default /dev/vgpu0)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vgpu_ring.h"
#include "vgpu_uapi.h"

static char line[2048];

static void say(const char *name, const char *result)
{
	size_t n = strlen(line);

	snprintf(line + n, sizeof(line) - n, " %s=%s", name, result);
}

/* 0, or the errno's name for the few a misuse gets. */
static const char *rc_name(int rc)
{
	if (rc == 0)
		return "0";
	switch (errno) {
	case EINVAL: return "EINVAL";
	case EBUSY: return "EBUSY";
	case ENOSPC: return "ENOSPC";
	case EPIPE: return "EPIPE";
	case EPROTO: return "EPROTO";
	default: return strerror(errno);
	}
}

static const char *map_name(void *p)
{
	return p == MAP_FAILED ? rc_name(-1) : "mapped";
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/dev/vgpu0";
	struct vgpu_stream_req a, b, c;
	uint32_t index;
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		printf("STREAMS-HOSTILE open=%s\n", strerror(errno));
		return 1;
	}
	index = 0;
	say("close-before-open", rc_name(ioctl(fd, VGPU_IOC_STREAM_CLOSE, &index)));
	say("open", rc_name(ioctl(fd, VGPU_IOC_STREAM_OPEN, &a)));
	say("map-past-its-slot", map_name(mmap(NULL, a.bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
					       fd, (off_t)(a.offset + a.bytes))));
	say("map-short", map_name(mmap(NULL, a.bytes - 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
				       (off_t)a.offset)));
	say("map-whole-window", map_name(mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0)));
	struct vgpu_dev_info info;

	say("wait-for-window", rc_name(ioctl(fd, VGPU_IOC_WAIT, &info)));
	index = 99;
	say("close-index-99", rc_name(ioctl(fd, VGPU_IOC_STREAM_CLOSE, &index)));
	say("open-second", rc_name(ioctl(fd, VGPU_IOC_STREAM_OPEN, &b)));
	say("open-third", rc_name(ioctl(fd, VGPU_IOC_STREAM_OPEN, &c)));
	say("close-second", rc_name(ioctl(fd, VGPU_IOC_STREAM_CLOSE, &b.index)));
	say("close-second-again", rc_name(ioctl(fd, VGPU_IOC_STREAM_CLOSE, &b.index)));
	say("reopen-same-slot", ioctl(fd, VGPU_IOC_STREAM_OPEN, &c) == 0 && c.index == b.index
					? "0" : "other");

	/* A second program: streams of its own, never the first one's slot. */
	pid_t pid = fork();

	if (pid == 0) {
		int fd2 = open(path, O_RDWR | O_CLOEXEC);
		struct vgpu_stream_req r;

		if (fd2 < 0 || ioctl(fd2, VGPU_IOC_STREAM_OPEN, &r) != 0)
			_exit(1);
		if (mmap(NULL, a.bytes, PROT_READ, MAP_SHARED, fd2, (off_t)a.offset) != MAP_FAILED)
			_exit(2);
		_exit(errno == EINVAL && r.index != a.index && r.index != b.index ? 0 : 3);
	}
	int st = -1;

	waitpid(pid, &st, 0);
	say("other-program-own-stream-not-ours",
	    WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "0" : "failed");

	/* The first stream's TX tail past its ring: the mediator closes it. */
	uint8_t *p = mmap(NULL, a.bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)a.offset);
	const char *closed = "not-mapped";

	if (p != MAP_FAILED) {
		uint64_t one = 1, tail = (uint64_t)a.ring_bytes + 64;

		memcpy(p + VGPU_STREAM_OFF_TX_TAIL, &tail, sizeof(tail));
		if (write(fd, &one, sizeof(one)) != sizeof(one))
			closed = "no-doorbell";
		else {
			closed = "open";
			for (int i = 0; i < 200; i++) {
				uint32_t v;

				memcpy(&v, p + VGPU_STREAM_OFF_CLOSED, sizeof(v));
				if (v == 1) {
					closed = "closed";
					break;
				}
				sleep_ms(10);
			}
		}
	}
	say("tx-tail-past-ring", closed);
	printf("STREAMS-HOSTILE%s\n", line);
	return 0;
}
