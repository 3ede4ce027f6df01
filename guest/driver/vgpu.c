// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vgpu.c - the Linux guest driver of the vgpu-stub PCI device (1af4:1111):
 * it allocates the ring window in guest RAM, registers it with the device
 * (which hands it to the mediator), and gives programs /dev/vgpuN
 * (vgpu_uapi.h; docs/guest-driver.md), so that programs of the group a
 * udev rule picks reach the GPU without root.
 *
 * The window is the ring's layout (protocol/vgpu_ring.h): control page,
 * rings, data area of window_mib MiB. It is allocated as DMA-coherent
 * chunks of up to 2 MiB, each physically contiguous; the extent list the
 * device reads names them in order. Guest-physical and DMA addresses are
 * one here: x86-64 guests without a vIOMMU (the device and the mediator
 * see guest-physical memory).
 *
 * Programs use the window one of two ways (vgpu_uapi.h). One program at
 * a time may have the whole window (libvgpu's ops: its rings are the
 * program's); or any number of programs have streams (the guest
 * libcuda.so.1): the driver alone posts on the rings then, opening and
 * closing each program's streams, and a program maps only its own
 * streams' pages, one slot of the data area each. A slot stays its
 * program's until the program's file is released (no mapping of it can
 * outlive that), so no program sees another's bytes.
 *
 * Interrupts: MSI-X vector 0 for completions, vector 1 for link and
 * window changes; INTx (shared) when MSI-X is not there. The window's
 * state is followed from the device's WIN_STATE register: a registration
 * (again after the mediator came back, or when the program that had the
 * window closes the device) counts a new generation, and the rings start
 * anew with it: the mediator drops what was left in the window (streams,
 * and with them their CUDA worker's connections). A program with
 * streams that ends has them closed by the driver, one descriptor each.
 *
 * Unloading unregisters the window and waits for the device to say so
 * (the mediator answers every request it took first); only then is the
 * memory freed. If the device never says so, the memory is kept (leaked,
 * with a warning) rather than freed under a mediator that may still write.
 *
 * Never: trust the program (its ring indexes are the mediator's business;
 * the driver only maps the window and rings the doorbell), or block in
 * interrupt context.
 */
#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <asm/unaligned.h>

#include "vgpu-stub-regs.h"
#include "vgpu_ring.h"
#include "vgpu_uapi.h"

#define VGPU_CHUNK (2u << 20)

/* vm_flags became read-only behind vm_flags_set() in Linux 6.3. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
#define vgpu_vm_flags_set(vma, flags) vm_flags_set(vma, flags)
#else
#define vgpu_vm_flags_set(vma, flags) ((vma)->vm_flags |= (flags))
#endif
#define VGPU_UNREGISTER_WAIT_MS 10000
#define VGPU_RETRY_MS 100          /* a registration refused VGPU_BUSY is tried again */
#define VGPU_DESC_WAIT_MS 5000     /* the mediator's answer to a stream descriptor */
#define VGPU_SLOT_RING_MAX ((size_t)4 << 20)
#define VGPU_FILE_SLOTS 2          /* a program's slots (the CUDA library uses one) */

static unsigned int window_mib = 16;
module_param(window_mib, uint, 0444);
MODULE_PARM_DESC(window_mib, "data area of each device's ring window, MiB (1 to 508; default 16)");

static DEFINE_IDA(vgpu_ida);

struct vgpu_chunk {
	void *cpu;
	dma_addr_t dma;
	size_t len;
};

struct vgpu_dev {
	struct pci_dev *pdev;
	void __iomem *regs;
	struct miscdevice misc;
	char name[16];
	int index;
	bool ring;                   /* CAPABILITIES.RING: a mediator is there */
	struct vgpu_chunk chunks[VGPU_STUB_WIN_MAX_EXTENTS];
	unsigned int n_chunks;
	size_t window_bytes;
	void *list;                  /* the extent list page */
	dma_addr_t list_dma;
	bool leak;                   /* never acknowledged unregistration: keep the memory */
	struct delayed_work retry;   /* registering again after VGPU_BUSY */
	bool removing;
	int irqs;                    /* handlers requested (devm) */
	struct mutex ring_lock;      /* the driver posting on the rings; the slots */
	u64 next_id;                 /* the driver's descriptors' request ids */
	size_t slot_bytes, slot_ring; /* a stream slot: control page and two rings */
	struct vgpu_file *slot_owner[VGPU_STREAMS_MAX];
	bool slot_open[VGPU_STREAMS_MAX]; /* the mediator has the stream open */
	spinlock_t lock;             /* the fields below */
	wait_queue_head_t wq;
	u64 events;                  /* completion interrupts since the driver loaded */
	u32 win_state;
	s32 win_error;
	u32 generation;
	bool link;
	bool window_open;            /* a program has the whole window */
	unsigned int stream_files;   /* programs with streams */
	bool used;                   /* the rings were used since the last registration */
};

enum vgpu_mode { VGPU_MODE_NONE, VGPU_MODE_WINDOW, VGPU_MODE_STREAMS };

struct vgpu_file {
	struct vgpu_dev *d;
	u32 generation;              /* the registration this program works with */
	u64 seen;                    /* d->events when it last read them */
	enum vgpu_mode mode;         /* chosen by its first mmap(), WAIT or STREAM_OPEN */
	bool fresh;                  /* the window: zero its data once it is registered */
};

static u32 rd(struct vgpu_dev *d, u32 off)
{
	return ioread32(d->regs + off);
}

static void wr(struct vgpu_dev *d, u32 off, u32 v)
{
	iowrite32(v, d->regs + off);
}

/* Read the device's window and link state; a new registration counts a
 * generation. Any context; d->lock held. */
static void refresh_locked(struct vgpu_dev *d)
{
	u32 state = rd(d, VGPU_STUB_REG_WIN_STATE);

	if (state == VGPU_STUB_WIN_REGISTERED && d->win_state != VGPU_STUB_WIN_REGISTERED)
		d->generation++;
	d->win_state = state;
	d->win_error = (s32)rd(d, VGPU_STUB_REG_WIN_ERROR);
	d->link = !!(rd(d, VGPU_STUB_REG_STATUS) & VGPU_STUB_STATUS_LINK);
}

/* Handle the causes in @status (already cleared in the device). A
 * registration the mediator refused VGPU_BUSY (it was still draining this
 * device's previous window, e.g. after a reboot) is tried again shortly. */
static void handle(struct vgpu_dev *d, u32 status)
{
	unsigned long flags;
	bool busy = false;

	spin_lock_irqsave(&d->lock, flags);
	if (status & VGPU_STUB_INT_COMPLETE)
		d->events++;
	if (status & (VGPU_STUB_INT_LINK | VGPU_STUB_INT_WINDOW)) {
		refresh_locked(d);
		busy = d->win_state == VGPU_STUB_WIN_REFUSED && d->win_error == VGPU_BUSY &&
		       !d->removing;
	}
	spin_unlock_irqrestore(&d->lock, flags);
	if (busy)
		schedule_delayed_work(&d->retry, msecs_to_jiffies(VGPU_RETRY_MS));
	wake_up(&d->wq); /* the driver's own waits for answers are uninterruptible */
}

static irqreturn_t irq_complete(int irq, void *data)
{
	handle(data, VGPU_STUB_INT_COMPLETE);
	return IRQ_HANDLED;
}

/* MSI-X vector 1, and INTx: read and clear the causes. */
static irqreturn_t irq_status(int irq, void *data)
{
	struct vgpu_dev *d = data;
	u32 status = rd(d, VGPU_STUB_REG_INT_STATUS);

	if (!status)
		return IRQ_NONE; /* INTx is shared */
	wr(d, VGPU_STUB_REG_INT_STATUS, status);
	handle(d, status);
	return IRQ_HANDLED;
}

/* Ask the device to register the window (the list page is written). */
static void register_window(struct vgpu_dev *d)
{
	unsigned long flags;

	spin_lock_irqsave(&d->lock, flags);
	d->win_state = VGPU_STUB_WIN_REGISTERING;
	d->used = false;
	spin_unlock_irqrestore(&d->lock, flags);
	wr(d, VGPU_STUB_REG_WIN_LIST_LO, lower_32_bits(d->list_dma));
	wr(d, VGPU_STUB_REG_WIN_LIST_HI, upper_32_bits(d->list_dma));
	wr(d, VGPU_STUB_REG_WIN_EXTENTS, d->n_chunks);
	wr(d, VGPU_STUB_REG_WIN_CTRL, VGPU_STUB_WIN_CTRL_REGISTER);
}

static void retry_register(struct work_struct *work)
{
	struct vgpu_dev *d = container_of(to_delayed_work(work), struct vgpu_dev, retry);

	if (!READ_ONCE(d->removing))
		register_window(d);
}

static void free_window(struct vgpu_dev *d)
{
	for (unsigned int i = 0; i < d->n_chunks; i++)
		dma_free_coherent(&d->pdev->dev, d->chunks[i].len, d->chunks[i].cpu,
				  d->chunks[i].dma);
	d->n_chunks = 0;
	if (d->list)
		dma_free_coherent(&d->pdev->dev, PAGE_SIZE, d->list, d->list_dma);
	d->list = NULL;
}

/* The window in chunks of up to 2 MiB (smaller when memory is short), and
 * its extent list. */
static int alloc_window(struct vgpu_dev *d)
{
	size_t want = PAGE_ALIGN(VGPU_RING_DATA_OFFSET + ((size_t)window_mib << 20));
	size_t done = 0, chunk = VGPU_CHUNK;
	__le64 *list;

	d->list = dma_alloc_coherent(&d->pdev->dev, PAGE_SIZE, &d->list_dma, GFP_KERNEL);
	if (!d->list)
		return -ENOMEM;
	while (done < want) {
		size_t len = min(chunk, want - done);
		struct vgpu_chunk *c = &d->chunks[d->n_chunks];

		if (d->n_chunks == VGPU_STUB_WIN_MAX_EXTENTS)
			return -ENOMEM; /* too scattered for one list */
		c->cpu = dma_alloc_coherent(&d->pdev->dev, len, &c->dma,
					    GFP_KERNEL | __GFP_NOWARN);
		if (!c->cpu) {
			if (chunk == PAGE_SIZE)
				return -ENOMEM;
			chunk >>= 1;
			continue;
		}
		if (is_vmalloc_addr(c->cpu)) { /* not mappable page by page below */
			dma_free_coherent(&d->pdev->dev, len, c->cpu, c->dma);
			return -EOPNOTSUPP;
		}
		c->len = len;
		d->n_chunks++;
		done += len;
	}
	d->window_bytes = want;
	/* Stream slots: the largest rings (a power of two) that let
	 * VGPU_STREAMS_MAX slots fit the data area. */
	d->slot_ring = VGPU_SLOT_RING_MAX;
	while (d->slot_ring > VGPU_STREAM_RING_MIN &&
	       VGPU_STREAMS_MAX * (VGPU_STREAM_CTL + 2 * d->slot_ring) >
		       want - VGPU_RING_DATA_OFFSET)
		d->slot_ring >>= 1;
	d->slot_bytes = VGPU_STREAM_CTL + 2 * d->slot_ring;
	list = d->list;
	for (unsigned int i = 0; i < d->n_chunks; i++) {
		list[2 * i] = cpu_to_le64(d->chunks[i].dma);
		list[2 * i + 1] = cpu_to_le64(d->chunks[i].len);
	}
	return 0;
}

/* ---- /dev/vgpuN ---- */

static bool gone(struct vgpu_dev *d, struct vgpu_file *f)
{
	return d->win_state != VGPU_STUB_WIN_REGISTERED || d->generation != f->generation;
}

/* The byte of the window at @off (chunks are whole pages: an aligned
 * field never straddles two). */
static u8 *win_at(struct vgpu_dev *d, size_t off)
{
	for (unsigned int i = 0; i < d->n_chunks; i++) {
		if (off < d->chunks[i].len)
			return (u8 *)d->chunks[i].cpu + off;
		off -= d->chunks[i].len;
	}
	return NULL;
}

/* Zero the window's bytes [@off, @off + @len). */
static void zero_range(struct vgpu_dev *d, size_t off, size_t len)
{
	size_t at = 0;

	for (unsigned int i = 0; i < d->n_chunks && len; i++) {
		size_t clen = d->chunks[i].len, skip, n;

		if (off >= at + clen) {
			at += clen;
			continue;
		}
		skip = off - at;
		n = min(clen - skip, len);
		memset((u8 *)d->chunks[i].cpu + skip, 0, n);
		off += n;
		len -= n;
		at += clen;
	}
}

static u32 ctl_u32(struct vgpu_dev *d, size_t off)
{
	return le32_to_cpu(READ_ONCE(*(__le32 *)win_at(d, off)));
}

static bool window_up(struct vgpu_dev *d, u32 generation)
{
	return READ_ONCE(d->win_state) == VGPU_STUB_WIN_REGISTERED &&
	       READ_ONCE(d->generation) == generation;
}

/*
 * Post a stream descriptor (vgpu_ring.h "Streams") and wait for the
 * mediator's answer: 0 and its status in *status, or -EPIPE (the window
 * is gone), -ETIMEDOUT, -EAGAIN (the submission ring is full), -EINTR (a
 * fatal signal: a killed program's release posts its closes without
 * waiting). Only the driver posts while programs have streams, so the
 * answers in the completion ring are its own; one left behind by a wait
 * that ended early is skipped. ring_lock held.
 */
static int post_stream(struct vgpu_dev *d, u16 flags, u32 index, u32 ctl, u32 ring, s32 *status)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(VGPU_DESC_WAIT_MS);
	u64 id = ++d->next_id;
	u32 generation, tail;
	u8 *desc;

	spin_lock_irq(&d->lock);
	generation = d->generation;
	d->used = true;
	spin_unlock_irq(&d->lock);
	if (!window_up(d, generation))
		return -EPIPE;
	tail = ctl_u32(d, VGPU_RING_OFF_SQ_TAIL);
	if (tail - ctl_u32(d, VGPU_RING_OFF_SQ_HEAD) >= VGPU_RING_ENTRIES)
		return -EAGAIN; /* the mediator has not taken the last 1024 */
	/* We sleep for the answer: completions must interrupt, whatever a
	 * program that had the window left in the flag (vgpu_ring.h); the
	 * flag cleared before the completion tail is read. The doorbell
	 * below is always written. */
	WRITE_ONCE(*(__le32 *)win_at(d, VGPU_RING_OFF_CQ_FLAGS), 0);
	smp_mb();
	desc = win_at(d, VGPU_RING_SQ_OFFSET + (tail % VGPU_RING_ENTRIES) * VGPU_RING_DESC_SIZE);
	memset(desc, 0, VGPU_RING_DESC_SIZE);
	put_unaligned_le64(id, desc);
	put_unaligned_le16(VGPU_RING_OP_STREAM, desc + 8);
	put_unaligned_le16(flags, desc + 10);
	put_unaligned_le32(index, desc + 16);   /* params.m */
	put_unaligned_le32(ring, desc + 20);    /* params.n */
	put_unaligned_le32(ctl, desc + 36);     /* in_off[0] */
	smp_wmb(); /* the descriptor before the tail that publishes it */
	WRITE_ONCE(*(__le32 *)win_at(d, VGPU_RING_OFF_SQ_TAIL), cpu_to_le32(tail + 1));
	wr(d, VGPU_STUB_REG_DOORBELL, 1);
	for (;;) {
		u32 cq_head = ctl_u32(d, VGPU_RING_OFF_CQ_HEAD);

		while (cq_head != ctl_u32(d, VGPU_RING_OFF_CQ_TAIL)) {
			u8 *cqe;
			u64 got;

			smp_rmb(); /* the tail before the entries it publishes */
			cqe = win_at(d, VGPU_RING_CQ_OFFSET +
					     (cq_head % VGPU_RING_ENTRIES) * VGPU_RING_CQE_SIZE);
			got = get_unaligned_le64(cqe);
			*status = (s32)get_unaligned_le32(cqe + 8);
			cq_head++;
			WRITE_ONCE(*(__le32 *)win_at(d, VGPU_RING_OFF_CQ_HEAD), cpu_to_le32(cq_head));
			if (got == id)
				return 0;
		}
		if (!window_up(d, generation))
			return -EPIPE;
		if (time_after_eq(jiffies, deadline))
			return -ETIMEDOUT;
		if (wait_event_killable_timeout(d->wq,
						ctl_u32(d, VGPU_RING_OFF_CQ_TAIL) != cq_head ||
							!window_up(d, generation),
						max_t(long, (long)(deadline - jiffies), 1)) < 0)
			return -EINTR;
	}
}

