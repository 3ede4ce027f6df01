/* SPDX-License-Identifier: MIT */
/*
 * window.c - this process's window: host memory shared with the VM's
 * worker (a memfd, sealed against shrinking and growing, sent once with
 * WINDOW when the connection opens), so that copies move through it
 * rather than in the calls (docs/specs/cuda-remoting.md, "The window").
 *
 * cuMemHostAlloc's memory is carved from it (host.c): a copy from or to
 * such memory is the GPU's DMA straight from these pages, posted when it
 * is asynchronous. Other memory is copied through two staging slots of
 * it in pieces, the next piece copied in while the worker moves the one
 * before (mem.c). VGPU_CUDA_WINDOW_MIB sets its size (0: none, the bytes
 * then travel in the calls; default 256, at most 1024).
 *
 * Its first bytes are the call ring (cuda_ring.h; VGPU_CUDA_RING_KIB, a
 * power of two from 64 to 16384, default 1024; 0: none), through which
 * call.c posts what needs no reply.
 *
 * Never: hand out bytes outside the window, or the same bytes twice.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cuda_ring.h"
#include "shim.h"
#include "transport.h"

#define ALIGN 256                   /* of every block carved */
/* Where the window goes: at a random 2 MiB boundary between 16 and 64
 * TiB, where neither this process nor its worker usually maps anything,
 * so that the worker can map it at the same address (WINDOW's a2) and
 * kernels reach page-locked memory by this process's own pointers; a few
 * tries, then anywhere. */
#define PLACE_LOW ((uint64_t)1 << 44)
#define PLACE_HIGH ((uint64_t)1 << 46)
#define PLACE_TRIES 8
#define STAGE_MAX ((size_t)8 << 20) /* a staging slot's bytes, at most */

struct used {
	size_t off, len;
};

/* Memory of the caller's that cuMemHostRegister moved into the window:
 * its pages (start, len) are window pages at off from then on. */
struct alias {
	uint8_t *start;
	size_t len, off;
};
#define MAX_ALIASES 1024

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *base;               /* NULL: no window */
static size_t bytes;
static uint64_t devptr;             /* the worker's device address of base, or 0 */
static struct used *used;           /* blocks handed out, by offset */
static size_t n_used, cap_used;
static uint8_t *stage[2];
static size_t stage_len;
static size_t reserved;             /* the ring's control page and bytes */
static int fd = -1;                 /* the memfd, kept to map aliases */
static struct alias aliases[MAX_ALIASES];
static size_t n_aliases;
static size_t ring_bytes;           /* 0 until the worker took the ring */

/* Map @len bytes of @mfd at a free place of PLACE_LOW..PLACE_HIGH, or
 * anywhere: MAP_FAILED when not at all. The address is a hint, never
 * MAP_FIXED: the kernel takes it only where nothing is mapped (and a
 * sanitizer's runtime may drop it: ThreadSanitizer keeps programs out of
 * that range). */
static void *place(int mfd, size_t len)
{
	uint64_t slots = (PLACE_HIGH - PLACE_LOW - len) >> 21, seed;

	seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)&seed;
	for (int i = 0; i < PLACE_TRIES; i++) {
		void *want, *p;

		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		want = (void *)(uintptr_t)(PLACE_LOW + ((seed >> 20) % slots << 21));
		p = mmap(want, len, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
		if (p == want || p == MAP_FAILED)
			return p;
		munmap(p, len);
	}
	return mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
}

