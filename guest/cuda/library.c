/* SPDX-License-Identifier: MIT */
/*
 * library.c - modules and libraries: cuLibraryLoadData (how CUDA 13's
 * cudart registers every fatbin of the program at start-up) and
 * cuModuleLoadData (the driver API's way), which are one thing here.
 * Loading records the image with its checked length, in the guest; the
 * image goes to the host (LIB_LOAD) when a kernel of it is first asked
 * for (kernel.c), as NVIDIA's driver loads lazily too
 * (CUDA_MODULE_LOADING=LAZY, its default): a program that never launches
 * pays nothing. Until then the library holds the image: the caller's own
 * bytes where it says it keeps them (CU_LIBRARY_BINARY_IS_PRESERVED, as
 * cuBLAS Lt does), a copy otherwise (a caller may free its image once
 * the load returned, as NVIDIA's driver documents), freed once sent.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"

#define WRAPPER_MAGIC 0x466243B1u

size_t vgpu_cuda_image_size(const void *image, const void **ret_image)
{
	const uint8_t *p = image;
	uint32_t magic, version;

	*ret_image = image;
	if (!p)
		return 0;
	memcpy(&magic, p, sizeof(magic));
	if (magic == WRAPPER_MAGIC) { /* u32 magic, u32 version, the fatbin's address */
		memcpy(&version, p + 4, sizeof(version));
		if (version != 1 && version != 2)
			return 0;
		memcpy(ret_image, p + 8, sizeof(*ret_image));
		p = *ret_image;
	}
	return vgpu_cuda_image_len(p, VGPU_CUDA_MAX_IMAGE);
}

CUresult cuLibraryLoadData(CUlibrary *library, const void *code, CUjit_option *jitOptions,
			   void **jitOptionsValues, unsigned int numJitOptions,
			   CUlibraryOption *libraryOptions, void **libraryOptionValues,
			   unsigned int numLibraryOptions)
{
	struct CUlib_st *lib;
	const void *image;
	size_t size;
	bool preserved = false;
	CUresult rc = vgpu_cuda_ready();

	(void)jitOptionsValues, (void)libraryOptionValues;
	if (rc != CUDA_SUCCESS)
		return rc;
	/* The options' values may be NULL: cuBLAS Lt passes
	 * CU_LIBRARY_BINARY_IS_PRESERVED without one, and NVIDIA's driver
	 * takes it. */
	if (!library || !code || (numJitOptions && !jitOptions) ||
	    (numLibraryOptions && !libraryOptions))
		return CUDA_ERROR_INVALID_VALUE;
	size = vgpu_cuda_image_size(code, &image);
	if (size == 0) {
		uint8_t b[4] = { 0 };

		/* Its first 4 bytes (what the length check read), if there is
		 * an image at all (a wrapper may point at none). */
		if (image)
			memcpy(b, image, sizeof(b));
		vgpu_cuda_log(true, "cuLibraryLoadData: not a fatbin, cubin or PTX image "
				    "(starts %02x%02x%02x%02x)", b[0], b[1], b[2], b[3]);
		return CUDA_ERROR_INVALID_IMAGE;
	}
	for (unsigned int i = 0; i < numLibraryOptions; i++)
		preserved = preserved || libraryOptions[i] == CU_LIBRARY_BINARY_IS_PRESERVED;
	lib = calloc(1, sizeof(*lib));
	if (lib && !preserved && (lib->copy = malloc(size)))
		image = memcpy(lib->copy, image, size);
	if (!lib || (!preserved && !lib->copy)) {
		free(lib);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	lib->magic = VGPU_LIB_MAGIC;
	lib->image = image;
	lib->size = size;
	vgpu_cuda_log(false, "library %p: %zu bytes", (void *)lib, size);
	*library = lib;
	return CUDA_SUCCESS;
}

CUresult cuLibraryUnload(CUlibrary library)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!VGPU_CUDA_IS(library, VGPU_LIB_MAGIC))
		return CUDA_ERROR_INVALID_HANDLE;
	rc = vgpu_cuda_library_drop(library);
	library->magic = 0;
	free(library->copy);
	free(library);
	return rc;
}

CUresult cuModuleLoadData(CUmodule *module, const void *image)
{
	return cuLibraryLoadData((CUlibrary *)module, image, NULL, NULL, 0, NULL, NULL, 0);
}

CUresult cuModuleUnload(CUmodule module)
{
	return cuLibraryUnload((CUlibrary)module);
}
