/* SPDX-License-Identifier: MIT */
/*
 * map_memfd.c - guest RAM in memfds (KVM and TCG; map.h).
 *
 * Must never: map an extent that is not wholly inside one declared region,
 * trust a region the memfd does not cover, or keep a memfd its owner could
 * shrink (a mapped page past the end would raise SIGBUS in the mediator).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "map.h"
#include "vgpu_error.h"

struct memfd_map {
	struct vgpu_guest_map g; /* must stay first */
	uint32_t n;
	struct vgpu_dev_region regions[VGPU_DEV_MAX_REGIONS];
	int fds[VGPU_DEV_MAX_REGIONS];
};

static int memfd_map(struct vgpu_guest_map *g, const struct vgpu_dev_extent *ext, uint32_t n,
		     uint64_t bytes, void **ret)
{
	struct memfd_map *mm = (struct memfd_map *)(void *)g;
	uint8_t *base = mmap(NULL, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			     -1, 0);
	uint64_t off = 0;

	if (base == MAP_FAILED)
		return VGPU_NO_MEMORY;
	for (uint32_t i = 0; i < n; i++) {
		const struct vgpu_dev_region *r = NULL;

		for (uint32_t k = 0; k < mm->n && !r; k++) {
			const struct vgpu_dev_region *c = &mm->regions[k];

			if (ext[i].gpa >= c->gpa && ext[i].len <= c->size &&
			    ext[i].gpa - c->gpa <= c->size - ext[i].len)
				r = c;
		}
		if (!r) {
			munmap(base, bytes);
			return VGPU_INVALID_PARAM;
		}
		int fd = mm->fds[r - mm->regions];
		void *p = mmap(base + off, ext[i].len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
			       fd, (off_t)(r->fd_offset + (ext[i].gpa - r->gpa)));
		if (p == MAP_FAILED) {
			munmap(base, bytes);
			return VGPU_NO_MEMORY;
		}
		off += ext[i].len;
	}
	*ret = base;
	return VGPU_OK;
}

static void memfd_unmap(struct vgpu_guest_map *g, void *mem, uint64_t bytes)
{
	(void)g;
	if (mem)
		munmap(mem, bytes);
}

static void memfd_free(struct vgpu_guest_map *g)
{
	struct memfd_map *mm = (struct memfd_map *)(void *)g;

	for (uint32_t i = 0; i < mm->n; i++)
		if (mm->fds[i] >= 0)
			close(mm->fds[i]);
	free(mm);
}

static const struct vgpu_map_ops memfd_ops = {
	.name = "memfd",
	.map = memfd_map,
	.unmap = memfd_unmap,
	.free = memfd_free,
};

int vgpu_map_memfd_open(const struct vgpu_dev_hello *h, const int *fds,
			struct vgpu_guest_map **ret, char *why, size_t why_len)
{
	struct memfd_map *mm;

	if (h->memory != VGPU_DEV_MEM_MEMFD || h->n_regions == 0 ||
	    h->n_regions > VGPU_DEV_MAX_REGIONS) {
		snprintf(why, why_len, "not a memfd device");
		return VGPU_INVALID_PARAM;
	}
	for (uint32_t i = 0; i < h->n_regions; i++) {
		const struct vgpu_dev_region *r = &h->regions[i];
		struct stat st;
		int seals = fcntl(fds[i], F_GET_SEALS);

		if (fstat(fds[i], &st) != 0 || !S_ISREG(st.st_mode)) {
			snprintf(why, why_len, "region %u: not a memfd", i);
			return VGPU_INVALID_PARAM;
		}
		/* Regions were checked not to wrap; the file must cover them. */
		if (r->fd_offset > (uint64_t)st.st_size ||
		    r->size > (uint64_t)st.st_size - r->fd_offset) {
			snprintf(why, why_len, "region %u: past the end of its memfd", i);
			return VGPU_INVALID_PARAM;
		}
		struct statfs fs;
		/* Huge pages can run out under a mapping (a hole punched in a
		 * hugetlbfs file faults with SIGBUS): shmem memfds only. */
		if (fstatfs(fds[i], &fs) != 0 || fs.f_type == HUGETLBFS_MAGIC) {
			snprintf(why, why_len, "region %u: huge-page memory is not taken", i);
			return VGPU_INVALID_PARAM;
		}
		if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
			snprintf(why, why_len,
				 "region %u: its memfd can shrink (run the VM with "
				 "memory-backend-memfd and seal=on, the default)", i);
			return VGPU_INVALID_PARAM;
		}
	}
	mm = calloc(1, sizeof(*mm));
	if (!mm) {
		snprintf(why, why_len, "out of memory");
		return VGPU_NO_MEMORY;
	}
	mm->g = (struct vgpu_guest_map){ .ops = &memfd_ops, .pinnable = true, .refs = 1 };
	for (uint32_t i = 0; i < VGPU_DEV_MAX_REGIONS; i++)
		mm->fds[i] = -1;
	mm->n = h->n_regions;
	for (uint32_t i = 0; i < h->n_regions; i++) {
		mm->regions[i] = h->regions[i];
		mm->fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
		if (mm->fds[i] < 0) {
			snprintf(why, why_len, "cannot keep its memfd: %s", strerror(errno));
			memfd_free(&mm->g);
			return VGPU_IO_ERROR;
		}
	}
	*ret = &mm->g;
	return VGPU_OK;
}
