/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vgpu-stub-link.c - the vgpu-stub device's connection to the mediator
 * (vgpu-stub-link.h). The messages are the project's (vgpu_device.h,
 * linked in from protocol/).
 *
 * Guest RAM under KVM and TCG: a memory listener keeps the sections of
 * guest-physical space that are shared RAM with an fd (the VM must run
 * with memory-backend-memfd,share=on); the DEVICE message carries the
 * largest of them, merged where they continue one another, with their
 * fds. Under Xen (QEMU started with -xen-domid) it carries the domain id
 * and no fds: the mediator maps the frames itself.
 *
 * Reconnecting: the device connects to the mediator's socket at start
 * and, while the link is down, once a second. Under XCP-ng QEMU chroots
 * itself and drops to a per-domain uid after start, so that path may be
 * out of its reach by the time a restarted mediator is back. The device
 * therefore also listens, on the socket path plus ".dev", bound at start
 * while QEMU is still root (mode 0600: only root, the mediator, can dial
 * it); the listening descriptor outlives the chroot, and a mediator that
 * dials it gets the DEVICE message as if the device had connected. One
 * connection at a time: a second one is closed at once.
 *
 * What the mediator sends is all one size: replies to the device's
 * messages, and IDENTITY (the VM's pool and priority, unasked, after the
 * DEVICE reply and at each change in the registry).
 *
 * Never: block QEMU's main loop (the sockets are non-blocking), or trust
 * a message that does not parse (the connection is dropped and made
 * again).
 */
#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "exec/address-spaces.h"
#include "exec/memory.h"
#include "hw/xen/xen.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "vgpu-stub-link.h"

#define RETRY_MS 1000

QEMU_BUILD_BUG_ON(VGPU_DEV_IDENTITY_MSG != VGPU_DEV_REPLY_MSG);

static void link_retry(void *opaque);

/* ---- guest RAM ---- */

static void section_add(MemoryListener *listener, MemoryRegionSection *section)
{
	VGPULink *l = container_of(listener, VGPULink, listener);
	MemoryRegion *mr = section->mr;
	int fd;

	if (!memory_region_is_ram(mr) || memory_region_is_rom(mr) || !mr->ram_block ||
	    !qemu_ram_is_shared(mr->ram_block))
		return;
	fd = memory_region_get_fd(mr);
	if (fd < 0 || l->n_sections >= VGPU_LINK_MAX_SECTIONS)
		return;
	l->sections[l->n_sections].gpa = section->offset_within_address_space;
	l->sections[l->n_sections].size = int128_get64(section->size);
	l->sections[l->n_sections].fd_offset = section->offset_within_region;
	l->sections[l->n_sections].fd = fd;
	l->n_sections++;
}

static void section_del(MemoryListener *listener, MemoryRegionSection *section)
{
	VGPULink *l = container_of(listener, VGPULink, listener);

	for (unsigned i = 0; i < l->n_sections; i++) {
		if (l->sections[i].gpa == section->offset_within_address_space &&
		    l->sections[i].size == int128_get64(section->size)) {
			l->sections[i] = l->sections[--l->n_sections];
			return;
		}
	}
}

/* Sort @n regions by guest-physical address, their fds with them (a few:
 * insertion sort). */
static void sort_by_gpa(struct vgpu_dev_region *r, int *fd, unsigned n)
{
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && r[j].gpa < r[j - 1].gpa; j--) {
			struct vgpu_dev_region t = r[j];
			int tf = fd[j];

			r[j] = r[j - 1];
			fd[j] = fd[j - 1];
			r[j - 1] = t;
			fd[j - 1] = tf;
		}
}

/* The DEVICE message's regions (and their fds): sections merged where one
 * continues another in both spaces, whole pages only, the largest
 * VGPU_DEV_MAX_REGIONS of them. false when there is none. */
