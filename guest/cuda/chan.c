/* SPDX-License-Identifier: MIT */
/*
 * chan.c - a connection to the VM's host side, whichever way the VM has:
 * a Unix socket (unix:, shm:: the VM's mediator socket, local processes)
 * or a stream through the vgpu-stub device (dev:/dev/vgpuN in a VM: the
 * guest driver's window, vgpu_ring.h "Streams"). Both carry the same
 * bytes; the mediator hands either to the VM's CUDA worker.
 *
 * The device is opened once per process, on the first stream, and kept.
 * Each stream is one the guest driver opens for this process in a slot of
 * the device's window (vgpu_uapi.h: the driver posts the descriptors,
 * programs map only their own slots, any number of programs at once, 8
 * streams in all): the description's stream, closed once read, then the
 * calls' stream in the same slot. When the process ends, however it ends,
 * the driver closes its streams and the mediator drops them, so its
 * worker frees what it held.
 *
 * The mediator writes the window's indexes whenever it likes: each is
 * read once per decision and checked (a tail at most a ring ahead).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shim.h"
#include "transport.h"
#include "vgpu_clock.h"
#include "vgpu_ring.h"
#include "vgpu_uapi.h"

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

static struct {
	pthread_mutex_t lock;          /* opening */
	int fd;                        /* the device; -1 until opened */
	int open_rc;                   /* VGPU_OK once opened; the failure, once tried */
	pid_t pid;                     /* the process that opened it (fork) */
} dev = { .lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1, .open_rc = 1 };

static _Atomic uint64_t *u64_at(const struct vgpu_cuda_chan *c, size_t off)
{
	return (_Atomic uint64_t *)(void *)(c->ctl + off);
}

static _Atomic uint32_t *u32_at(const struct vgpu_cuda_chan *c, size_t off)
{
	return (_Atomic uint32_t *)(void *)(c->ctl + off);
}

/* The device, opened. Lock held. */
static int dev_open(const char *path)
{
	if (dev.open_rc != 1)
		return dev.open_rc;
	dev.fd = open(path, O_RDWR | O_CLOEXEC);
	if (dev.fd < 0) {
		dev.open_rc = errno == ENOENT || errno == ENODEV || errno == ENXIO ? VGPU_NOT_FOUND
			      : errno == EACCES || errno == EPERM		    ? VGPU_DENIED
										    : VGPU_IO_ERROR;
		vgpu_cuda_log(true, "%s: %s", path, vgpu_strerror(dev.open_rc));
		return dev.open_rc;
	}
	dev.pid = getpid();
	dev.open_rc = VGPU_OK;
	return VGPU_OK;
}

static void doorbell(void)
{
	uint64_t one = 1;

	if (write(dev.fd, &one, sizeof(one)) < 0) {
		/* EPIPE: the window is gone; the waits see it. */
	}
}

/* A stream of the device at @path into @c: the driver opens it in a slot
 * of the window of its own and we map that slot. */
static int dev_connect(const char *path, struct vgpu_cuda_chan *c)
{
	struct vgpu_stream_req req;
	int rc;

	pthread_mutex_lock(&dev.lock);
	rc = dev_open(path);
	pthread_mutex_unlock(&dev.lock);
	if (rc != VGPU_OK)
		return rc;
	if (ioctl(dev.fd, VGPU_IOC_STREAM_OPEN, &req) != 0) {
		rc = errno == EBUSY	   ? VGPU_BUSY
		     : errno == ENOSPC	   ? VGPU_LIMIT
		     : errno == ETIMEDOUT ? VGPU_TIMEOUT
					   : VGPU_IO_ERROR;
		vgpu_cuda_log(true, "%s: %s", path,
			      errno == EBUSY	? "a program has the device's whole window (vgpu-submit?)"
			      : errno == ENOSPC ? "every stream of the device is taken (8 at once)"
						: strerror(errno));
		return rc;
	}
	void *p = mmap(NULL, req.bytes, PROT_READ | PROT_WRITE, MAP_SHARED, dev.fd, (off_t)req.offset);

	if (p == MAP_FAILED) {
		vgpu_cuda_log(true, "%s: mapping a stream: %s", path, strerror(errno));
		ioctl(dev.fd, VGPU_IOC_STREAM_CLOSE, &req.index);
		return VGPU_IO_ERROR;
	}
	c->fd = -1;
	c->slot = (int)req.index;
	c->ctl = p;
	c->bytes = req.bytes;
	c->ring = req.ring_bytes;
	c->tx = c->ctl + VGPU_STREAM_CTL;
	c->rx = c->tx + c->ring;
	c->tx_tail = c->rx_head = 0;
	return VGPU_OK;
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
		uint32_t index = (uint32_t)c->slot;

		/* The forked child's streams are its parent's. */
		if (dev.pid == getpid())
			ioctl(dev.fd, VGPU_IOC_STREAM_CLOSE, &index);
		munmap(c->ctl, c->bytes);
	}
	*c = (struct vgpu_cuda_chan){ .fd = -1, .slot = -1 };
}