int vgpu_cuda_window_make(int *fd_out, size_t *bytes_out, size_t *ring_out, void **at_out)
{
	int mfd;
	size_t mib = (size_t)vgpu_env_ull("VGPU_CUDA_WINDOW_MIB", 0, 1024, 256);
	size_t ring = (size_t)vgpu_env_ull("VGPU_CUDA_RING_KIB", 0, VGPU_CUDA_RING_MAX >> 10, 1024)
		      << 10;
	size_t len = mib << 20;
	void *p;

	if (mib == 0)
		return -1;
	mfd = memfd_create("vgpu-cuda-window", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		return -1;
	if (ftruncate(mfd, (off_t)len) != 0 ||
	    fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
		close(mfd);
		return -1;
	}
	p = place(mfd, len);
	if (p == MAP_FAILED) {
		close(mfd);
		return -1;
	}
	/* A ring the worker takes: a power of two, at most half the window. */
	if (ring && (ring < VGPU_CUDA_RING_MIN || (ring & (ring - 1)) ||
		     VGPU_CUDA_RING_CTL + ring > len / 2))
		ring = 0;
	pthread_mutex_lock(&lock);
	base = p;
	bytes = len;
	reserved = ring ? VGPU_CUDA_RING_CTL + ring : 0;
	fd = mfd;
	pthread_mutex_unlock(&lock);
	*fd_out = mfd;
	*bytes_out = len;
	*ring_out = ring;
	*at_out = p;
	return 0;
}

/* Carve @len bytes at a multiple of @align: the first gap that holds
 * them. Lock held. */
static void *carve(size_t len, size_t align)
{
	size_t at = (reserved + align - 1) / align * align, i;

	len = (len + ALIGN - 1) / ALIGN * ALIGN;
	if (!base || len == 0 || len > bytes)
		return NULL;
	for (i = 0; i < n_used; i++) {
		size_t end = used[i].off + used[i].len;

		if (used[i].off >= at && used[i].off - at >= len)
			break;
		if (end > at)
			at = (end + align - 1) / align * align;
	}
	if (at > bytes || bytes - at < len)
		return NULL;
	if (n_used == cap_used) {
		size_t cap = cap_used ? 2 * cap_used : 64;
		struct used *u = realloc(used, cap * sizeof(*u));

		if (!u)
			return NULL;
		used = u;
		cap_used = cap;
	}
	memmove(&used[i + 1], &used[i], (n_used - i) * sizeof(*used));
	used[i] = (struct used){ at, len };
	n_used++;
	return base + at;
}

/* Give back the block at @p. Lock held. */
static bool uncarve(const void *p)
{
	for (size_t i = 0; base && i < n_used; i++) {
		if (base + used[i].off == p) {
			memmove(&used[i], &used[i + 1], (n_used - i - 1) * sizeof(*used));
			n_used--;
			return true;
		}
	}
	return false;
}

void vgpu_cuda_window_ready(uint64_t device_address)
{
	pthread_mutex_lock(&lock);
	devptr = device_address;
	ring_bytes = reserved ? reserved - VGPU_CUDA_RING_CTL : 0;
	stage_len = bytes / 8 < STAGE_MAX ? bytes / 8 : STAGE_MAX;
	stage[0] = carve(stage_len, ALIGN);
	stage[1] = carve(stage_len, ALIGN);
	if (!stage[0] || !stage[1])
		stage_len = 0;
	pthread_mutex_unlock(&lock);
}

void vgpu_cuda_window_drop(void)
{
	pthread_mutex_lock(&lock);
	if (base)
		munmap(base, bytes);
	if (fd >= 0)
		close(fd);
	fd = -1;
	base = NULL;
	bytes = 0;
	n_used = 0;
	stage_len = 0;
	reserved = 0;
	ring_bytes = 0;
	pthread_mutex_unlock(&lock);
}

void vgpu_cuda_window_hold(bool hold)
{
	if (hold)
		pthread_mutex_lock(&lock);
	else
		pthread_mutex_unlock(&lock);
}

/* @len bytes at @start (whole pages): the process's own private copy
 * instead of the shared memfd's pages. */
static void privatize(uint8_t *start, size_t len)
{
	void *copy = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (copy == MAP_FAILED)
		return;
	memcpy(copy, start, len);
	if (mremap(copy, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, start) == MAP_FAILED)
		munmap(copy, len);
}

void vgpu_cuda_window_forked(void)
{
	const size_t page = (size_t)getpagesize();
	size_t start = 0, end = 0; /* the run of pages to copy next */

	/* The child's registered memory and page-locked memory
	 * (cudaMallocHost, carved from the window): its own private pages,
	 * as a fork's memory is (the parent's stays shared with the worker).
	 * The blocks are sorted by offset: whole pages around each run of
	 * them, copied once; the staging slots are the library's, not the
	 * program's (the child has no context to stage for): left out. */
	for (size_t i = 0; i < n_aliases; i++)
		privatize(aliases[i].start, aliases[i].len);
	n_aliases = 0;
	for (size_t i = 0; base && i < n_used; i++) {
		uint8_t *block = base + used[i].off;

		if (block == stage[0] || block == stage[1])
			continue;
		if (used[i].off >= end) {
			if (end > start)
				privatize(base + start, end - start);
			start = used[i].off / page * page;
		}
		if (used[i].off + used[i].len > end)
			end = (used[i].off + used[i].len + page - 1) / page * page;
	}
	if (end > start)
		privatize(base + start, end - start);
	ring_bytes = 0;
	if (fd >= 0)
		close(fd);
	fd = -1;
}

bool vgpu_cuda_window_ring(struct vgpu_cuda_ring_ctl **ctl, uint8_t **ring, uint64_t *len)
{
	bool up;

	pthread_mutex_lock(&lock);
	up = ring_bytes != 0;
	if (up) {
		*ctl = (struct vgpu_cuda_ring_ctl *)base;
		*ring = base + VGPU_CUDA_RING_CTL;
		*len = ring_bytes;
	}
	pthread_mutex_unlock(&lock);
	return up;
}

void *vgpu_cuda_window_alloc(size_t len, bool mapped)
{
	void *p = NULL;

	pthread_mutex_lock(&lock);
	if (!mapped || devptr)
		p = carve(len, ALIGN);
	pthread_mutex_unlock(&lock);
	return p;
}

bool vgpu_cuda_window_free(void *p)
{
	bool found;

	pthread_mutex_lock(&lock);
	found = uncarve(p);
	pthread_mutex_unlock(&lock);
	return found;
}

/* Whether [@start, @start + @len) is all private anonymous memory (the
 * heap, malloc's or mmap's own; not the main stack): what may move into
 * the window without anyone else noticing. Memory that maps a file or is shared
 * stays where it is: moving it would cut it off from its file or its
 * other mappers. */
static bool private_anonymous(const uint8_t *start, size_t len)
{
	FILE *f = fopen("/proc/self/maps", "re");
	uintptr_t at = (uintptr_t)start, end = at + len;
	char line[512];

	if (!f)
		return false;
	while (at < end && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, off, inode;
		char perms[5];
		int major, minor, n = 0;

		if (sscanf(line, "%lx-%lx %4s %lx %x:%x %lu %n", &lo, &hi, perms, &off, &major,
			   &minor, &inode, &n) < 7)
			break;
		if (hi <= at || lo > at)
			continue;
		const char *name = line + n;

		if (perms[0] != 'r' || perms[1] != 'w' || perms[3] != 'p' || inode != 0 ||
		    (*name != '\n' && *name != '\0' && strncmp(name, "[heap]", 6) != 0))
			break;
		at = hi;
	}
	fclose(f);
	return at >= end;
}

void *vgpu_cuda_window_adopt(void *p, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uint8_t *start = p, *w = NULL;
	size_t span = len;
	int here; /* on this thread's stack */

	/* Whole pages only: a page shared with other data (a heap block's
	 * neighbours, malloc's own) would move with it, and a write to that
	 * data between the copy and the remapping would be lost; and never
	 * the calling thread's own stack. */
	if ((uintptr_t)p % page || len % page ||
	    ((uint8_t *)&here >= start - 65536 && (uint8_t *)&here < start + span + 65536)) {
		vgpu_cuda_log(false, "registered memory at %p: kept where it is (not whole pages of "
				     "its own; its copies staged)", p);
		return NULL;
	}
	pthread_mutex_lock(&lock);
	/* Not pages another registration moved already, nor more than one. */
	for (size_t i = 0; i < n_aliases; i++)
		if (start < aliases[i].start + aliases[i].len && aliases[i].start < start + span)
			goto out;
	if (fd < 0 || n_aliases == MAX_ALIASES || !private_anonymous(start, span) ||
	    !(w = carve(span, page)))
		goto out;
	memcpy(w, start, span);
	if (mmap(start, span, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
		 (off_t)(w - base)) == MAP_FAILED) {
		uncarve(w);
		w = NULL;
		goto out;
	}
	aliases[n_aliases++] = (struct alias){ start, span, (size_t)(w - base) };
out:
	pthread_mutex_unlock(&lock);
	vgpu_cuda_log(false, "registered memory at %p: %s", p,
		      w ? "moved into the window" : "kept where it is (its copies staged)");
	return w ? start : NULL;
}

void vgpu_cuda_window_release(void *start)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n_aliases; i++) {
		struct alias a = aliases[i];
		void *copy;

		if (a.start != start)
			continue;
		/* The bytes into private pages of their own, moved back in place. */
		copy = mmap(NULL, a.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (copy == MAP_FAILED)
			break; /* kept in the window: its pages are still those */
		memcpy(copy, a.start, a.len);
		if (mremap(copy, a.len, a.len, MREMAP_MAYMOVE | MREMAP_FIXED, a.start) == MAP_FAILED) {
			munmap(copy, a.len);
			break;
		}
		uncarve(base + a.off);
		aliases[i] = aliases[--n_aliases];
		break;
	}
	pthread_mutex_unlock(&lock);
}