static bool ram_regions(VGPULink *l, struct vgpu_dev_hello *h, int fds[VGPU_DEV_MAX_REGIONS])
{
	struct vgpu_dev_region r[VGPU_LINK_MAX_SECTIONS];
	int rfd[VGPU_LINK_MAX_SECTIONS];
	unsigned n = 0;

	for (unsigned i = 0; i < l->n_sections; i++) {
		r[n] = (struct vgpu_dev_region){ l->sections[i].gpa, l->sections[i].size,
						 l->sections[i].fd_offset };
		rfd[n++] = l->sections[i].fd;
	}
	/* By address, then neighbours merged. */
	sort_by_gpa(r, rfd, n);
	unsigned m = 0;
	for (unsigned i = 0; i < n; i++) {
		if (m && rfd[m - 1] == rfd[i] && r[m - 1].gpa + r[m - 1].size == r[i].gpa &&
		    r[m - 1].fd_offset + r[m - 1].size == r[i].fd_offset) {
			r[m - 1].size += r[i].size;
			continue;
		}
		r[m] = r[i];
		rfd[m++] = rfd[i];
	}
	/* Whole pages (the mediator maps pages); the largest first. */
	h->n_regions = 0;
	while (h->n_regions < VGPU_DEV_MAX_REGIONS) {
		unsigned best = m;

		for (unsigned i = 0; i < m; i++) {
			uint64_t head = -r[i].gpa & 0xfff;

			if (r[i].size <= head + 0x1000 || (r[i].fd_offset + head) & 0xfff)
				continue;
			if (best == m || r[i].size > r[best].size)
				best = i;
		}
		if (best == m)
			break;
		uint64_t head = -r[best].gpa & 0xfff;
		h->regions[h->n_regions] = (struct vgpu_dev_region){
			r[best].gpa + head, (r[best].size - head) & ~0xfffull, r[best].fd_offset + head };
		fds[h->n_regions++] = rfd[best];
		r[best].size = 0;
	}
	sort_by_gpa(h->regions, fds, h->n_regions);
	return h->n_regions > 0;
}

/* ---- the connection ---- */

static void disconnect(VGPULink *l)
{
	bool was_up = l->up;

	if (l->fd >= 0) {
		qemu_set_fd_handler(l->fd, NULL, NULL, NULL);
		close(l->fd);
	}
	l->fd = -1;
	l->up = false;
	l->in_got = 0;
	if (was_up) {
		warn_report("vgpu-stub: lost the mediator (%s); reconnecting", l->path);
		l->ops->link_changed(l->opaque, false);
	}
	timer_mod(l->retry, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + RETRY_MS);
}

/* An IDENTITY (header @h decoded): only on a link that is up. */
static void handle_identity(VGPULink *l, const struct vgpu_msg_header *h)
{
	struct vgpu_dev_identity id;
	int rc = vgpu_dev_parse_identity(l->in, h, l->in + VGPU_PROTO_HEADER_SIZE, &id);

	if (rc != VGPU_OK || !l->up) {
		warn_report("vgpu-stub: %s identity message from the mediator (error %d); "
			    "reconnecting", rc != VGPU_OK ? "a malformed" : "an early", rc);
		disconnect(l);
		return;
	}
	l->ops->identity(l->opaque, &id);
}

/* A whole message in l->in: an IDENTITY or a reply. */
static void handle_message(VGPULink *l)
{
	struct vgpu_msg_header h;
	uint16_t answered;
	int32_t status;
	uint64_t window;
	int rc = vgpu_proto_decode_header(l->in, &vgpu_proto_default_limits, &h);

	if (rc == VGPU_OK && h.type == VGPU_MSG_IDENTITY) {
		handle_identity(l, &h);
		return;
	}
	if (rc != VGPU_OK || !vgpu_dev_header_ok(&h, VGPU_MSG_DEVICE_REPLY) ||
	    vgpu_dev_parse_reply(l->in, &h, l->in + VGPU_PROTO_HEADER_SIZE, &answered, &status,
				 &window) != VGPU_OK) {
		warn_report("vgpu-stub: a malformed reply from the mediator; reconnecting");
		disconnect(l);
		return;
	}
	if (answered == VGPU_MSG_DEVICE) {
		if (h.request_id != l->hello_seq || l->up) {
			disconnect(l);
		} else if (status != VGPU_OK) {
			warn_report("vgpu-stub: the mediator refused the device (%s, error %d)",
				    l->path, status);
			disconnect(l);
		} else {
			l->up = true;
			l->failed_logged = false;
			info_report("vgpu-stub: connected to the mediator (%s)", l->path);
			l->ops->link_changed(l->opaque, true);
		}
		return;
	}
	if (l->up)
		l->ops->window_reply(l->opaque, h.request_id, status, window);
}