static int vgpu_open(struct inode *inode, struct file *file)
{
	struct vgpu_dev *d = container_of(file->private_data, struct vgpu_dev, misc);
	struct vgpu_file *f;

	if (!d->ring)
		return -ENODEV;
	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	spin_lock_irq(&d->lock);
	f->generation = d->generation;
	f->seen = d->events;
	spin_unlock_irq(&d->lock);
	f->d = d;
	file->private_data = f;
	return 0;
}

/* The whole window for @f: refused while another program has it or
 * programs have streams. */
static int claim_window(struct vgpu_file *f)
{
	struct vgpu_dev *d = f->d;
	bool again;

	if (f->mode == VGPU_MODE_WINDOW)
		return 0;
	if (f->mode == VGPU_MODE_STREAMS)
		return -EINVAL;
	spin_lock_irq(&d->lock);
	if (d->window_open || d->stream_files) {
		spin_unlock_irq(&d->lock);
		return -EBUSY;
	}
	d->window_open = true;
	f->mode = VGPU_MODE_WINDOW;
	f->seen = d->events;
	f->generation = d->generation;
	again = d->used; /* the rings were used: start them anew */
	spin_unlock_irq(&d->lock);
	if (again) {
		/* Nothing of the last programs' (streams' slots included)
		 * for this one to read: zeroed now, and again once the
		 * mediator has the window anew (until then it may still
		 * write a killed program's last replies). */
		zero_range(d, VGPU_RING_DATA_OFFSET, d->window_bytes - VGPU_RING_DATA_OFFSET);
		f->fresh = true;
		register_window(d);
	}
	return 0;
}

