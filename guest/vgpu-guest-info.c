/* SPDX-License-Identifier: MIT */
/*
 * vgpu-guest-info - inside a VM: find the vgpu-stub PCI device(s) and print
 * what they say: pool, priority, VM id and device version.
 *
 *   vgpu-guest-info [--json] [--help] [--version]
 *
 * It looks under /sys/bus/pci/devices for vendor 0x1af4, device 0x1111.
 * With the guest driver (vgpu.ko) bound it reads the driver's sysfs
 * attributes (no root needed); otherwise it enables the device when
 * nothing has (writing 1 to its `enable`), maps BAR0 (`resource0`)
 * read-only and reads the registers of docs/specs/vgpu-stub.md. Built
 * static, so that it runs in a minimal initramfs.
 *
 * Exit status: 0 every device found was read; 1 no vgpu-stub device; 2
 * usage; 3 a device could not be read (permission: run as root; or it does
 * not answer like a vgpu-stub).
 *
 * Never: write to the device's registers, trust a sysfs name it prints
 * (only PCI addresses made of hex digits, ':' and '.' are used), or read
 * past the 4 KiB it maps.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vgpu-stub-regs.h"

#define PROG "vgpu-guest-info"
#define PCI_DIR "/sys/bus/pci/devices"
#define MAX_DEVICES 64

struct stub {
	char addr[32];           /* PCI address, e.g. 0000:00:04.0 */
	uint32_t class_code;     /* 24 bits from sysfs */
	uint32_t magic, version, pool, priority, vm_id, status, caps;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: " PROG " [--json]\n"
		   "\n"
		   "Prints the vgpu pool, priority, VM id and device version of this VM's\n"
		   "vgpu-stub PCI device (%04x:%04x), read from its registers.\n"
		   "\n"
		   "  --json      one JSON object instead of text\n"
		   "  --help      show this and exit\n"
		   "  --version   show the version and exit\n"
		   "\n"
		   "Exit status: 0 read, 1 no vgpu-stub device, 2 usage error,\n"
		   "3 a device could not be read (run as root).\n",
		VGPU_STUB_VENDOR_ID, VGPU_STUB_DEVICE_ID);
}

/* A PCI address as sysfs names it: hex digits, ':' and '.', nothing else. */
static bool plausible_addr(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= sizeof(((struct stub *)0)->addr))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdef:.", s[i]))
			return false;
	return true;
}

/* The number in sysfs file @dir/@name ("0x1af4\n"); false when unreadable. */
static bool read_hex(const char *dir, const char *name, uint32_t *ret)
{
	char path[512], buf[32];
	FILE *f;
	char *end;
	unsigned long v;

	snprintf(path, sizeof(path), PCI_DIR "/%s/%s", dir, name);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return false;
	}
	fclose(f);
	errno = 0;
	v = strtoul(buf, &end, 16);
	if (errno || end == buf || v > UINT32_MAX)
		return false;
	*ret = (uint32_t)v;
	return true;
}

/* Memory decoding on, as a driver's pci_enable_device() would. */
static int enable(const char *addr)
{
	char path[512];
	uint32_t on = 0;
	int fd;

	if (read_hex(addr, "enable", &on) && on)
		return 0;
	snprintf(path, sizeof(path), PCI_DIR "/%s/enable", addr);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	if (write(fd, "1", 1) != 1) {
		int err = errno;

		close(fd);
		return err;
	}
	close(fd);
	return 0;
}

/* A line of @dir/@name (sysfs) into @buf; false when unreadable. */
static bool read_line(const char *dir, const char *name, char *buf, size_t size)
{
	char path[768];
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "re");
	if (!f)
		return false;
	ok = fgets(buf, (int)size, f) != NULL;
	fclose(f);
	return ok;
}

/* With the guest driver bound (it owns BAR0, so resource0 cannot be
 * mapped), the identity and the ring's state from its sysfs attributes:
 * PCI_DIR/<addr>/misc/vgpuN/. No root needed. 1: no driver there. */
