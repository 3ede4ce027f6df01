/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vgpu-stub-link.h - the vgpu-stub device's connection to the mediator
 * (docs/specs/vgpu-stub.md, "The device and the mediator"): connect to
 * the VM's socket, introduce the device (DEVICE: the guest RAM's memfds
 * and their place in guest-physical space under KVM and TCG, the domain id
 * under Xen, the doorbell and completion eventfds), send window
 * (un)registrations, read the replies and the VM's identity (IDENTITY:
 * its pool and priority, at link-up and at each change), and reconnect
 * once a second while the mediator is away. Everything runs in QEMU's
 * main loop.
 */
#ifndef VGPU_STUB_LINK_H
#define VGPU_STUB_LINK_H

#include "exec/memory.h"
#include "qemu/timer.h"

#include "vgpu_device.h"

#define VGPU_LINK_MAX_SECTIONS 32   /* guest RAM sections tracked */

typedef struct VGPULink VGPULink;

typedef struct VGPULinkOps {
	/* The mediator accepted the device (@up), or the connection is gone. */
	void (*link_changed)(void *opaque, bool up);
	/* A reply to a WINDOW message (@seq), or an unasked one (@seq of the
	 * window's registration again, @status an error: the mediator dropped
	 * the window). */
	void (*window_reply)(void *opaque, uint64_t seq, int32_t status, uint64_t bytes);
	/* The VM's pool and priority as the registry has them now (checked:
	 * a letter A to Z, 0 to 2); sent after each link-up and each change. */
	void (*identity)(void *opaque, const struct vgpu_dev_identity *id);
} VGPULinkOps;

struct VGPULink {
	char *path;                  /* the mediator's socket for this VM */
	char *dev_path;              /* ours, where a restarted mediator dials: path.dev */
	int listen_fd;               /* bound at start (as root, before any chroot); -1 none */
	int fd;                      /* -1 while not connected */
	bool up;                     /* DEVICE accepted */
	int doorbell_fd, complete_fd; /* the doorbell eventfd, the mediator's end of the
				       * completion socket pair (borrowed) */
	QEMUTimer *retry;            /* reconnects while the mediator is away */
	uint64_t seq;                /* last message's sequence number */
	uint64_t hello_seq;
	uint8_t in[VGPU_DEV_REPLY_MSG]; /* a reply or an IDENTITY (one size) being read */
	size_t in_got;
	MemoryListener listener;     /* guest RAM with an fd (KVM, TCG) */
	bool listening;
	unsigned n_sections;
	struct {
		uint64_t gpa, size, fd_offset;
		int fd;
	} sections[VGPU_LINK_MAX_SECTIONS];
	bool failed_logged;          /* one line per outage, not one per second */
	const VGPULinkOps *ops;
	void *opaque;
};

/* Start: watch guest RAM, listen on path.dev for a mediator dialing back,
 * connect now (realize: before QEMU's chroot and privilege drop) and
 * from then on whenever the connection is lost. */
void vgpu_link_start(VGPULink *l, const char *path, int doorbell_fd, int complete_fd,
		     const VGPULinkOps *ops, void *opaque);
void vgpu_link_stop(VGPULink *l);
/* Send a WINDOW message; its sequence number (0: not sent, the link is down). */
uint64_t vgpu_link_send_window(VGPULink *l, const struct vgpu_dev_window *w);
/* Wait up to @ms for the mediator's next message and handle it (the ops
 * are called as from the main loop): for a device reset, which must not
 * return before the mediator is done with the guest's memory. */
void vgpu_link_wait(VGPULink *l, int ms);

#endif