/* Streams mode for @f: refused while a program has the whole window;
 * -EAGAIN while the window is not registered (the streams are the
 * registration's). */
static int claim_streams(struct vgpu_file *f)
{
	struct vgpu_dev *d = f->d;
	int rc = 0;

	if (f->mode == VGPU_MODE_STREAMS)
		return 0;
	if (f->mode == VGPU_MODE_WINDOW)
		return -EINVAL;
	spin_lock_irq(&d->lock);
	if (d->window_open) {
		rc = -EBUSY;
	} else if (d->win_state != VGPU_STUB_WIN_REGISTERED) {
		rc = -EAGAIN;
	} else {
		f->mode = VGPU_MODE_STREAMS;
		d->stream_files++;
		f->seen = d->events;
		f->generation = d->generation;
	}
	spin_unlock_irq(&d->lock);
	return rc;
}

static size_t slot_ctl(struct vgpu_dev *d, int i)
{
	return VGPU_RING_DATA_OFFSET + (size_t)i * d->slot_bytes;
}

/* A stream for @f: its own slot again if it has one closed, else a free
 * one. ring_lock held. */
static int slot_stream_open(struct vgpu_file *f, struct vgpu_stream_req *req)
{
	struct vgpu_dev *d = f->d;
	int i, slot = -1, rc, mine = 0;
	s32 status;

	if (!window_up(d, f->generation))
		return -EPIPE;
	for (i = 0; i < VGPU_STREAMS_MAX; i++) {
		mine += d->slot_owner[i] == f;
		if (slot < 0 && d->slot_owner[i] == f && !d->slot_open[i])
			slot = i;
	}
	for (i = 0; i < VGPU_STREAMS_MAX && slot < 0 && mine < VGPU_FILE_SLOTS; i++)
		if (!d->slot_owner[i])
			slot = i;
	if (slot < 0)
		return -ENOSPC;
	d->slot_owner[slot] = f;
	/* The guest's fields from 0; the mediator zeroes its own. */
	memset(win_at(d, slot_ctl(d, slot)), 0, VGPU_STREAM_CTL);
	rc = post_stream(d, VGPU_STREAM_OPEN, slot, slot_ctl(d, slot), d->slot_ring, &status);
	if (!rc && status == VGPU_BUSY) {
		/* A close of ours that timed out: the mediator still has it. */
		rc = post_stream(d, VGPU_STREAM_CLOSE, slot, 0, 0, &status);
		if (!rc)
			rc = post_stream(d, VGPU_STREAM_OPEN, slot, slot_ctl(d, slot),
					 d->slot_ring, &status);
	}
	if (!rc && status != VGPU_OK)
		rc = -EPROTO;
	if (rc)
		return rc;
	/* The rings hold nothing of a program before: the mediator is done
	 * with the index's last stream (it takes descriptors in order) and
	 * writes RX only once this program has written. */
	zero_range(d, slot_ctl(d, slot) + VGPU_STREAM_CTL, 2 * d->slot_ring);
	d->slot_open[slot] = true;
	*req = (struct vgpu_stream_req){ .index = slot, .ring_bytes = d->slot_ring,
					 .offset = slot_ctl(d, slot), .bytes = d->slot_bytes };
	return 0;
}

