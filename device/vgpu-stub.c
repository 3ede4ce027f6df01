/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vgpu-stub.c - the vgpu-stub PCI device: how a VM learns its vgpu pool,
 * priority and VM id, and (version 1.1) how its guest reaches the GPU:
 * a ring window the guest driver places in its own RAM and registers
 * here, served by the mediator (docs/specs/vgpu-stub.md is the register
 * map; docs/specs/vgpu-stub-1.1.md the design).
 *
 * vendor 0x1AF4, device 0x1111, class 0x1200 (processing accelerator),
 * revision 2. BAR0: 4 KiB of 32-bit registers; BAR1: MSI-X (2 vectors:
 * completions, link and window changes), INTx pin A when MSI-X is off.
 * Properties pool_id (one letter A to Z), priority (0..2) and vm_id (uint32), set by
 * vgpu-qemu-wrapper from the registry (a bad value stops the device from
 * realizing, so QEMU does not start), and mediator (the VM's socket path):
 * without it the device has the identity registers only, as 1.0.
 *
 * With a mediator: the device connects at realize (before QEMU's chroot
 * and privilege drop; vgpu-stub-link.c), reconnects while the mediator is
 * away and registers the guest's window again; the doorbell register is
 * an ioeventfd the mediator reads; the mediator's completion eventfd
 * becomes an interrupt here. The mediator also says the VM's pool and
 * priority (IDENTITY, at each link-up and each change in the registry):
 * POOL_ID and PRIORITY follow them, and the pool_id and priority
 * properties with them, without a restart (the vm_id does not change).
 * Migration is blocked (the GPU work and the mediator's mapping of guest
 * RAM cannot follow the VM).
 *
 * Builds unchanged against QEMU 4.2.1 (XCP-ng 8.2) and 7.2 (Debian 12):
 * vgpu-stub-compat.h holds the differences.
 *
 * Never: abort or assert on anything a guest does. A read of an unknown
 * offset returns 0, a write is ignored, a bad window registration is
 * refused in WIN_STATE, and each is logged as a guest error, at most
 * GUEST_LOG_BURST lines per second per device.
 */
#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/timer.h"
#include "sysemu/cpus.h"
#include "qapi/error.h"
#include "hw/pci/msix.h"
#include "hw/pci/pci.h"
#include "hw/qdev-properties.h"
#include "migration/blocker.h"

#include "vgpu-stub-compat.h"
#include "vgpu-stub-link.h"
#include "vgpu-stub-regs.h"

#define TYPE_VGPU_STUB "vgpu-stub"
#define GUEST_LOG_BURST 10        /* guest-error lines per second per device */
#define RESET_WAIT_MS 2000        /* a reset waits this long for the mediator at most */

VGPU_STUB_DECLARE_TYPE(VGPUStubState, VGPU_STUB, TYPE_VGPU_STUB)

struct VGPUStubState {
	PCIDevice parent_obj;
	MemoryRegion mmio;           /* BAR0 */
	char *pool_id;               /* property: "A" to "Z"; then what the mediator says */
	uint32_t priority;           /* property: 0..2; then what the mediator says */
	uint32_t vm_id;              /* property */
	char *mediator;              /* property: the VM's mediator socket, or NULL */
	int64_t log_window_ms;       /* start of the current rate-limit second */
	unsigned log_count;          /* guest-error lines in it */
	unsigned log_dropped;        /* lines not written in it */

	/* 1.1, with a mediator. */
	bool ring;                   /* the mediator property is set */
	bool msix;                   /* MSI-X set up (else INTx only) */
	EventNotifier doorbell;      /* guest -> mediator (ioeventfd) */
	int complete[2];             /* mediator -> interrupt: a datagram socket pair,
				      * [0] read here, [1] the mediator's (sent, kept
				      * for reconnects); -1 none */
	VGPULink link;
	Error *blocker;
	uint32_t int_status, int_mask;
	uint32_t list_lo, list_hi, extents;
	uint32_t win_state;
	int32_t win_error;
	struct vgpu_dev_window *win; /* registered, or to register (kept for reconnects) */
	uint64_t win_seq;            /* the WINDOW message awaiting its reply; 0 none */
	uint64_t reg_seq;            /* the registration the mediator serves the window under */
	uint64_t reset_seq;          /* a reset's unregistration, until the mediator drained */
	bool held;                   /* the mediator may hold a window of ours: a registration
				      * went out and no answer since says it holds none */
	bool unregistering;
};

/* A guest error, unless this second's budget is spent (the policy of
 * mediator/log.c's vgpu_log_guest, kept here: this file builds inside QEMU). */
static void G_GNUC_PRINTF(2, 3) guest_error(VGPUStubState *s, const char *fmt, ...)
{
	int64_t now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
	char msg[160];
	va_list ap;

	if (!qemu_loglevel_mask(LOG_GUEST_ERROR))
		return; /* not asked for: nothing to count either */
	if (now - s->log_window_ms >= 1000) {
		if (s->log_dropped)
			qemu_log("vgpu-stub: %u guest errors not logged\n", s->log_dropped);
		s->log_window_ms = now;
		s->log_count = 0;
		s->log_dropped = 0;
	}
	if (s->log_count >= GUEST_LOG_BURST) {
		s->log_dropped++;
		return;
	}
	s->log_count++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	qemu_log("vgpu-stub: %s\n", msg);
}

/* ---- interrupts ---- */

static void update_intx(VGPUStubState *s)
{
	PCIDevice *pdev = PCI_DEVICE(s);

	if (!s->msix || !msix_enabled(pdev))
		pci_set_irq(pdev, (s->int_status & ~s->int_mask) != 0);
}

static void raise_int(VGPUStubState *s, uint32_t cause)
{
	PCIDevice *pdev = PCI_DEVICE(s);

	s->int_status |= cause;
	if (s->msix && msix_enabled(pdev))
		msix_notify(pdev, cause == VGPU_STUB_INT_COMPLETE ? 0 : 1);
	else
		update_intx(s);
}

/* The mediator posted completions: one datagram each time, all read. */
static void completed(void *opaque)
{
	VGPUStubState *s = opaque;
	char sig[64];
	bool any = false;

	while (recv(s->complete[0], sig, sizeof(sig), MSG_DONTWAIT) > 0)
		any = true;
	if (any)
		raise_int(s, VGPU_STUB_INT_COMPLETE);
}

/* ---- the window ---- */

static void window_state(VGPUStubState *s, uint32_t state, int32_t error)
{
	s->win_state = state;
	s->win_error = error;
	if (state != VGPU_STUB_WIN_REGISTERING)
		raise_int(s, VGPU_STUB_INT_WINDOW);
}

static void forget_window(VGPUStubState *s)
{
	g_free(s->win);
	s->win = NULL;
	s->win_seq = 0;
	s->reg_seq = 0;
	s->unregistering = false;
}

/* WIN_CTRL register: copy the extent list out of guest RAM once, check
 * it as the mediator will, and send it (or keep it for when the link is
 * up). */
static void register_window(VGPUStubState *s)
{
	uint64_t addr = (uint64_t)s->list_hi << 32 | s->list_lo;
	uint8_t msg[VGPU_PROTO_HEADER_SIZE + VGPU_DEV_MAX_PAYLOAD];
	uint8_t *list;
	struct vgpu_dev_window *w, check;
	struct vgpu_msg_header h;
	int rc;

	if (s->reset_seq) {
		/* The mediator is still answering the requests of the window the
		 * guest had before its reset: the driver tries again (BUSY). */
		forget_window(s);
		window_state(s, VGPU_STUB_WIN_REFUSED, VGPU_BUSY);
		return;
	}
	if (s->extents < 1 || s->extents > VGPU_STUB_WIN_MAX_EXTENTS || (addr & 0xfff)) {
		guest_error(s, "window list at 0x%" PRIx64 " with %u extents: refused", addr,
			    s->extents);
		forget_window(s);
		window_state(s, VGPU_STUB_WIN_REFUSED, VGPU_INVALID_PARAM);
		return;
	}
	list = g_malloc(s->extents * VGPU_STUB_WIN_EXTENT_SIZE);
	if (pci_dma_read(PCI_DEVICE(s), addr, list, s->extents * VGPU_STUB_WIN_EXTENT_SIZE)) {
		guest_error(s, "window list at 0x%" PRIx64 " unreadable (bus mastering off?)",
			    addr);
		g_free(list);
		forget_window(s);
		window_state(s, VGPU_STUB_WIN_REFUSED, VGPU_IO_ERROR);
		return;
	}
	w = g_new0(struct vgpu_dev_window, 1);
	w->action = VGPU_DEV_REGISTER;
	w->n_extents = s->extents;
	for (uint32_t i = 0; i < s->extents; i++) {
		w->extents[i].gpa = ldq_le_p(list + i * VGPU_STUB_WIN_EXTENT_SIZE);
		w->extents[i].len = ldq_le_p(list + i * VGPU_STUB_WIN_EXTENT_SIZE + 8);
		w->bytes += w->extents[i].len;
	}
	g_free(list);
	/* The mediator's own checks, here first: a bad list never leaves. */
	vgpu_dev_encode_window(0, w, msg);
	rc = vgpu_proto_decode_header(msg, &vgpu_proto_default_limits, &h);
	if (rc == VGPU_OK)
		rc = vgpu_dev_parse_window(msg, &h, msg + VGPU_PROTO_HEADER_SIZE, &check);
	if (rc != VGPU_OK) {
		guest_error(s, "window list refused (error %d): extents not whole pages, "
			    "overlapping, or not a window's size", rc);
		g_free(w);
		forget_window(s);
		window_state(s, VGPU_STUB_WIN_REFUSED, rc);
		return;
	}
	forget_window(s);
	s->win = w;
	window_state(s, VGPU_STUB_WIN_REGISTERING, 0);
	s->win_seq = vgpu_link_send_window(&s->link, w); /* 0: sent once the link is up */
	s->held |= s->win_seq != 0;
}

static void unregister_window(VGPUStubState *s)
{
	struct vgpu_dev_window un = { .action = VGPU_DEV_UNREGISTER };

	if (!s->held || !s->link.up) {
		forget_window(s); /* nothing registered with a mediator */
		window_state(s, VGPU_STUB_WIN_NONE, 0);
		return;
	}
	s->unregistering = true;
	window_state(s, VGPU_STUB_WIN_REGISTERING, 0);
	s->win_seq = vgpu_link_send_window(&s->link, &un);
	if (!s->win_seq) { /* the link went down meanwhile */
		forget_window(s);
		window_state(s, VGPU_STUB_WIN_NONE, 0);
	}
}

static void link_changed(void *opaque, bool up)
{
	VGPUStubState *s = opaque;

	s->win_seq = 0;
	s->reg_seq = 0;
	s->reset_seq = 0; /* a mediator that drained, or one that is gone */
	s->held = false;  /* a new session holds nothing; a lost one released it all */
	if (!up && s->unregistering) {
		forget_window(s); /* the mediator that had it is gone */
		window_state(s, VGPU_STUB_WIN_NONE, 0);
	} else if (!up && s->win) {
		window_state(s, VGPU_STUB_WIN_REGISTERING, 0); /* again once it is back */
	} else if (up && s->win) {
		s->win_seq = vgpu_link_send_window(&s->link, s->win);
		s->held = s->win_seq != 0;
	}
	raise_int(s, VGPU_STUB_INT_LINK);
}

static void window_reply(void *opaque, uint64_t seq, int32_t status, uint64_t bytes)
{
	VGPUStubState *s = opaque;

	(void)bytes;
	if (s->reset_seq && seq == s->reset_seq) { /* drained: the guest may register again */
		s->reset_seq = 0;
		s->held = false;
		return;
	}
	if (seq == s->reg_seq && !s->win_seq && status != VGPU_OK) {
		/* Unasked: the mediator dropped the window (the guest broke the
		 * ring's rules). Only for the registration being served. */
		qemu_log_mask(LOG_GUEST_ERROR, "vgpu-stub: the mediator dropped the window (error %d)\n",
			      status);
		s->held = false;
		forget_window(s);
		window_state(s, VGPU_STUB_WIN_REFUSED, status);
		return;
	}
	if (seq != s->win_seq)
		return; /* for a registration since replaced */
	s->win_seq = 0;
	if (s->unregistering) {
		s->held = false;
		forget_window(s);
		window_state(s, VGPU_STUB_WIN_NONE, 0);
	} else if (status == VGPU_OK) {
		s->reg_seq = seq;
		window_state(s, VGPU_STUB_WIN_REGISTERED, 0);
	} else {
		/* Refused: a replaced window was closed first, so none is held,
		 * unless BUSY (something still under way there). */
		s->held &= status == VGPU_BUSY;
		forget_window(s);
		window_state(s, VGPU_STUB_WIN_REFUSED, status);
	}
}

/* The mediator says the VM's pool and priority (checked by the link):
 * the registers show them from now on. Said at every link-up, so only a
 * change is logged and raises the identity interrupt. */
static void identity(void *opaque, const struct vgpu_dev_identity *id)
{
	VGPUStubState *s = opaque;
	char old_pool = s->pool_id[0];
	uint32_t old_priority = s->priority;

	if (id->pool == (uint8_t)old_pool && id->priority == old_priority)
		return;
	g_free(s->pool_id);
	s->pool_id = g_strdup_printf("%c", (char)id->pool);
	s->priority = id->priority;
	info_report("vgpu-stub: pool %c, priority %" PRIu32 " (was %c, %" PRIu32 "), as the "
		    "mediator says", s->pool_id[0], s->priority, old_pool, old_priority);
	raise_int(s, VGPU_STUB_INT_IDENTITY);
}

static const VGPULinkOps link_ops = {
	.link_changed = link_changed,
	.window_reply = window_reply,
	.identity = identity,
};

/* ---- registers ---- */

static uint64_t vgpu_stub_read(void *opaque, hwaddr addr, unsigned size)
{
	VGPUStubState *s = opaque;

	switch (addr) {
	case VGPU_STUB_REG_MAGIC:
		return VGPU_STUB_MAGIC_VALUE;
	case VGPU_STUB_REG_VERSION:
		return VGPU_STUB_VERSION_VALUE;
	case VGPU_STUB_REG_POOL_ID:
		return (uint8_t)s->pool_id[0];
	case VGPU_STUB_REG_PRIORITY:
		return s->priority;
	case VGPU_STUB_REG_VM_ID:
		return s->vm_id;
	case VGPU_STUB_REG_STATUS:
		return VGPU_STUB_STATUS_READY | (s->link.up ? VGPU_STUB_STATUS_LINK : 0) |
		       (s->win_state == VGPU_STUB_WIN_REGISTERED ? VGPU_STUB_STATUS_WINDOW : 0);
	case VGPU_STUB_REG_CAPABILITIES:
		return s->ring ? VGPU_STUB_CAP_RING : 0;
	case VGPU_STUB_REG_INT_STATUS:
		return s->int_status;
	case VGPU_STUB_REG_INT_MASK:
		return s->int_mask;
	case VGPU_STUB_REG_WIN_LIST_LO:
		return s->list_lo;
	case VGPU_STUB_REG_WIN_LIST_HI:
		return s->list_hi;
	case VGPU_STUB_REG_WIN_EXTENTS:
		return s->extents;
	case VGPU_STUB_REG_WIN_STATE:
		return s->win_state;
	case VGPU_STUB_REG_WIN_ERROR:
		return (uint32_t)s->win_error;
	default:
		guest_error(s, "read of %s register 0x%03" HWADDR_PRIx " (size %u): 0",
			    addr == VGPU_STUB_REG_DOORBELL || addr == VGPU_STUB_REG_WIN_CTRL
				    ? "write-only" : "unknown", addr, size);
		return 0;
	}
}

static void vgpu_stub_write(void *opaque, hwaddr addr, uint64_t val, unsigned size)
{
	VGPUStubState *s = opaque;

	if (!s->ring || addr < VGPU_STUB_REG_DOORBELL) {
		guest_error(s, "write of 0x%" PRIx64 " to %s register 0x%03" HWADDR_PRIx
			    " (size %u) ignored", val,
			    addr <= VGPU_STUB_REG_CAPABILITIES ? "read-only"
			    : !s->ring ? "(no mediator) ring" : "unknown", addr, size);
		return;
	}
	switch (addr) {
	case VGPU_STUB_REG_INT_STATUS:
		s->int_status &= ~(uint32_t)val;
		update_intx(s);
		return;
	case VGPU_STUB_REG_INT_MASK:
		s->int_mask = (uint32_t)val & VGPU_STUB_INT_ALL;
		update_intx(s);
		return;
	case VGPU_STUB_REG_WIN_LIST_LO:
		s->list_lo = (uint32_t)val;
		return;
	case VGPU_STUB_REG_WIN_LIST_HI:
		s->list_hi = (uint32_t)val;
		return;
	case VGPU_STUB_REG_WIN_EXTENTS:
		s->extents = (uint32_t)val;
		return;
	case VGPU_STUB_REG_WIN_CTRL:
		if (s->win_state == VGPU_STUB_WIN_REGISTERING && s->link.up) {
			guest_error(s, "WIN_CTRL %" PRIu64 " while the last one is pending: ignored",
				    val);
		} else if (val == VGPU_STUB_WIN_CTRL_REGISTER) {
			register_window(s);
		} else if (val == VGPU_STUB_WIN_CTRL_UNREGISTER) {
			unregister_window(s);
		} else {
			guest_error(s, "WIN_CTRL %" PRIu64 ": no such command", val);
		}
		return;
	default:
		/* DOORBELL never arrives here: the ioeventfd takes it. */
		guest_error(s, "write of 0x%" PRIx64 " to %s register 0x%03" HWADDR_PRIx
			    " (size %u) ignored", val,
			    addr == VGPU_STUB_REG_WIN_STATE || addr == VGPU_STUB_REG_WIN_ERROR
				    ? "read-only" : "unknown", addr, size);
	}
}

static const MemoryRegionOps vgpu_stub_mmio_ops = {
	.read = vgpu_stub_read,
	.write = vgpu_stub_write,
	.endianness = DEVICE_LITTLE_ENDIAN,
	.valid = { .min_access_size = 4, .max_access_size = 4, .unaligned = false },
	.impl = { .min_access_size = 4, .max_access_size = 4 },
};

/* ---- life ---- */

static void ring_realize(VGPUStubState *s, Error **errp)
{
	PCIDevice *pdev = PCI_DEVICE(s);

	error_setg(&s->blocker, "vgpu-stub: the VM's GPU work and the mediator's mapping of "
		   "its RAM cannot migrate");
	if (migrate_add_blocker(s->blocker, errp) < 0) {
		error_free(s->blocker);
		s->blocker = NULL;
		return;
	}
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s->complete) != 0) {
		error_setg_errno(errp, errno, "vgpu-stub: cannot make its completion sockets");
		goto fail;
	}
	if (event_notifier_init(&s->doorbell, 0) < 0) {
		error_setg(errp, "vgpu-stub: cannot make its doorbell eventfd");
		close(s->complete[0]);
		close(s->complete[1]);
		goto fail;
	}
	memory_region_add_eventfd(&s->mmio, VGPU_STUB_REG_DOORBELL, 4, false, 0, &s->doorbell);
	qemu_set_fd_handler(s->complete[0], completed, NULL, s);
	/* MSI-X where the machine has it; INTx otherwise. */
	s->msix = msix_init_exclusive_bar(pdev, VGPU_STUB_MSIX_VECTORS, VGPU_STUB_MSIX_BAR,
					  NULL) == 0;
	for (unsigned v = 0; s->msix && v < VGPU_STUB_MSIX_VECTORS; v++)
		vgpu_msix_vector_use(pdev, v);
	vgpu_link_start(&s->link, s->mediator, event_notifier_get_fd(&s->doorbell),
			s->complete[1], &link_ops, s);
	return;
