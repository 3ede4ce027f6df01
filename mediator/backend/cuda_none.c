/* SPDX-License-Identifier: MIT */
/*
 * cuda_none.c - vgpu_backend_cuda for builds without nvcc: there is none.
 *
 * Never: grow; the meson build picks this file or cuda.c, not both.
 */
#include <stddef.h>

#include "backend.h"

const struct vgpu_backend_ops *const vgpu_backend_cuda = NULL;