bool vgpu_cuda_window_offset(const void *p, size_t len, uint64_t *off)
{
	const uint8_t *q = p;
	bool in;

	pthread_mutex_lock(&lock);
	in = base && q >= base + reserved && len <= bytes && (size_t)(q - base) <= bytes - len;
	if (in)
		*off = (uint64_t)(q - base);
	for (size_t i = 0; !in && i < n_aliases; i++) {
		const struct alias *a = &aliases[i];

		in = q >= a->start && len <= a->len && (size_t)(q - a->start) <= a->len - len;
		if (in)
			*off = a->off + (uint64_t)(q - a->start);
	}
	pthread_mutex_unlock(&lock);
	return in;
}

CUdeviceptr vgpu_cuda_window_device(const void *p)
{
	uint64_t off;

	if (!devptr || !vgpu_cuda_window_offset(p, 1, &off))
		return 0;
	return (CUdeviceptr)(devptr + off);
}

size_t vgpu_cuda_window_stage(uint8_t *slot[2], uint64_t off[2])
{
	size_t len;

	pthread_mutex_lock(&lock);
	len = stage_len;
	for (int i = 0; i < 2 && len; i++) {
		slot[i] = stage[i];
		off[i] = (uint64_t)(stage[i] - base);
	}
	pthread_mutex_unlock(&lock);
	return len;
}
