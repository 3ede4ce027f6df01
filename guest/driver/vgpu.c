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
 * Interrupts: MSI-X vector 0 for completions, vector 1 for link and
 * window changes; INTx (shared) when MSI-X is not there. The window's
 * state is followed from the device's WIN_STATE register: a registration
 * (again after the mediator came back, or when a program closes the
 * device) counts a new generation, and the rings start anew with it: the
 * mediator drops what the last program left in the window (its streams,
 * and with them its CUDA worker's connection).
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
#include <linux/pci.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

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
	spinlock_t lock;             /* the fields below */
	wait_queue_head_t wq;
	u64 events;                  /* completion interrupts not yet read */
	u32 win_state;
	s32 win_error;
	u32 generation;
	bool link;
	bool open;
	bool used;                   /* the rings were used since the last registration */
};

struct vgpu_file {
	struct vgpu_dev *d;
	u32 generation;              /* the registration this program works with */
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
	wake_up_interruptible(&d->wq);
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

static int vgpu_open(struct inode *inode, struct file *file)
{
	struct vgpu_dev *d = container_of(file->private_data, struct vgpu_dev, misc);
	struct vgpu_file *f;
	bool again;

	if (!d->ring)
		return -ENODEV;
	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	spin_lock_irq(&d->lock);
	if (d->open) {
		spin_unlock_irq(&d->lock);
		kfree(f);
		return -EBUSY;
	}
	d->open = true;
	d->events = 0;
	again = d->used; /* a program used the rings: start them anew */
	f->generation = d->generation;
	spin_unlock_irq(&d->lock);
	if (again)
		register_window(d);
	f->d = d;
	file->private_data = f;
	return 0;
}

static int vgpu_release(struct inode *inode, struct file *file)
{
	struct vgpu_file *f = file->private_data;
	struct vgpu_dev *d = f->d;

	bool again;

	spin_lock_irq(&d->lock);
	d->open = false;
	d->used = true;
	/* Start the rings anew now rather than at the next open: the
	 * mediator then closes what the program left open in the window
	 * (its streams, and with them what its CUDA worker held for it),
	 * whether it ended cleanly or not. */
	again = d->win_state == VGPU_STUB_WIN_REGISTERED && !d->removing;
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
	rc = wait_event_interruptible(d->wq, READ_ONCE(d->events) || gone(d, f));
	if (rc)
		return rc;
	spin_lock_irq(&d->lock);
	if (gone(d, f)) {
		spin_unlock_irq(&d->lock);
		return -EPIPE;
	}
	n = d->events;
	d->events = 0;
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
	if (READ_ONCE(d->events))
		mask |= EPOLLIN | EPOLLRDNORM;
	return mask;
}

static int vgpu_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct vgpu_file *f = file->private_data;
	struct vgpu_dev *d = f->d;
	unsigned long size = vma->vm_end - vma->vm_start, off = 0;

	if (vma->vm_pgoff != 0 || size > d->window_bytes)
		return -EINVAL;
	vgpu_vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP | VM_DONTCOPY);
	for (unsigned int i = 0; i < d->n_chunks && off < size; i++) {
		unsigned long len = min_t(unsigned long, d->chunks[i].len, size - off);
		int rc = remap_pfn_range(vma, vma->vm_start + off,
					 PHYS_PFN(virt_to_phys(d->chunks[i].cpu)), len,
					 vma->vm_page_prot);
		if (rc)
			return rc;
		off += len;
	}
	return 0;
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

	switch (cmd) {
	case VGPU_IOC_WAIT: {
		long rc = wait_event_interruptible_timeout(
			d->wq, READ_ONCE(d->win_state) == VGPU_STUB_WIN_REGISTERED, 30 * HZ);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return -ETIMEDOUT;
		spin_lock_irq(&d->lock);
		f->generation = d->generation;
		d->events = 0;
		spin_unlock_irq(&d->lock);
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
