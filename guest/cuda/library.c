/* SPDX-License-Identifier: MIT */
/*
 * library.c - modules and libraries (cuLibraryLoadData: how CUDA 13's
 * cudart registers every fatbin of the program at start-up). Loading is
 * recorded here, in the guest, with the image's checked length; the image
 * goes to the host when a kernel of it is first asked for, as NVIDIA's
 * driver loads lazily too (CUDA_MODULE_LOADING=LAZY, its default): a
 * program that never launches pays nothing. Getting kernels and launching
 * them are not implemented yet (docs/specs/cuda-remoting.md).
 */
#include <stdlib.h>

#include "shim.h"

struct CUlib_st {
	const void *fatbin;  /* the image's fatbin (or cubin, or PTX) */
	size_t size;         /* its checked length */
};

CUresult cuLibraryLoadData(CUlibrary *library, const void *code, CUjit_option *jitOptions,
			   void **jitOptionsValues, unsigned int numJitOptions,
			   CUlibraryOption *libraryOptions, void **libraryOptionValues,
			   unsigned int numLibraryOptions)
{
	struct CUlib_st *lib;
	const void *fatbin;
	size_t size;
	CUresult rc = vgpu_cuda_ready();

	(void)jitOptions, (void)jitOptionsValues, (void)libraryOptions, (void)libraryOptionValues;
	if (rc != CUDA_SUCCESS)
		return rc;
	if (!library || !code || (numJitOptions && (!jitOptions || !jitOptionsValues)) ||
	    (numLibraryOptions && (!libraryOptions || !libraryOptionValues)))
		return CUDA_ERROR_INVALID_VALUE;
	size = vgpu_cuda_image_size(code, &fatbin);
	if (size == 0) {
		vgpu_cuda_log(true, "cuLibraryLoadData: not a fatbin, cubin or PTX image");
		return CUDA_ERROR_INVALID_IMAGE;
	}
	lib = calloc(1, sizeof(*lib));
	if (!lib)
		return CUDA_ERROR_OUT_OF_MEMORY;
	lib->fatbin = fatbin;
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
	if (!library)
		return CUDA_ERROR_INVALID_HANDLE;
	free(library);
	return CUDA_SUCCESS;
}
