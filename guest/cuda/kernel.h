/* SPDX-License-Identifier: MIT */
/*
 * kernel.h - libraries and their kernels in the guest (library.c,
 * kernel.c). A CUmodule is a CUlibrary here, and a CUfunction a CUkernel
 * (cudart itself casts one to the other). Internal to guest/cuda/.
 */
#ifndef VGPU_CUDA_KERNEL_H
#define VGPU_CUDA_KERNEL_H

#include "shim.h"

#define VGPU_LIB_MAGIC 0x7667706c /* "vgpl" */
#define VGPU_KERNEL_MAGIC 0x7667706b /* "vgpk" */

struct CUlib_st {
	uint32_t magic;          /* VGPU_LIB_MAGIC while loaded */
	const void *image;       /* the image itself (a wrapper's fatbin) */
	size_t size;             /* its checked length */
	uint64_t host;           /* the host's handle, once sent (0: not yet) */
	struct CUfunc_st *kernels; /* asked for, newest first */
};

struct CUfunc_st {
	uint32_t magic;          /* VGPU_KERNEL_MAGIC while its library is loaded */
	struct CUfunc_st *next;  /* of the same library */
	uint64_t host;           /* the host's handle */
	uint32_t n_params;
	uint32_t param_bytes;    /* what a launch sends */
	uint32_t *layout;        /* n_params pairs: offset, size */
	char name[];
};

/* kernel.c: forget @lib's kernels and unload it on the host, if it went
 * there; what the host said. */
CUresult vgpu_cuda_library_drop(struct CUlib_st *lib);

#endif
