/* SPDX-License-Identifier: MIT */
/*
 * cuda_image.c - how long a module image is (cuda_image.h).
 * cuLibraryLoadData() and cuModuleLoadData() get a bare pointer; the
 * image's length is in its own headers (formats as ZLUDA's
 * cuda_types/src/dark_api.rs describes them, commit 8a7931b):
 *
 *   fatbin wrapper  u32 magic 0x466243B1, u32 version (1 or 2),
 *                   pointer to the fatbin, pointer (filename or list)
 *   fatbin          u32 magic 0xBA55ED50, u16 version (1), u16 header
 *                   size, u64 size of the entries after the header
 *   entry           u16 kind, u16 version (0x0101), u32 header size,
 *                   u32 payload size, ..., u32 compressed size at +16;
 *                   the next entry follows header size + the larger of
 *                   the two sizes
 *   ELF (a cubin)   where the last of its headers, sections and segments
 *                   ends
 *   PTX             NUL-terminated text
 *
 * The guest asks of its own program's image (a wrapper's pointer is the
 * guest's to follow); the host's worker asks again of the bytes it
 * received, bounded by their count, before its driver sees them.
 */
#include <elf.h>
#include <stdbool.h>
#include <string.h>

#include "cuda_image.h"

#define WRAPPER_MAGIC 0x466243B1u
#define FATBIN_MAGIC 0xBA55ED50u
#define ENTRY_HEAD 64

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint16_t rd16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* Whether @len bytes at @off lie within @avail; if so *@end grows to
 * their end. */
static bool within(uint64_t off, uint64_t len, size_t avail, uint64_t *end)
{
	if (off > avail || len > avail - off)
		return false;
	if (off + len > *end)
		*end = off + len;
	return true;
}

/* An ELF cubin's length: where the last of its parts ends, the section
 * header table, the program header table (nvcc puts it after the
 * section headers in cuBLAS Lt's cubins), every section's and segment's
 * bytes (the driver follows those offsets), each within @avail. */
static size_t elf_len(const uint8_t *p, size_t avail)
{
	Elf64_Ehdr eh;
	uint64_t end = sizeof(eh);

	memcpy(&eh, p, sizeof(eh));
	if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shoff < sizeof(eh) ||
	    !within(eh.e_shoff, (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr), avail, &end))
		return 0;
	if (eh.e_phnum && (eh.e_phentsize != sizeof(Elf64_Phdr) ||
			   !within(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr), avail, &end)))
		return 0;
	for (uint32_t i = 0; i < eh.e_shnum; i++) {
		Elf64_Shdr sh;

		memcpy(&sh, p + eh.e_shoff + (uint64_t)i * sizeof(sh), sizeof(sh));
		if (sh.sh_type != SHT_NOBITS && !within(sh.sh_offset, sh.sh_size, avail, &end))
			return 0;
	}
	for (uint32_t i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, p + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
		if (!within(ph.p_offset, ph.p_filesz, avail, &end))
			return 0;
	}
	return (size_t)end;
}

size_t vgpu_cuda_fatbin_size(const uint8_t *fb, size_t avail)
{
	uint16_t head;
	uint64_t files, off;

	if (avail < 16 || rd32(fb) != FATBIN_MAGIC || rd16(fb + 4) != 1)
		return 0;
	head = rd16(fb + 6);
	files = rd64(fb + 8);
	if (head < 16 || files > VGPU_CUDA_MAX_IMAGE || head + files > avail)
		return 0;
	/* Every entry within the fatbin. */
	for (off = head; off < head + files;) {
		const uint8_t *e = fb + off;
		uint64_t left = head + files - off, size, payload, packed;

		if (left < ENTRY_HEAD || rd16(e + 2) != 0x0101)
			return 0;
		payload = rd32(e + 8);
		packed = rd32(e + 16);
		size = rd32(e + 4) + (payload > packed ? payload : packed);
		if (rd32(e + 4) < ENTRY_HEAD || size > left)
			return 0;
		off += size;
	}
	return (size_t)(head + files);
}

size_t vgpu_cuda_image_len(const uint8_t *p, size_t avail)
{
	if (avail > VGPU_CUDA_MAX_IMAGE)
		avail = VGPU_CUDA_MAX_IMAGE;
	if (!p || avail < 4)
		return 0;
	if (rd32(p) == FATBIN_MAGIC)
		return vgpu_cuda_fatbin_size(p, avail);
	if (avail >= sizeof(Elf64_Ehdr) && memcmp(p, ELFMAG, SELFMAG) == 0 &&
	    p[EI_CLASS] == ELFCLASS64)
		return elf_len(p, avail);
	/* PTX: text up to its NUL, which starts with a comment or a directive. */
	if (p[0] == '/' || p[0] == '.' || p[0] == '\n' || p[0] == ' ' || p[0] == '\t') {
		size_t n = strnlen((const char *)p, avail);

		return n < avail ? n + 1 : 0;
	}
	return 0;
}
