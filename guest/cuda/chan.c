/* SPDX-License-Identifier: MIT */
/*
 * chan.c - a connection to the VM's host side, whichever way the VM has:
 * a Unix socket (unix:, shm:: the VM's mediator socket, local processes)
 * or a stream through the vgpu-stub device (dev:/dev/vgpuN in a VM: the
 * guest driver's window, vgpu_ring.h "Streams"). Both carry the same
 * bytes; the mediator hands either to the VM's CUDA worker.
 *
 * The device is opened once per process, on the first stream, and kept
 * (the driver lets one program have it at a time; closing it, at exit
 * too, has the driver register the window anew, which closes this
 * process's streams in the mediator and so frees what its worker held).
 * The window's data area is cut in two stream slots, each a control page
 * and two rings: the description's stream and the calls' stream.
 *
 * The mediator writes the window's indexes whenever it likes: each is
 * read once per decision and checked (a tail at most a ring ahead).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shim.h"
#include "transport.h"
#include "transport_shm.h"
#include "vgpu_clock.h"

/* How long a receive tries again before it sleeps in poll(): a reply
 * that comes within it costs no wake-up (VGPU_CUDA_SPIN_US, 0 to 1000,
 * default 30). */
uint64_t vgpu_cuda_spin_ns(void)
{
	static uint64_t ns = UINT64_MAX;

	if (ns == UINT64_MAX)
		ns = vgpu_env_ull("VGPU_CUDA_SPIN_US", 0, 1000, 30) * 1000;
	return ns;
}

/* Move @len bytes to or from @fd before @deadline_ns of the monotonic clock. */
static int socket_io(int fd, void *buf, size_t len, bool out, uint64_t deadline_ns)
{
	char *p = buf;
	uint64_t spin_until = out ? 0 : vgpu_now_ns() + vgpu_cuda_spin_ns();

	/* A send is tried at once (the socket usually has room); a receive
	 * tries for a while, then waits. */
	bool ready = out || vgpu_cuda_spin_ns() > 0;

	while (len > 0) {
		struct pollfd pfd = { fd, out ? POLLOUT : POLLIN, 0 };
		uint64_t now = vgpu_now_ns();
		ssize_t n;

		if (now >= deadline_ns)
			return VGPU_TIMEOUT;
		int ms = deadline_ns == UINT64_MAX ? -1 : (int)((deadline_ns - now) / 1000000u) + 1;

		if (!ready) {
			if (poll(&pfd, 1, ms) < 0 && errno != EINTR)
				return VGPU_IO_ERROR;
			if (!pfd.revents)
				continue;
		}
		ready = false;
		n = out ? send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT)
			: recv(fd, p, len, MSG_DONTWAIT);
		if (n == 0 && !out)
			return VGPU_IO_ERROR;
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				return VGPU_IO_ERROR;
			ready = !out && vgpu_now_ns() < spin_until;
			continue;
		}
		p += n;
		len -= (size_t)n;
		/* The rest of a send: again at once; of a receive: while spinning. */
		ready = out || vgpu_now_ns() < spin_until;
	}
	return VGPU_OK;
}

#define SLOTS 2

static struct {
	pthread_mutex_t lock;          /* opening, slots, stream descriptors */
	struct vgpu_shm *shm;          /* NULL until opened */
	int open_rc;                   /* VGPU_OK once opened; the failure, once tried */
	uint64_t ring;                 /* each ring's bytes */
	bool used[SLOTS];
	uint64_t next_id;
	pid_t pid;                     /* the process that opened it (fork) */
} dev = { .lock = PTHREAD_MUTEX_INITIALIZER, .open_rc = 1 };

/* Slot @i's control page in the window. */
static uint8_t *slot_ctl(int i)
{
	return dev.shm->win + VGPU_RING_DATA_OFFSET + (size_t)i * (VGPU_STREAM_CTL + 2 * dev.ring);
}

static _Atomic uint64_t *u64_at(const struct vgpu_cuda_chan *c, size_t off)
{
	return (_Atomic uint64_t *)(void *)(c->ctl + off);
}

static _Atomic uint32_t *u32_at(const struct vgpu_cuda_chan *c, size_t off)
{
	return (_Atomic uint32_t *)(void *)(c->ctl + off);
}

