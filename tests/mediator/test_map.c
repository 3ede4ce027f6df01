/* SPDX-License-Identifier: MIT */
/*
 * test_map.c - the mapping backends that reach a guest's RAM (mediator/map):
 * - memfd, on real memfds posing as a VM's RAM in two regions (as QEMU's
 *   memory-backend-memfd gives them: low RAM at 0, high RAM at 4 GiB from
 *   the same fd): a window of scattered extents is mapped in order, reads
 *   what the "guest" wrote and the guest sees what the mediator writes;
 *   extents outside every region, or across two, are refused; memfds
 *   that do not cover a region, that can shrink (no seal) or that are not
 *   memfds are refused at open;
 * - xen, against the fake of libxenforeignmemory and libxenstore
 *   (tests/fakes/libxen.c: nothing here runs Xen; the one fake this test
 *   allows itself): the same window from the domain's frames, a frame the
 *   domain does not own refused with nothing left mapped, another VM's
 *   domain id refused (xenstore names another VM), every mapping and
 *   handle released.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libxen.h"
#include "map.h"
#include "vgpu_error.h"
#include "vgpu_ring.h"

#define MIB ((uint64_t)1 << 20)
#define GIB ((uint64_t)1 << 30)
#define RAM (8 * MIB) /* the "guest's" RAM: 6 MiB low, 2 MiB high */
#define UUID "6f1c2a10-0000-4000-8000-00000000a001"

