/* SPDX-License-Identifier: MIT */
/*
 * window.c - first-fit allocation of offsets in a shared-memory window's
 * data area (see window.h). Linear in the number of blocks, which is
 * bounded; a program holds a few buffers per request in flight.
 *
 * Must never: hand out a range that overlaps another used block or leaves
 * the area, or write into the window itself.
 */
#include <stdlib.h>
#include <string.h>

#include "window.h"

int window_init(struct window *w, uint64_t base, uint64_t size)
{
	w->b = calloc(WINDOW_MAX_BLOCKS, sizeof(*w->b));
	if (!w->b)
		return VGPU_NO_MEMORY;
	w->b[0] = (struct window_block){ .off = base, .size = size, .used = false };
	w->n = 1;
	w->size = size;
	return VGPU_OK;
}

void window_fini(struct window *w)
{
	free(w->b);
	w->b = NULL;
	w->n = 0;
}

int window_alloc(struct window *w, uint64_t size, uint64_t *ret_off)
{
	if (size > w->size)
		return VGPU_LIMIT;
	size = size ? (size + WINDOW_ALIGN - 1) / WINDOW_ALIGN * WINDOW_ALIGN : WINDOW_ALIGN;
	for (int i = 0; i < w->n; i++) {
		struct window_block *b = &w->b[i];

		if (b->used || b->size < size)
			continue;
		if (b->size > size) {
			/* Split: the rest stays free, right after. */
			if (w->n == WINDOW_MAX_BLOCKS)
				return VGPU_NO_MEMORY;
			memmove(b + 2, b + 1, (size_t)(w->n - i - 1) * sizeof(*b));
			b[1] = (struct window_block){ .off = b->off + size, .size = b->size - size };
			b->size = size;
			w->n++;
		}
		b->used = true;
		*ret_off = b->off;
		return VGPU_OK;
	}
	return VGPU_NO_MEMORY;
}

static void remove_block(struct window *w, int i)
{
	memmove(&w->b[i], &w->b[i + 1], (size_t)(w->n - i - 1) * sizeof(w->b[0]));
	w->n--;
}

int window_free(struct window *w, uint64_t off)
{
	for (int i = 0; i < w->n; i++) {
		if (w->b[i].off != off)
			continue;
		if (!w->b[i].used)
			return VGPU_NOT_FOUND;
		w->b[i].used = false;
		if (i + 1 < w->n && !w->b[i + 1].used) {
			w->b[i].size += w->b[i + 1].size;
			remove_block(w, i + 1);
		}
		if (i > 0 && !w->b[i - 1].used) {
			w->b[i - 1].size += w->b[i].size;
			remove_block(w, i);
		}
		return VGPU_OK;
	}
	return VGPU_NOT_FOUND;
}

bool window_owns(const struct window *w, uint64_t off, uint64_t len)
{
	for (int i = 0; i < w->n; i++) {
		const struct window_block *b = &w->b[i];

		if (off >= b->off && off < b->off + b->size)
			return b->used && len <= b->off + b->size - off;
	}
	return false;
}