/* Close @f's stream @i (the slot stays @f's). ring_lock held. */
static int slot_stream_close(struct vgpu_file *f, u32 i)
{
	struct vgpu_dev *d = f->d;
	s32 status;
	int rc;

	if (i >= VGPU_STREAMS_MAX || d->slot_owner[i] != f || !d->slot_open[i])
		return -EINVAL;
	d->slot_open[i] = false;
	rc = post_stream(d, VGPU_STREAM_CLOSE, i, 0, 0, &status);
	/* A window gone took its streams with it; a stream the mediator
	 * does not have is closed. */
	return rc == -EPIPE || (!rc && (status == VGPU_OK || status == VGPU_NOT_FOUND)) ? 0
	       : rc ? rc : -EPROTO;
}

static int vgpu_release(struct inode *inode, struct file *file)
{
	struct vgpu_file *f = file->private_data;
	struct vgpu_dev *d = f->d;
	bool again = false;

	if (f->mode == VGPU_MODE_STREAMS) {
		mutex_lock(&d->ring_lock);
		for (u32 i = 0; i < VGPU_STREAMS_MAX; i++) {
			if (d->slot_owner[i] != f)
				continue;
			if (d->slot_open[i])
				slot_stream_close(f, i);
			d->slot_owner[i] = NULL;
		}
		mutex_unlock(&d->ring_lock);
	}
	spin_lock_irq(&d->lock);
	if (f->mode == VGPU_MODE_STREAMS) {
		d->stream_files--;
	} else if (f->mode == VGPU_MODE_WINDOW) {
		d->window_open = false;
		d->used = true;
		/* Start the rings anew now rather than at the next open: the
		 * mediator then drops what the program left in the window
		 * (streams too, and with them what a CUDA worker held for
		 * it), whether it ended cleanly or not. */
		again = d->win_state == VGPU_STUB_WIN_REGISTERED && !d->removing;
		/* No program takes streams on these rings meanwhile. */
		if (again)
			d->win_state = VGPU_STUB_WIN_REGISTERING;
	}
	spin_unlock_irq(&d->lock);
	if (again)
		register_window(d);
	kfree(f);
	return 0;
}

