/* SPDX-License-Identifier: MIT */
/*
 * kernel.h - libraries and their kernels in the guest (library.c,
 * kernel.c). A CUmodule is a CUlibrary here, and a CUfunction a CUkernel
 * (cudart itself casts one to the other). Internal to guest/cuda/.
 */
#ifndef VGPU_CUDA_KERNEL_H
#define VGPU_CUDA_KERNEL_H

#include <stdatomic.h>

#include "shim.h"

#define VGPU_LIB_MAGIC 0x7667706c /* "vgpl" */
#define VGPU_KERNEL_MAGIC 0x7667706b /* "vgpk" */

struct CUlib_st {
	uint32_t magic;          /* VGPU_LIB_MAGIC while loaded */
	const void *image;       /* the image itself (a wrapper's fatbin), or copy;
				  * NULL once sent */
	void *copy;              /* the library's own copy of it, until sent */
	size_t size;             /* its checked length */
	uint64_t host;           /* the host's handle, once sent (0: not yet) */
	struct CUfunc_st *kernels; /* asked for, newest first */
};

struct CUfunc_st {
	uint32_t magic;          /* VGPU_KERNEL_MAGIC while its library is loaded */
	_Atomic uint32_t refs;   /* its library's, and each graph node's holding it */
	struct CUfunc_st *next;  /* of the same library */
	uint64_t host;           /* the host's handle */
	uint32_t n_params;
	uint32_t param_bytes;    /* what a launch sends */
	uint32_t *layout;        /* n_params pairs: offset, size */
	/* The attributes the host told (func.c), per device: attr_known's
	 * bit a says attr[dev][a] holds attribute a. */
	uint32_t attr_known[VGPU_CUDA_MAX_DEVICES];
	int32_t attr[VGPU_CUDA_MAX_DEVICES][CU_FUNC_ATTRIBUTE_MAX];
	char name[];
};

_Static_assert(CU_FUNC_ATTRIBUTE_MAX <= 32, "attr_known has a bit for each attribute");

/* kernel.c: the kernel of @handle (a CUkernel or CUfunction), or NULL. */
struct CUfunc_st *vgpu_cuda_kernel(const void *handle);
/* Launch attributes @attrs (@n of them) on the wire (cuda_call.h: 16
 * bytes each) at @out, which has room for VGPU_CUDA_MAX_LAUNCH_ATTRS;
 * *@ret_n how many went. Ignored entries and access policy windows (a
 * cache hint naming memory) are left out; events and attributes of
 * graphs or streams only: CUDA_ERROR_NOT_SUPPORTED. */
CUresult vgpu_cuda_launch_attrs(const CUlaunchAttribute *attrs, unsigned int n, uint8_t *out,
				unsigned int *ret_n);

/* kernel.c: one more holder of @k's record (a graph's kernel node): the
 * record stays, its magic cleared, when its library goes before it. */
void vgpu_cuda_kernel_hold(struct CUfunc_st *k);
/* kernel.c: that holder lets go; the record is freed with the last. */
void vgpu_cuda_kernel_release(struct CUfunc_st *k);
/* kernel.c: @k's parameters, given as cuLaunchKernel takes them (@params
 * or @extra), into @buf (k->param_bytes) as a launch sends them. */
CUresult vgpu_cuda_kernel_pack(const struct CUfunc_st *k, void **params, void **extra,
			       uint8_t *buf);
/* kernel.c: a launch of @k (grid and block @dims) with parameters @data
 * packed as above, posted as cuLaunchKernel's. */
CUresult vgpu_cuda_kernel_launch(const struct CUfunc_st *k, const unsigned int dims[6],
				 unsigned int shared, CUstream stream, const uint8_t *data);

/* kernel.c: the host's handle of @library, its image sent there first if
 * it was not yet. */
CUresult vgpu_cuda_library_host(CUlibrary library, uint64_t *ret);

/* func.c: forget the occupancy answers kept for @k (its attributes
 * changed, or it is going). */
void vgpu_cuda_occupancy_forget(const struct CUfunc_st *k);

/* kernel.c: forget @lib's kernels and unload it on the host, if it went
 * there; what the host said. */
CUresult vgpu_cuda_library_drop(struct CUlib_st *lib);

#endif