void vgpu_cuda_chan_forked(void)
{
	/* The child's descriptor of the device would keep the parent's
	 * streams open (the driver closes them at the file's last close). */
	if (dev.fd >= 0)
		close(dev.fd);
	dev.fd = -1;
	dev.open_rc = 1;
	pthread_mutex_init(&dev.lock, NULL);
}

void vgpu_cuda_chan_forget(struct vgpu_cuda_chan *c)
{
	/* A stream's mapping is not in the child (the driver maps slots
	 * VM_DONTCOPY): nothing to unmap. */
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
	rc = VGPU_OK;
	if ((out ? atomic_load(u64_at(c, VGPU_STREAM_OFF_TX_HEAD)) == c->tx_tail - c->ring
		 : atomic_load(u64_at(c, VGPU_STREAM_OFF_RX_TAIL)) == c->rx_head) &&
	    !atomic_load(u32_at(c, VGPU_STREAM_OFF_CLOSED))) {
		struct pollfd pfd = { dev.fd, POLLIN, 0 };
		uint64_t n;

		if (poll(&pfd, 1, ms) < 0 && errno != EINTR)
			rc = VGPU_IO_ERROR;
		else if (pfd.revents & (POLLERR | POLLHUP))
			rc = VGPU_IO_ERROR; /* the window is gone, and the stream with it */
		else if ((pfd.revents & POLLIN) && read(dev.fd, &n, sizeof(n)) < 0 && errno == EPIPE)
			rc = VGPU_IO_ERROR;
	}
	atomic_store(u32_at(c, VGPU_STREAM_OFF_WAITING), 0);
	return rc;
}

/* @len bytes into TX. */
static int dev_send(struct vgpu_cuda_chan *c, const uint8_t *p, size_t len, uint64_t deadline_ns)
{
	while (len > 0) {
		uint64_t head = atomic_load(u64_at(c, VGPU_STREAM_OFF_TX_HEAD));
		uint64_t held = c->tx_tail - head;

		if (held > c->ring)
			return VGPU_PROTOCOL;
		if (atomic_load(u32_at(c, VGPU_STREAM_OFF_CLOSED)))
			return VGPU_IO_ERROR;
		if (held == c->ring) {
			int rc = dev_sleep(c, deadline_ns, true);

			if (rc != VGPU_OK)
				return rc;
			continue;
		}
		size_t off = (size_t)(c->tx_tail & (c->ring - 1));
		size_t n = c->ring - held;

		if (n > c->ring - off)
			n = c->ring - off;
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

		if (avail > c->ring)
			return VGPU_PROTOCOL;
		if (avail == 0) {
			/* The host's end closed, and nothing came before it (the
			 * mediator publishes the last bytes, then CLOSED). */
			if (atomic_load(u32_at(c, VGPU_STREAM_OFF_CLOSED)) &&
			    atomic_load(u64_at(c, VGPU_STREAM_OFF_RX_TAIL)) == c->rx_head)
				return VGPU_IO_ERROR;
			if (vgpu_now_ns() < spin_until)
				continue;
			int rc = dev_sleep(c, deadline_ns, false);

			if (rc != VGPU_OK)
				return rc;
			continue;
		}
		size_t off = (size_t)(c->rx_head & (c->ring - 1));
		size_t n = avail < c->ring - off ? (size_t)avail : c->ring - off;

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