/* The device, opened and its window mapped. Lock held. */
static int dev_open(const char *path)
{
	if (dev.open_rc != 1)
		return dev.open_rc;
	dev.open_rc = vgpu_shm_open_dev(path, &dev.shm);
	if (dev.open_rc == VGPU_BUSY) {
		vgpu_cuda_log(true, "%s: another program has the device (one at a time)", path);
		return dev.open_rc;
	}
	if (dev.open_rc != VGPU_OK) {
		vgpu_cuda_log(true, "%s: %s", path, vgpu_strerror(dev.open_rc));
		return dev.open_rc;
	}
	uint64_t data = dev.shm->win_size - VGPU_RING_DATA_OFFSET;

	/* The largest rings (a power of two, at most 4 MiB) that two slots hold. */
	dev.ring = (uint64_t)4 << 20;
	while (dev.ring > VGPU_STREAM_RING_MIN && SLOTS * (VGPU_STREAM_CTL + 2 * dev.ring) > data)
		dev.ring /= 2;
	if (SLOTS * (VGPU_STREAM_CTL + 2 * dev.ring) > data) {
		vgpu_cuda_log(true, "%s: its window is too small for the CUDA calls", path);
		dev.open_rc = VGPU_LIMIT;
	}
	dev.pid = getpid();
	return dev.open_rc;
}

static void doorbell(void)
{
	uint64_t one = 1;

	if (write(dev.shm->doorbell_fd, &one, sizeof(one)) < 0) {
		/* EPIPE: the window is gone; the waits see it. */
	}
}

/* Open or close stream @slot with a descriptor, and wait for its
 * answer. Lock held. */
static int stream_desc(int slot, bool open)
{
	struct vgpu_ring_desc d = {
		.request_id = ++dev.next_id,
		.op = VGPU_RING_OP_STREAM,
		.flags = open ? VGPU_STREAM_OPEN : VGPU_STREAM_CLOSE,
		.params = { .m = (uint32_t)slot, .n = open ? (uint32_t)dev.ring : 0 },
		.in_off = { open ? (uint32_t)(slot_ctl(slot) - dev.shm->win) : 0, 0, 0 },
	};
	struct vgpu_ring_cqe e;
	int rc = vgpu_shm_submit(dev.shm, &d);

	while (rc == VGPU_OK) {
		rc = vgpu_shm_next(dev.shm, &e);
		if (rc == VGPU_OK && e.request_id == d.request_id)
			return e.status;
		if (rc == VGPU_TIMEOUT)
			rc = vgpu_shm_wait(dev.shm, 10);
	}
	return rc;
}

/* A stream of the device at @path into @c. */
static int dev_connect(const char *path, struct vgpu_cuda_chan *c)
{
	int rc, slot = -1;

	pthread_mutex_lock(&dev.lock);
	rc = dev_open(path);
	for (int i = 0; rc == VGPU_OK && i < SLOTS && slot < 0; i++)
		if (!dev.used[i])
			slot = i;
	if (rc == VGPU_OK && slot < 0)
		rc = VGPU_BUSY;
	if (rc == VGPU_OK) {
		c->ctl = slot_ctl(slot);
		memset(c->ctl, 0, VGPU_STREAM_CTL);
		rc = stream_desc(slot, true);
	}
	if (rc == VGPU_OK) {
		dev.used[slot] = true;
		c->fd = -1;
		c->slot = slot;
		c->tx = c->ctl + VGPU_STREAM_CTL;
		c->rx = c->tx + dev.ring;
		c->tx_tail = c->rx_head = 0;
	}
	pthread_mutex_unlock(&dev.lock);
	return rc;
}

int vgpu_cuda_chan_connect(const struct vgpu_cuda_where *w, struct vgpu_cuda_chan *c)
{
	*c = (struct vgpu_cuda_chan){ .fd = -1, .slot = -1 };
	if (w->dev)
		return dev_connect(w->path, c);
	return vgpu_unix_connect(w->path, &c->fd);
}

bool vgpu_cuda_chan_open(const struct vgpu_cuda_chan *c)
{
	return c->fd >= 0 || c->slot >= 0;
}

void vgpu_cuda_chan_close(struct vgpu_cuda_chan *c)
{
	if (c->fd >= 0)
		close(c->fd);
	if (c->slot >= 0) {
		pthread_mutex_lock(&dev.lock);
		/* The forked child's streams are its parent's. */
		if (dev.pid == getpid() && stream_desc(c->slot, false) == VGPU_OK)
			dev.used[c->slot] = false;
		pthread_mutex_unlock(&dev.lock);
	}
	*c = (struct vgpu_cuda_chan){ .fd = -1, .slot = -1 };
}

void vgpu_cuda_chan_forget(struct vgpu_cuda_chan *c)
{
	if (c->fd >= 0)
		close(c->fd);
	*c = (struct vgpu_cuda_chan){ .fd = -1, .slot = -1 };
}