fail: /* exit is not called for a device that did not realize */
	migrate_del_blocker(s->blocker);
	error_free(s->blocker);
	s->blocker = NULL;
}

static void vgpu_stub_realize(PCIDevice *pdev, Error **errp)
{
	VGPUStubState *s = VGPU_STUB(pdev);

	if (!s->pool_id || s->pool_id[0] < 'A' || s->pool_id[0] > 'Z' || s->pool_id[1]) {
		error_setg(errp, "vgpu-stub: pool_id must be one letter A to Z, not '%s'",
			   s->pool_id ? s->pool_id : "(unset)");
		return;
	}
	if (s->priority > 2) {
		error_setg(errp, "vgpu-stub: priority must be 0, 1 or 2, not %" PRIu32,
			   s->priority);
		return;
	}
	memory_region_init_io(&s->mmio, OBJECT(s), &vgpu_stub_mmio_ops, s, "vgpu-stub-mmio",
			      VGPU_STUB_BAR0_SIZE);
	pci_register_bar(pdev, 0, PCI_BASE_ADDRESS_SPACE_MEMORY, &s->mmio);
	pdev->config[PCI_INTERRUPT_PIN] = 1; /* INTA# */
	s->ring = s->mediator && s->mediator[0];
	if (s->ring)
		ring_realize(s, errp);
}