static void link_readable(void *opaque)
{
	VGPULink *l = opaque;

	while (l->fd >= 0) {
		ssize_t n = recv(l->fd, l->in + l->in_got, sizeof(l->in) - l->in_got, 0);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			disconnect(l);
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		l->in_got += (size_t)n;
		if (l->in_got == sizeof(l->in)) {
			l->in_got = 0;
			handle_message(l);
		}
	}
}

/* Send DEVICE on @fd (connected, non-blocking; taken over) and wait for
 * the answer there. false when it cannot be sent now. */
static bool start_session(VGPULink *l, int fd)
{
	struct vgpu_dev_hello hello = { .version = VGPU_DEV_VERSION };
	int fds[VGPU_DEV_MAX_REGIONS + 2];
	unsigned n_fds = 0;
	uint8_t msg[VGPU_PROTO_HEADER_SIZE + VGPU_DEV_MAX_PAYLOAD];
	union {
		char buf[CMSG_SPACE(sizeof(fds))];
		struct cmsghdr align;
	} ctl;

	if (xen_domid != 0) {
		hello.memory = VGPU_DEV_MEM_XEN;
		hello.domid = xen_domid;
	} else {
		hello.memory = VGPU_DEV_MEM_MEMFD;
		if (!ram_regions(l, &hello, fds)) {
			if (!l->failed_logged)
				warn_report("vgpu-stub: guest RAM is not shared memory with an fd: run "
					    "the VM with -object memory-backend-memfd,share=on");
			l->failed_logged = true;
			close(fd);
			return false;
		}
		n_fds = hello.n_regions;
	}
	fds[n_fds++] = l->doorbell_fd;
	fds[n_fds++] = l->complete_fd;
	l->hello_seq = ++l->seq;
	size_t len = vgpu_dev_encode_hello(l->hello_seq, &hello, msg);
	struct iovec iov = { .iov_base = msg, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = CMSG_SPACE(n_fds * sizeof(int)) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	memset(ctl.buf, 0, sizeof(ctl.buf));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, n_fds * sizeof(int));
	/* A fresh socket has room for this small message; if not, later. */
	if (sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)len) {
		close(fd);
		return false;
	}
	l->fd = fd;
	l->in_got = 0;
	qemu_set_fd_handler(fd, link_readable, NULL, l);
	return true;
}

/* Connect and send DEVICE; false (logged once per outage) when not now. */
static bool try_connect(VGPULink *l)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(l->path) >= sizeof(addr.sun_path))
		return false;
	memcpy(addr.sun_path, l->path, strlen(l->path) + 1);
	/* Non-blocking from the start: with the mediator's backlog full (it is
	 * stalled, or restarting) connect() says EAGAIN instead of stopping
	 * QEMU's main loop; the timer tries again. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		if (!l->failed_logged)
			warn_report("vgpu-stub: cannot reach the mediator at %s: %s; retrying every "
				    "%d ms%s", l->path, strerror(errno), RETRY_MS,
				    l->listen_fd >= 0 ? " (and it may dial back)" : "");
		l->failed_logged = true;
		if (fd >= 0)
			close(fd);
		return false;
	}
	return start_session(l, fd);
}

/* A mediator dials back (see the top): the connection becomes the link,
 * unless there is one. */