static ssize_t vgpu_read(struct file *file, char __user *buf, size_t len, loff_t *off)
{
	struct vgpu_file *f = file->private_data;
	struct vgpu_dev *d = f->d;
	u64 n;
	int rc;

	if (len < sizeof(n))
		return -EINVAL;
	rc = wait_event_interruptible(d->wq, READ_ONCE(d->events) != f->seen || gone(d, f));
	if (rc)
		return rc;
	spin_lock_irq(&d->lock);
	if (gone(d, f)) {
		spin_unlock_irq(&d->lock);
		return -EPIPE;
	}
	n = d->events - f->seen;
	f->seen = d->events;
	spin_unlock_irq(&d->lock);
	if (copy_to_user(buf, &n, sizeof(n)))
		return -EFAULT;
	return sizeof(n);
}

static ssize_t vgpu_write(struct file *file, const char __user *buf, size_t len, loff_t *off)
{
	struct vgpu_file *f = file->private_data;

	if (len < sizeof(u64))
		return -EINVAL;
	if (gone(f->d, f))
		return -EPIPE;
	wr(f->d, VGPU_STUB_REG_DOORBELL, 1);
	return sizeof(u64);
}

static __poll_t vgpu_poll(struct file *file, poll_table *wait)
{
	struct vgpu_file *f = file->private_data;
	struct vgpu_dev *d = f->d;
	__poll_t mask = EPOLLOUT | EPOLLWRNORM;

	poll_wait(file, &d->wq, wait);
	if (gone(d, f))
		return EPOLLERR;
	if (READ_ONCE(d->events) != f->seen)
		mask |= EPOLLIN | EPOLLRDNORM;
	return mask;
}