static void vgpu_stub_exit(PCIDevice *pdev)
{
	VGPUStubState *s = VGPU_STUB(pdev);

	if (!s->ring)
		return;
	vgpu_link_stop(&s->link);
	memory_region_del_eventfd(&s->mmio, VGPU_STUB_REG_DOORBELL, 4, false, 0, &s->doorbell);
	qemu_set_fd_handler(s->complete[0], NULL, NULL, NULL);
	event_notifier_cleanup(&s->doorbell);
	close(s->complete[0]);
	close(s->complete[1]);
	s->complete[0] = s->complete[1] = -1;
	if (s->msix)
		msix_uninit_exclusive_bar(pdev);
	if (s->blocker) {
		migrate_del_blocker(s->blocker);
		error_free(s->blocker);
		s->blocker = NULL;
	}
	forget_window(s);
}

/* A reset while the mediator may hold a window of ours: unregister it and
 * wait until the mediator answers, which it does once no request of the
 * window runs any more (it never refuses an unregistration): the rebooted
 * guest never finds the mediator writing into memory it reuses. A system
 * reset runs with the vCPUs paused; it waits RESET_WAIT_MS at most. A bus
 * reset the guest itself asks for runs on its vCPU thread with the BQL
 * held and the other vCPUs running: not waited for there (a guest could
 * freeze QEMU's main loop with it). In both cases registrations are
 * refused BUSY until the answer comes. */