static void link_accept(void *opaque)
{
	VGPULink *l = opaque;
	int fd = accept4(l->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (l->fd >= 0) { /* connected already (or saying DEVICE): one link at a time */
		close(fd);
		return;
	}
	if (start_session(l, fd))
		info_report("vgpu-stub: the mediator dialed back (%s)", l->dev_path);
}

/* Listen on dev_path (QEMU is still root: realize). Without it the device
 * reconnects only by itself, which a chroot may prevent. */
static void link_listen(VGPULink *l)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	l->listen_fd = -1;
	l->dev_path = g_strdup_printf("%s.dev", l->path);
	if (strlen(l->dev_path) >= sizeof(addr.sun_path)) {
		warn_report("vgpu-stub: %s: path too long to listen on; a restarted mediator "
			    "cannot dial back", l->dev_path);
		return;
	}
	memcpy(addr.sun_path, l->dev_path, strlen(l->dev_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd >= 0) {
		unlink(l->dev_path); /* an earlier QEMU's for this VM */
		if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
		    chmod(l->dev_path, 0600) == 0 && listen(fd, 1) == 0) {
			l->listen_fd = fd;
			qemu_set_fd_handler(fd, link_accept, NULL, l);
			return;
		}
		close(fd);
	}
	warn_report("vgpu-stub: cannot listen on %s: %s; a restarted mediator cannot dial back",
		    l->dev_path, strerror(errno));
}

static void link_retry(void *opaque)
{
	VGPULink *l = opaque;

	if (l->fd < 0 && !try_connect(l))
		timer_mod(l->retry, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + RETRY_MS);
}

void vgpu_link_start(VGPULink *l, const char *path, int doorbell_fd, int complete_fd,
		     const VGPULinkOps *ops, void *opaque)
{
	l->path = g_strdup(path);
	l->fd = -1;
	l->doorbell_fd = doorbell_fd;
	l->complete_fd = complete_fd;
	l->ops = ops;
	l->opaque = opaque;
	l->retry = timer_new_ms(QEMU_CLOCK_REALTIME, link_retry, l);
	link_listen(l);
	if (xen_domid == 0) {
		l->listener = (MemoryListener){ .region_add = section_add,
						.region_del = section_del,
						.priority = 10 };
		memory_listener_register(&l->listener, &address_space_memory);
		l->listening = true;
	}
	link_retry(l);
}

void vgpu_link_stop(VGPULink *l)
{
	if (l->fd >= 0) {
		qemu_set_fd_handler(l->fd, NULL, NULL, NULL);
		close(l->fd);
		l->fd = -1;
	}
	if (l->retry) {
		timer_free(l->retry);
		l->retry = NULL;
	}
	if (l->listen_fd >= 0) {
		qemu_set_fd_handler(l->listen_fd, NULL, NULL, NULL);
		close(l->listen_fd);
		unlink(l->dev_path); /* fails harmlessly inside a chroot */
		l->listen_fd = -1;
	}
	g_free(l->dev_path);
	l->dev_path = NULL;
	if (l->listening)
		memory_listener_unregister(&l->listener);
	l->listening = false;
	g_free(l->path);
	l->path = NULL;
}

uint64_t vgpu_link_send_window(VGPULink *l, const struct vgpu_dev_window *w)
{
	uint8_t msg[VGPU_PROTO_HEADER_SIZE + VGPU_DEV_MAX_PAYLOAD];
	uint64_t seq;
	size_t len;

	if (!l->up)
		return 0;
	seq = ++l->seq;
	len = vgpu_dev_encode_window(seq, w, msg);
	/* Small, and the mediator reads its devices promptly: a socket too
	 * full for it means the mediator is stuck; start over. */
	if (send(l->fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)len) {
		disconnect(l);
		return 0;
	}
	return seq;
}

void vgpu_link_wait(VGPULink *l, int ms)
{
	struct pollfd p = { .fd = l->fd, .events = POLLIN };

	if (l->fd >= 0 && poll(&p, 1, ms) > 0)
		link_readable(l);
}