/* Map the window's bytes [@off, @off + size of @vma). */
static int map_range(struct vgpu_dev *d, struct vm_area_struct *vma, size_t off)
{
	unsigned long size = vma->vm_end - vma->vm_start, done = 0;
	size_t at = 0;

	vgpu_vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP | VM_DONTCOPY);
	for (unsigned int i = 0; i < d->n_chunks && done < size; i++) {
		size_t len = d->chunks[i].len;
		unsigned long skip, n;
		int rc;

		if (off + done >= at + len) {
			at += len;
			continue;
		}
		skip = off + done - at;
		n = min_t(unsigned long, len - skip, size - done);
		rc = remap_pfn_range(vma, vma->vm_start + done,
				     PHYS_PFN(virt_to_phys(d->chunks[i].cpu)) + skip / PAGE_SIZE, n,
				     vma->vm_page_prot);
		if (rc)
			return rc;
		done += n;
		at += len;
	}
	return done == size ? 0 : -EINVAL;
}

static int vgpu_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct vgpu_file *f = file->private_data;
	struct vgpu_dev *d = f->d;
	unsigned long size = vma->vm_end - vma->vm_start;
	size_t off = (size_t)vma->vm_pgoff << PAGE_SHIFT;
	bool mine = false;
	int rc;

	if (vma->vm_pgoff == 0) {
		/* The whole window (or its start). */
		if (size > d->window_bytes)
			return -EINVAL;
		rc = claim_window(f);
		return rc ? rc : map_range(d, vma, 0);
	}
	/* A stream's slot, only by the program it is open for. */
	if (mutex_lock_killable(&d->ring_lock))
		return -EINTR;
	for (int i = 0; i < VGPU_STREAMS_MAX; i++)
		if (d->slot_owner[i] == f && off == slot_ctl(d, i) && size == d->slot_bytes)
			mine = true;
	mutex_unlock(&d->ring_lock);
	return mine ? map_range(d, vma, off) : -EINVAL;
}

static void fill_info(struct vgpu_dev *d, struct vgpu_dev_info *info)
{
	spin_lock_irq(&d->lock);
	refresh_locked(d);
	*info = (struct vgpu_dev_info){
		.window_bytes = d->window_bytes,
		.window_state = d->win_state,
		.window_error = d->win_error,
		.generation = d->generation,
		.link = d->link,
	};
	spin_unlock_irq(&d->lock);
	info->pool = rd(d, VGPU_STUB_REG_POOL_ID);
	info->priority = rd(d, VGPU_STUB_REG_PRIORITY);
	info->vm_id = rd(d, VGPU_STUB_REG_VM_ID);
	info->version = rd(d, VGPU_STUB_REG_VERSION);
}

static long vgpu_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct vgpu_file *f = file->private_data;
	struct vgpu_dev *d = f->d;
	struct vgpu_dev_info info;
	struct vgpu_stream_req req;
	u32 index;
	int rc;

	switch (cmd) {
	case VGPU_IOC_STREAM_OPEN:
		/* A first stream waits (30 s at most) for the window to be
		 * registered: the last whole-window program's close may have
		 * just started it anew. */
		while ((rc = claim_streams(f)) == -EAGAIN) {
			long left = wait_event_interruptible_timeout(
				d->wq, READ_ONCE(d->win_state) == VGPU_STUB_WIN_REGISTERED, 30 * HZ);

			if (left < 0)
				return left;
			if (left == 0)
				return -ETIMEDOUT;
		}
		if (rc)
			return rc;
		if (mutex_lock_killable(&d->ring_lock))
			return -EINTR;
		rc = slot_stream_open(f, &req);
		mutex_unlock(&d->ring_lock);
		if (rc)
			return rc;
		return copy_to_user((void __user *)arg, &req, sizeof(req)) ? -EFAULT : 0;
	case VGPU_IOC_STREAM_CLOSE:
		if (f->mode != VGPU_MODE_STREAMS)
			return -EINVAL;
		if (copy_from_user(&index, (void __user *)arg, sizeof(index)))
			return -EFAULT;
		if (mutex_lock_killable(&d->ring_lock))
			return -EINTR;
		rc = slot_stream_close(f, index);
		mutex_unlock(&d->ring_lock);
		return rc;
	case VGPU_IOC_WAIT: {
		rc = claim_window(f);
		if (rc)
			return rc;
		long left = wait_event_interruptible_timeout(
			d->wq, READ_ONCE(d->win_state) == VGPU_STUB_WIN_REGISTERED, 30 * HZ);
		if (left < 0)
			return left;
		if (left == 0)
			return -ETIMEDOUT;
		spin_lock_irq(&d->lock);
		f->generation = d->generation;
		f->seen = d->events;
		spin_unlock_irq(&d->lock);
		if (f->fresh)
			zero_range(d, VGPU_RING_DATA_OFFSET, d->window_bytes - VGPU_RING_DATA_OFFSET);
		f->fresh = false;
		fallthrough;
	}
	case VGPU_IOC_INFO:
		fill_info(d, &info);
		return copy_to_user((void __user *)arg, &info, sizeof(info)) ? -EFAULT : 0;
	default:
		return -ENOTTY;
	}
}