static int read_driver(struct stub *d)
{
	char dir[512], path[768], buf[32];
	unsigned maj = 0, min = 0, prio = 0, vm_id = 0, link = 0, state = 0;
	unsigned long long bytes = 0;
	struct dirent *e;
	DIR *misc;

	snprintf(dir, sizeof(dir), PCI_DIR "/%s/misc", d->addr);
	misc = opendir(dir);
	if (!misc)
		return 1;
	path[0] = '\0';
	while ((e = readdir(misc)))
		if (strncmp(e->d_name, "vgpu", 4) == 0 && strlen(e->d_name) < 64)
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
	closedir(misc);
	if (!path[0] || !read_line(path, "pool", buf, sizeof(buf)))
		return 1;
	d->pool = (uint8_t)buf[0];
	if (!read_line(path, "version", buf, sizeof(buf)) || sscanf(buf, "%u.%u", &maj, &min) != 2 ||
	    !read_line(path, "priority", buf, sizeof(buf)) || sscanf(buf, "%u", &prio) != 1 ||
	    !read_line(path, "vm_id", buf, sizeof(buf)) || sscanf(buf, "%u", &vm_id) != 1 ||
	    !read_line(path, "link", buf, sizeof(buf)) || sscanf(buf, "%u", &link) != 1 ||
	    !read_line(path, "window_state", buf, sizeof(buf)) || sscanf(buf, "%u", &state) != 1 ||
	    !read_line(path, "window_bytes", buf, sizeof(buf)) || sscanf(buf, "%llu", &bytes) != 1) {
		fprintf(stderr, PROG ": %s: the vgpu driver's attributes are unreadable\n", path);
		return 3;
	}
	d->magic = VGPU_STUB_MAGIC_VALUE; /* the driver checked it at probe */
	d->version = (maj & 0xffff) << 16 | (min & 0xffff);
	d->priority = prio;
	d->vm_id = vm_id;
	d->status = VGPU_STUB_STATUS_READY | (link ? VGPU_STUB_STATUS_LINK : 0) |
		    (state == VGPU_STUB_WIN_REGISTERED ? VGPU_STUB_STATUS_WINDOW : 0);
	d->caps = bytes ? VGPU_STUB_CAP_RING : 0;
	return 0;
}

static int read_regs(struct stub *d)
{
	char path[512];
	volatile const uint32_t *r;
	void *map;
	int fd, err = enable(d->addr);

	if (err) {
		fprintf(stderr, PROG ": cannot enable %s: %s%s\n", d->addr, strerror(err),
			err == EACCES || err == EPERM ? " (run as root)" : "");
		return 3;
	}
	snprintf(path, sizeof(path), PCI_DIR "/%s/resource0", d->addr);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_SYNC);
	if (fd < 0) {
		err = errno;
		fprintf(stderr, PROG ": cannot open %s: %s%s\n", path, strerror(err),
			err == EACCES || err == EPERM ? " (run as root)" : "");
		return 3;
	}
	map = mmap(NULL, VGPU_STUB_BAR0_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	err = errno;
	close(fd);
	if (map == MAP_FAILED) {
		fprintf(stderr, PROG ": cannot map %s: %s%s\n", path, strerror(err),
			err == EACCES || err == EPERM ? " (run as root)" : "");
		return 3;
	}
	r = map;
	d->magic = r[VGPU_STUB_REG_MAGIC / 4];
	d->version = r[VGPU_STUB_REG_VERSION / 4];
	d->pool = r[VGPU_STUB_REG_POOL_ID / 4];
	d->priority = r[VGPU_STUB_REG_PRIORITY / 4];
	d->vm_id = r[VGPU_STUB_REG_VM_ID / 4];
	d->status = r[VGPU_STUB_REG_STATUS / 4];
	d->caps = r[VGPU_STUB_REG_CAPABILITIES / 4];
	munmap(map, VGPU_STUB_BAR0_SIZE);
	if (d->magic != VGPU_STUB_MAGIC_VALUE) {
		fprintf(stderr, PROG ": %s answers magic 0x%08x, not vgpu-stub's 0x%08x\n", d->addr,
			d->magic, VGPU_STUB_MAGIC_VALUE);
		return 3;
	}
	/* Another major version may have moved the registers (the spec). */
	if (d->version >> 16 != VGPU_STUB_VERSION_VALUE >> 16) {
		fprintf(stderr, PROG ": %s has register map version %u.%u; this tool reads %u.x\n",
			d->addr, d->version >> 16, d->version & 0xffff, VGPU_STUB_VERSION_VALUE >> 16);
		return 3;
	}
	return 0;
}

static int cmp_stub(const void *a, const void *b)
{
	return strcmp(((const struct stub *)a)->addr, ((const struct stub *)b)->addr);
}

/* Every vgpu-stub under PCI_DIR, sorted by address; -1 when the directory
 * cannot be read. */