static int guest_ram(unsigned int seals)
{
	int fd = memfd_create("guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, RAM), 0);
	if (seals)
		assert_int_equal(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

static struct vgpu_dev_hello two_regions(void)
{
	struct vgpu_dev_hello h = {
		.version = VGPU_DEV_VERSION,
		.memory = VGPU_DEV_MEM_MEMFD,
		.n_regions = 2,
		.regions = { { 0, 6 * MIB, 0 }, { 4 * GIB, 2 * MIB, 6 * MIB } },
	};
	return h;
}

/* The window of these tests: the rings and 1 MiB of data, in three
 * extents out of order in guest-physical space. */
static uint32_t scattered(struct vgpu_dev_extent ext[3], uint64_t *bytes)
{
	const uint64_t total = VGPU_RING_DATA_OFFSET + MIB;

	ext[0] = (struct vgpu_dev_extent){ 4 * GIB + 256 * 1024, 64 * 1024 };   /* high RAM */
	ext[1] = (struct vgpu_dev_extent){ 1 * MIB, 512 * 1024 };               /* low RAM */
	ext[2] = (struct vgpu_dev_extent){ 3 * MIB, total - 576 * 1024 };
	*bytes = total;
	return 3;
}

/* Byte @off of the window, as the guest sees it: through its RAM's fd. */
static uint8_t *guest_byte(uint8_t *ram, const struct vgpu_dev_extent *ext, uint64_t off)
{
	for (int i = 0;; i++) {
		if (off < ext[i].len) {
			uint64_t gpa = ext[i].gpa + off;
			return ram + (gpa >= 4 * GIB ? gpa - 4 * GIB + 6 * MIB : gpa);
		}
		off -= ext[i].len;
	}
}

static void test_memfd_window(void **state)
{
	(void)state;
	int fd = guest_ram(F_SEAL_SHRINK | F_SEAL_GROW);
	int fds[2] = { fd, fd };
	struct vgpu_dev_hello h = two_regions();
	struct vgpu_dev_extent ext[3];
	struct vgpu_guest_map *g = NULL;
	uint64_t bytes;
	uint32_t n = scattered(ext, &bytes);
	uint8_t *ram = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	char why[160] = "";
	void *mem = NULL;

	assert_true(ram != MAP_FAILED);
	assert_int_equal(vgpu_map_memfd_open(&h, fds, &g, why, sizeof(why)), VGPU_OK);
	close(fd); /* the map keeps its own copies */
	assert_true(g->pinnable);
	assert_string_equal(g->ops->name, "memfd");
	assert_int_equal(g->ops->map(g, ext, n, bytes, &mem), VGPU_OK);
	/* Every 4 KiB of the window is the guest's page at that place. */
	for (uint64_t off = 0; off < bytes; off += 4096) {
		*guest_byte(ram, ext, off) = (uint8_t)(off / 4096 * 7 + 1);
		assert_int_equal(((uint8_t *)mem)[off], (uint8_t)(off / 4096 * 7 + 1));
	}
	((uint8_t *)mem)[bytes - 1] = 0xee; /* and the guest sees our writes */
	assert_int_equal(*guest_byte(ram, ext, bytes - 1), 0xee);
	g->ops->unmap(g, mem, bytes);

	/* Outside every region; across the end of one; a hole between them. */
	static const struct vgpu_dev_extent bad[] = {
		{ 7 * MIB, VGPU_RING_DATA_OFFSET + MIB },
		{ 6 * MIB - 4096, VGPU_RING_DATA_OFFSET + MIB },
		{ 5 * GIB, VGPU_RING_DATA_OFFSET + MIB },
	};
	for (int i = 0; i < 3; i++) {
		mem = NULL;
		assert_int_equal(g->ops->map(g, &bad[i], 1, bad[i].len, &mem), VGPU_INVALID_PARAM);
		assert_null(mem);
	}
	vgpu_map_unref(g);
	munmap(ram, RAM);
}

static void test_memfd_refused(void **state)
{
	(void)state;
	struct vgpu_dev_hello h = two_regions();
	struct vgpu_guest_map *g = NULL;
	char why[160];
	int fd, fds[2];

	/* No seal: QEMU (or a guest that took it over) could shrink it. */
	fd = guest_ram(0);
	fds[0] = fds[1] = fd;
	assert_int_equal(vgpu_map_memfd_open(&h, fds, &g, why, sizeof(why)), VGPU_INVALID_PARAM);
	assert_non_null(strstr(why, "shrink"));
	close(fd);
	/* A region past the memfd's end. */
	fd = guest_ram(F_SEAL_SHRINK);
	fds[0] = fds[1] = fd;
	h.regions[1].size = 4 * MIB;
	assert_int_equal(vgpu_map_memfd_open(&h, fds, &g, why, sizeof(why)), VGPU_INVALID_PARAM);
	assert_non_null(strstr(why, "past the end"));
	close(fd);
	/* Not a memfd at all: a pipe. */
	int p[2];
	assert_int_equal(pipe(p), 0);
	h = two_regions();
	fds[0] = fds[1] = p[0];
	assert_int_equal(vgpu_map_memfd_open(&h, fds, &g, why, sizeof(why)), VGPU_INVALID_PARAM);
	close(p[0]);
	close(p[1]);
	assert_null(g);
}

static void test_xen_window(void **state)
{
	(void)state;
	struct vgpu_dev_extent ext[3];
	struct vgpu_guest_map *g = NULL;
	uint64_t bytes;
	uint32_t n = scattered(ext, &bytes);
	char why[160];
	void *mem = NULL;

	/* The domain's RAM: frames 0 .. 5 GiB/4 KiB exist (a sparse file). */
	fake_xen.domid = 12;
	snprintf(fake_xen.uuid, sizeof(fake_xen.uuid), "%s", UUID);
	fake_xen.mem_fd = memfd_create("domain-ram", MFD_CLOEXEC);
	fake_xen.mem_pages = 5 * GIB / 4096;
	assert_int_equal(ftruncate(fake_xen.mem_fd, (off_t)(5 * GIB)), 0);
	uint8_t *ram = mmap(NULL, 5 * GIB, PROT_READ | PROT_WRITE, MAP_SHARED, fake_xen.mem_fd, 0);
	assert_true(ram != MAP_FAILED);

	/* Another VM's domain: xenstore says domain 13 is not this VM. */
	assert_int_equal(vgpu_map_xen_open(13, UUID, &g, why, sizeof(why)), VGPU_DENIED);
	assert_int_equal(vgpu_map_xen_open(12, "6f1c2a10-0000-4000-8000-00000000a002", &g, why,
					   sizeof(why)),
			 VGPU_DENIED);
	assert_int_equal(fake_xen.open_handles, 0);

	assert_int_equal(vgpu_map_xen_open(12, UUID, &g, why, sizeof(why)), VGPU_OK);
	assert_false(g->pinnable); /* foreign pages: staged, not pinned */
	assert_string_equal(g->ops->name, "xen");
	assert_int_equal(g->ops->map(g, ext, n, bytes, &mem), VGPU_OK);
	for (uint64_t off = 0; off < bytes; off += 4096) {
		uint64_t rem = off;
		int i = 0;
		while (rem >= ext[i].len)
			rem -= ext[i++].len;
		ram[ext[i].gpa + rem] = (uint8_t)(off / 4096 + 3);
		assert_int_equal(((uint8_t *)mem)[off], (uint8_t)(off / 4096 + 3));
	}
	g->ops->unmap(g, mem, bytes);
	assert_int_equal(fake_xen.mapped_pages, 0);

	/* A frame the domain does not own (past its RAM): refused, nothing
	 * left mapped. */
	struct vgpu_dev_extent past = { 5 * GIB - 64 * 1024, VGPU_RING_DATA_OFFSET + MIB };
	mem = NULL;
	assert_int_equal(g->ops->map(g, &past, 1, past.len, &mem), VGPU_INVALID_PARAM);
	assert_null(mem);
	assert_int_equal(fake_xen.mapped_pages, 0);
	vgpu_map_unref(g);
	assert_int_equal(fake_xen.open_handles, 0);

	/* No privcmd (or no privilege): the open fails cleanly. */
	fake_xen.fail_open = 1;
	assert_int_equal(vgpu_map_xen_open(12, UUID, &g, why, sizeof(why)), VGPU_IO_ERROR);
	fake_xen.fail_open = 0;
	munmap(ram, 5 * GIB);
	close(fake_xen.mem_fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memfd_window),
		cmocka_unit_test(test_memfd_refused),
		cmocka_unit_test(test_xen_window),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