static const struct file_operations vgpu_fops = {
	.owner = THIS_MODULE,
	.open = vgpu_open,
	.release = vgpu_release,
	.read = vgpu_read,
	.write = vgpu_write,
	.poll = vgpu_poll,
	.mmap = vgpu_mmap,
	.unlocked_ioctl = vgpu_ioctl,
	.llseek = noop_llseek,
};

/* ---- sysfs: /sys/class/misc/vgpuN/ ---- */

static struct vgpu_dev *attr_dev(struct device *dev)
{
	struct miscdevice *misc = dev_get_drvdata(dev);

	return container_of(misc, struct vgpu_dev, misc);
}

#define VGPU_REG_ATTR(name, fmt, ...)                                                   \
	static ssize_t name##_show(struct device *dev, struct device_attribute *a, char *buf) \
	{                                                                               \
		struct vgpu_dev *d = attr_dev(dev);                                     \
		return sysfs_emit(buf, fmt "\n", __VA_ARGS__);                          \
	}                                                                               \
	static DEVICE_ATTR_RO(name)

VGPU_REG_ATTR(pool, "%c", (char)rd(d, VGPU_STUB_REG_POOL_ID));
VGPU_REG_ATTR(priority, "%u", rd(d, VGPU_STUB_REG_PRIORITY));
VGPU_REG_ATTR(vm_id, "%u", rd(d, VGPU_STUB_REG_VM_ID));
VGPU_REG_ATTR(version, "%u.%u", rd(d, VGPU_STUB_REG_VERSION) >> 16,
	      rd(d, VGPU_STUB_REG_VERSION) & 0xffff);
VGPU_REG_ATTR(link, "%u", !!(rd(d, VGPU_STUB_REG_STATUS) & VGPU_STUB_STATUS_LINK));
VGPU_REG_ATTR(window_state, "%u", rd(d, VGPU_STUB_REG_WIN_STATE));
VGPU_REG_ATTR(window_bytes, "%zu", d->window_bytes);

static struct attribute *vgpu_attrs[] = {
	&dev_attr_pool.attr, &dev_attr_priority.attr, &dev_attr_vm_id.attr,
	&dev_attr_version.attr, &dev_attr_link.attr, &dev_attr_window_state.attr,
	&dev_attr_window_bytes.attr, NULL,
};
ATTRIBUTE_GROUPS(vgpu);

/* ---- the PCI device ---- */

static void stop_irqs(struct vgpu_dev *d);
static bool unregister_and_wait(struct vgpu_dev *d);

static int setup_irqs(struct vgpu_dev *d)
{
	struct pci_dev *pdev = d->pdev;
	int n = pci_alloc_irq_vectors(pdev, 1, VGPU_STUB_MSIX_VECTORS,
				      PCI_IRQ_MSIX | PCI_IRQ_LEGACY);
	int rc;

	if (n < 0)
		return n;
	if (pdev->msix_enabled && n == VGPU_STUB_MSIX_VECTORS) {
		rc = devm_request_irq(&pdev->dev, pci_irq_vector(pdev, 0), irq_complete, 0,
				      d->name, d);
		if (rc)
			return rc;
		d->irqs = 1;
		rc = devm_request_irq(&pdev->dev, pci_irq_vector(pdev, 1), irq_status, 0,
				      d->name, d);
		if (!rc)
			d->irqs = 2;
		return rc;
	}
	rc = devm_request_irq(&pdev->dev, pci_irq_vector(pdev, 0), irq_status, IRQF_SHARED,
			      d->name, d);
	if (!rc)
		d->irqs = 1;
	return rc;
}