static int find(struct stub *out, int max)
{
	DIR *dir = opendir(PCI_DIR);
	struct dirent *e;
	int n = 0;

	if (!dir) {
		fprintf(stderr, PROG ": cannot read " PCI_DIR ": %s (is sysfs mounted?)\n",
			strerror(errno));
		return -1;
	}
	while ((e = readdir(dir)) && n < max) {
		uint32_t vendor, device;

		if (e->d_name[0] == '.' || !plausible_addr(e->d_name))
			continue;
		if (!read_hex(e->d_name, "vendor", &vendor) || !read_hex(e->d_name, "device", &device) ||
		    vendor != VGPU_STUB_VENDOR_ID || device != VGPU_STUB_DEVICE_ID)
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		/* plausible_addr() checked that it fits. */
		memcpy(out[n].addr, e->d_name, strlen(e->d_name) + 1);
		read_hex(e->d_name, "class", &out[n].class_code); /* stays 0 when unreadable */
		n++;
	}
	closedir(dir);
	qsort(out, (size_t)n, sizeof(*out), cmp_stub);
	return n;
}

static const char *priority_name(uint32_t p)
{
	static const char *const names[] = { "low", "medium", "high" };

	return p < 3 ? names[p] : "unknown";
}

/* 'A' to 'Z' as a string; anything else as "?" (the device never says it). */
static const char *pool_name(uint32_t pool)
{
	static const char letters[] = "A\0B\0C\0D\0E\0F\0G\0H\0I\0J\0K\0L\0M\0N\0O\0P\0Q\0R\0S\0T\0U\0V\0W\0X\0Y\0Z";

	return pool >= 'A' && pool <= 'Z' ? &letters[(pool - 'A') * 2] : "?";
}

static void print_text(const struct stub *d)
{
	printf("device    %s (%04x:%04x, class %06x)\n", d->addr, VGPU_STUB_VENDOR_ID,
	       VGPU_STUB_DEVICE_ID, d->class_code);
	printf("pool      %s\n", pool_name(d->pool));
	printf("priority  %u (%s)\n", d->priority, priority_name(d->priority));
	printf("vm_id     %u\n", d->vm_id);
	printf("version   %u.%u\n", d->version >> 16, d->version & 0xffff);
	printf("status    %s\n", d->status & VGPU_STUB_STATUS_READY ? "ready" : "not ready");
	if (d->caps & VGPU_STUB_CAP_RING) /* 1.1 with a mediator: the ring's state */
		printf("ring      link %s, window %s\n",
		       d->status & VGPU_STUB_STATUS_LINK ? "up" : "down",
		       d->status & VGPU_STUB_STATUS_WINDOW ? "registered" : "not registered");
}

static void print_json(const struct stub *d, int n)
{
	printf("{\"devices\":[");
	for (int i = 0; i < n; i++)
		printf("%s{\"pci\":\"%s\",\"vendor\":\"0x%04x\",\"device\":\"0x%04x\","
		       "\"class\":\"0x%06x\",\"version\":\"%u.%u\",\"pool\":\"%s\",\"priority\":%u,"
		       "\"priority_name\":\"%s\",\"vm_id\":%u,\"ready\":%s,\"capabilities\":%u,"
		       "\"link\":%s,\"window\":%s}",
		       i ? "," : "", d[i].addr, VGPU_STUB_VENDOR_ID, VGPU_STUB_DEVICE_ID,
		       d[i].class_code, d[i].version >> 16, d[i].version & 0xffff, pool_name(d[i].pool),
		       d[i].priority, priority_name(d[i].priority), d[i].vm_id,
		       d[i].status & VGPU_STUB_STATUS_READY ? "true" : "false", d[i].caps,
		       d[i].status & VGPU_STUB_STATUS_LINK ? "true" : "false",
		       d[i].status & VGPU_STUB_STATUS_WINDOW ? "true" : "false");
	printf("]}\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	static struct stub devs[MAX_DEVICES];
	bool json = false;
	int c, n;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf(PROG " %s\n", VGPU_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	n = find(devs, MAX_DEVICES);
	if (n < 0)
		return 3;
	if (n == 0) {
		fprintf(stderr, PROG ": no vgpu-stub device (PCI %04x:%04x) under " PCI_DIR
			": is this VM registered with vgpu, and was it started since?\n",
			VGPU_STUB_VENDOR_ID, VGPU_STUB_DEVICE_ID);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		int rc = read_driver(&devs[i]);

		if (rc == 1)
			rc = read_regs(&devs[i]);

		if (rc)
			return rc;
	}
	if (json) {
		print_json(devs, n);
	} else {
		for (int i = 0; i < n; i++) {
			if (i)
				printf("\n");
			print_text(&devs[i]);
		}
	}
	return 0;
}