/* Sleep until the mediator moved something of @c's (or 10 ms: a wake-up
 * another thread's wait took is only late, not lost), or @deadline_ns. */
static int dev_sleep(struct vgpu_cuda_chan *c, uint64_t deadline_ns, bool out)
{
	uint64_t now = vgpu_now_ns();
	int ms = 10, rc;

	if (now >= deadline_ns)
		return VGPU_TIMEOUT;
	if (deadline_ns - now < 10000000u)
		ms = (int)((deadline_ns - now) / 1000000u) + 1;
	atomic_store(u32_at(c, VGPU_STREAM_OFF_WAITING), 1);
	/* Whatever came before WAITING was seen needs no wake-up. */
	if (out ? atomic_load(u64_at(c, VGPU_STREAM_OFF_TX_HEAD)) == c->tx_tail - dev.ring
		: atomic_load(u64_at(c, VGPU_STREAM_OFF_RX_TAIL)) == c->rx_head)
		rc = atomic_load(u32_at(c, VGPU_STREAM_OFF_CLOSED)) ? VGPU_OK
								     : vgpu_shm_wait(dev.shm, ms);
	else
		rc = VGPU_OK;
	atomic_store(u32_at(c, VGPU_STREAM_OFF_WAITING), 0);
	return rc;
}

/* @len bytes into TX. */
static int dev_send(struct vgpu_cuda_chan *c, const uint8_t *p, size_t len, uint64_t deadline_ns)
{
	while (len > 0) {
		uint64_t head = atomic_load(u64_at(c, VGPU_STREAM_OFF_TX_HEAD));
		uint64_t held = c->tx_tail - head;

		if (held > dev.ring)
			return VGPU_PROTOCOL;
		if (atomic_load(u32_at(c, VGPU_STREAM_OFF_CLOSED)))
			return VGPU_IO_ERROR;
		if (held == dev.ring) {
			int rc = dev_sleep(c, deadline_ns, true);

			if (rc != VGPU_OK)
				return rc;
			continue;
		}
		size_t off = (size_t)(c->tx_tail & (dev.ring - 1));
		size_t n = dev.ring - held;

		if (n > dev.ring - off)
			n = dev.ring - off;
		if (n > len)
			n = len;
		memcpy(c->tx + off, p, n);
		c->tx_tail += n;
		p += n;
		len -= n;
		atomic_store(u64_at(c, VGPU_STREAM_OFF_TX_TAIL), c->tx_tail);
		doorbell();
	}
	return VGPU_OK;
}

/* @len bytes out of RX, trying for VGPU_CUDA_SPIN_US before sleeping. */
static int dev_recv(struct vgpu_cuda_chan *c, uint8_t *p, size_t len, uint64_t deadline_ns)
{
	uint64_t spin_until = vgpu_now_ns() + vgpu_cuda_spin_ns();

	while (len > 0) {
		uint64_t tail = atomic_load(u64_at(c, VGPU_STREAM_OFF_RX_TAIL));
		uint64_t avail = tail - c->rx_head;

		if (avail > dev.ring)
			return VGPU_PROTOCOL;
		if (avail == 0) {
			if (atomic_load(u32_at(c, VGPU_STREAM_OFF_CLOSED)))
				return VGPU_IO_ERROR; /* the host's end closed, nothing more */
			if (vgpu_now_ns() < spin_until)
				continue;
			int rc = dev_sleep(c, deadline_ns, false);

			if (rc != VGPU_OK)
				return rc;
			continue;
		}
		size_t off = (size_t)(c->rx_head & (dev.ring - 1));
		size_t n = avail < dev.ring - off ? (size_t)avail : dev.ring - off;

		if (n > len)
			n = len;
		memcpy(p, c->rx + off, n);
		c->rx_head += n;
		p += n;
		len -= n;
		atomic_store(u64_at(c, VGPU_STREAM_OFF_RX_HEAD), c->rx_head);
		/* The mediator waits for room: tell it there is. */
		if (atomic_load(u32_at(c, VGPU_STREAM_OFF_STALLED)))
			doorbell();
	}
	return VGPU_OK;
}

int vgpu_cuda_chan_io(struct vgpu_cuda_chan *c, void *buf, size_t len, bool out,
		      uint64_t deadline_ns)
{
	if (c->fd >= 0)
		return socket_io(c->fd, buf, len, out, deadline_ns);
	if (c->slot < 0)
		return VGPU_IO_ERROR;
	return out ? dev_send(c, buf, len, deadline_ns) : dev_recv(c, buf, len, deadline_ns);
}