static int vgpu_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct vgpu_dev *d;
	bool registered = false;
	int rc;

	/* 256 chunks of 2 MiB at most, the rings included: 508 MiB of data. */
	if (window_mib < 1 || window_mib > 508)
		return -EINVAL;
	d = devm_kzalloc(&pdev->dev, sizeof(*d), GFP_KERNEL);
	if (!d)
		return -ENOMEM;
	d->pdev = pdev;
	spin_lock_init(&d->lock);
	mutex_init(&d->ring_lock);
	init_waitqueue_head(&d->wq);
	INIT_DELAYED_WORK(&d->retry, retry_register);
	rc = pcim_enable_device(pdev);
	if (rc)
		return rc;
	rc = pcim_iomap_regions(pdev, BIT(0), "vgpu");
	if (rc)
		return rc;
	d->regs = pcim_iomap_table(pdev)[0];
	if (rd(d, VGPU_STUB_REG_MAGIC) != VGPU_STUB_MAGIC_VALUE ||
	    rd(d, VGPU_STUB_REG_VERSION) >> 16 != VGPU_STUB_VERSION_VALUE >> 16) {
		dev_err(&pdev->dev, "not a vgpu-stub 1.x device\n");
		return -ENODEV;
	}
	d->ring = rd(d, VGPU_STUB_REG_CAPABILITIES) & VGPU_STUB_CAP_RING;
	d->index = ida_alloc(&vgpu_ida, GFP_KERNEL);
	if (d->index < 0)
		return d->index;
	snprintf(d->name, sizeof(d->name), "vgpu%d", d->index);
	pci_set_drvdata(pdev, d);
	if (d->ring) {
		pci_set_master(pdev);
		rc = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
		if (!rc)
			rc = alloc_window(d);
		if (!rc)
			rc = setup_irqs(d);
		if (rc) {
			dev_err(&pdev->dev, "window of %u MiB: error %d\n", window_mib, rc);
			goto fail;
		}
		register_window(d);
		registered = true;
	}
	d->misc = (struct miscdevice){ .minor = MISC_DYNAMIC_MINOR, .name = d->name,
				       .fops = &vgpu_fops, .groups = vgpu_groups,
				       .parent = &pdev->dev };
	rc = misc_register(&d->misc);
	if (rc)
		goto fail;
	dev_info(&pdev->dev, "%s: pool %c, priority %u, vm_id %u%s\n", d->name,
		 (char)rd(d, VGPU_STUB_REG_POOL_ID), rd(d, VGPU_STUB_REG_PRIORITY),
		 rd(d, VGPU_STUB_REG_VM_ID),
		 d->ring ? ", ring window registering" : " (no mediator: identity only)");
	return 0;
fail:
	/* Only misc_register() fails after the window was registered. */
	if (registered && !unregister_and_wait(d)) {
		dev_warn(&pdev->dev, "the device did not release the window: its %zu bytes are kept\n",
			 d->window_bytes);
		d->n_chunks = 0; /* kept: never freed under the mediator */
		d->list = NULL;
	}
	stop_irqs(d);
	free_window(d);
	ida_free(&vgpu_ida, d->index);
	return rc;
}

static void vgpu_remove(struct pci_dev *pdev)
{
	struct vgpu_dev *d = pci_get_drvdata(pdev);

	misc_deregister(&d->misc);
	if (d->ring) {
		d->leak = !unregister_and_wait(d);
		stop_irqs(d);
		if (d->leak)
			dev_warn(&pdev->dev, "the device did not release the window: its %zu bytes are kept\n",
				 d->window_bytes);
		else
			free_window(d);
	}
	ida_free(&vgpu_ida, d->index);
}

/* No more interrupts, and no retry queued by one (in this order: an
 * interrupt handler may queue the retry until it is freed). */
static void stop_irqs(struct vgpu_dev *d)
{
	struct pci_dev *pdev = d->pdev;

	WRITE_ONCE(d->removing, true);
	if (d->irqs) {
		devm_free_irq(&pdev->dev, pci_irq_vector(pdev, 0), d);
		if (d->irqs > 1)
			devm_free_irq(&pdev->dev, pci_irq_vector(pdev, 1), d);
		d->irqs = 0;
	}
	cancel_delayed_work_sync(&d->retry);
	if (d->ring)
		pci_free_irq_vectors(pdev);
}

/* Unregister the window and wait for the device to say so: the mediator
 * answers every request it took first. false when it never does. */
static bool unregister_and_wait(struct vgpu_dev *d)
{
	unsigned int waited = 0;

	WRITE_ONCE(d->removing, true); /* no retry registers it again */
	cancel_delayed_work_sync(&d->retry);
	wr(d, VGPU_STUB_REG_WIN_CTRL, VGPU_STUB_WIN_CTRL_UNREGISTER);
	while (rd(d, VGPU_STUB_REG_WIN_STATE) != VGPU_STUB_WIN_NONE &&
	       waited < VGPU_UNREGISTER_WAIT_MS) {
		msleep(10);
		waited += 10;
	}
	return rd(d, VGPU_STUB_REG_WIN_STATE) == VGPU_STUB_WIN_NONE;
}

static const struct pci_device_id vgpu_ids[] = {
	{ PCI_DEVICE(VGPU_STUB_VENDOR_ID, VGPU_STUB_DEVICE_ID) },
	{ 0 }
};
MODULE_DEVICE_TABLE(pci, vgpu_ids);

static struct pci_driver vgpu_driver = {
	.name = "vgpu",
	.id_table = vgpu_ids,
	.probe = vgpu_probe,
	.remove = vgpu_remove,
	/* Unbinding through sysfs while a program has the device open or
	 * mapped would free the window under it: not offered (rmmod waits for
	 * the last close; hot-unplug is not handled: docs/guest-driver.md). */
	.driver.suppress_bind_attrs = true,
};
module_pci_driver(vgpu_driver);

MODULE_DESCRIPTION("vgpu guest driver: the vgpu-stub device's ring window as /dev/vgpuN");
MODULE_LICENSE("GPL");
