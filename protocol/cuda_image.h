/* SPDX-License-Identifier: MIT */
/*
 * cuda_image.h - the length of a CUDA module image (a fatbin, an ELF
 * cubin or PTX text) from its own headers, bounded by the bytes there are:
 * what a guest's libcuda.so.1 sends with LIB_LOAD (cuda_call.h) and what
 * the host's worker checks before its driver parses the image.
 *
 * Never: read past @avail bytes, or return a length an entry, section or
 * segment of the image reaches beyond.
 */
#ifndef VGPU_CUDA_IMAGE_H
#define VGPU_CUDA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#define VGPU_CUDA_MAX_IMAGE ((size_t)1 << 30)

/* The length of the image at @p, of which @avail bytes (at most
 * VGPU_CUDA_MAX_IMAGE) may be read; 0 for anything else. */
size_t vgpu_cuda_image_len(const uint8_t *p, size_t avail);
/* The length of the fatbin at @fb, of which @avail bytes may be read;
 * 0 unless every entry lies within it. */
size_t vgpu_cuda_fatbin_size(const uint8_t *fb, size_t avail);

#endif
