/* SPDX-License-Identifier: MIT */
/*
 * window.h - the client's allocator over a shared-memory window's data
 * area (internal; not installed). It hands out offsets only: what lies at
 * them is the caller's business, and its own bookkeeping never lives in
 * the window, where the mediator (and the GPU) write.
 *
 * Blocks are multiples of 64 bytes at 64-byte aligned offsets; first fit;
 * neighbours merge when freed. At most WINDOW_MAX_BLOCKS blocks (free and
 * used) exist at once.
 */
#ifndef VGPU_GUEST_WINDOW_H
#define VGPU_GUEST_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

#include "vgpu_error.h"

#define WINDOW_ALIGN 64u
#define WINDOW_MAX_BLOCKS 8192

struct window_block {
	uint64_t off, size;
	bool used;
};

struct window {
	struct window_block *b;  /* sorted by offset, covering [base, base + size) */
	int n;
	uint64_t size;           /* of the whole area */
};

/* Manage [@base, @base + @size) (@base and @size multiples of 64).
 * VGPU_NO_MEMORY. */
int window_init(struct window *w, uint64_t base, uint64_t size);
void window_fini(struct window *w);
/* A block of at least @size bytes (0 counts as 1): VGPU_OK with its
 * offset, VGPU_NO_MEMORY when no free block is large enough or the block
 * table is full, VGPU_LIMIT for a size past the window. */
int window_alloc(struct window *w, uint64_t size, uint64_t *ret_off);
/* Free the block at @off: VGPU_NOT_FOUND when no used block starts there. */
int window_free(struct window *w, uint64_t off);
/* Whether [@off, @off + @len) lies inside one used block. */
bool window_owns(const struct window *w, uint64_t off, uint64_t len);

#endif