static void drain_for_reset(VGPUStubState *s)
{
	struct vgpu_dev_window un = { .action = VGPU_DEV_UNREGISTER };
	int64_t start = qemu_clock_get_ms(QEMU_CLOCK_REALTIME), left;

	forget_window(s); /* answers to its messages are stale from here on */
	s->reset_seq = vgpu_link_send_window(&s->link, &un);
	if (!s->reset_seq || qemu_in_vcpu_thread())
		return;
	while (s->reset_seq &&
	       (left = start + RESET_WAIT_MS - qemu_clock_get_ms(QEMU_CLOCK_REALTIME)) > 0)
		vgpu_link_wait(&s->link, (int)left);
	if (!s->link.up)
		return; /* lost meanwhile (and said so); reset_seq cleared */
	if (s->reset_seq)
		warn_report("vgpu-stub: reset: the mediator did not release the guest's window "
			    "within %d ms; the guest restarts regardless", RESET_WAIT_MS);
	else
		info_report("vgpu-stub: reset: the mediator released the window in %" PRId64 " ms",
			    qemu_clock_get_ms(QEMU_CLOCK_REALTIME) - start);
}

/* A reset (the guest rebooting): its window goes, the registers start over. */
static void vgpu_stub_reset(DeviceState *dev)
{
	VGPUStubState *s = VGPU_STUB(dev);

	if (s->held && s->link.up && !s->reset_seq)
		drain_for_reset(s);
	forget_window(s);
	s->win_state = VGPU_STUB_WIN_NONE;
	s->win_error = 0;
	s->int_status = s->int_mask = 0;
	s->list_lo = s->list_hi = s->extents = 0;
	if (s->ring) {
		if (s->msix)
			msix_reset(PCI_DEVICE(s));
		update_intx(s);
	}
}

static Property vgpu_stub_properties[] = {
	DEFINE_PROP_STRING("pool_id", VGPUStubState, pool_id),
	DEFINE_PROP_UINT32("priority", VGPUStubState, priority, 0),
	DEFINE_PROP_UINT32("vm_id", VGPUStubState, vm_id, 0),
	DEFINE_PROP_STRING("mediator", VGPUStubState, mediator),
	DEFINE_PROP_END_OF_LIST(),
};

static void vgpu_stub_class_init(ObjectClass *klass, VGPU_CLASS_DATA *data)
{
	DeviceClass *dc = DEVICE_CLASS(klass);
	PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

	k->realize = vgpu_stub_realize;
	k->exit = vgpu_stub_exit;
	k->vendor_id = VGPU_STUB_VENDOR_ID;
	k->device_id = VGPU_STUB_DEVICE_ID;
	k->class_id = VGPU_STUB_CLASS;
	k->revision = VGPU_STUB_REVISION;
	dc->desc = "vgpu mediated GPU access";
	dc->reset = vgpu_stub_reset;
	set_bit(DEVICE_CATEGORY_MISC, dc->categories);
	device_class_set_props(dc, vgpu_stub_properties);
}

static const TypeInfo vgpu_stub_info = {
	.name = TYPE_VGPU_STUB,
	.parent = TYPE_PCI_DEVICE,
	.instance_size = sizeof(VGPUStubState),
	.class_init = vgpu_stub_class_init,
	.interfaces = (InterfaceInfo[]){
		{ INTERFACE_CONVENTIONAL_PCI_DEVICE },
		{},
	},
};

static void vgpu_stub_register_types(void)
{
	type_register_static(&vgpu_stub_info);
}

type_init(vgpu_stub_register_types)
