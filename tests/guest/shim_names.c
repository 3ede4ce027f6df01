/* SPDX-License-Identifier: MIT */
/*
 * shim_names - looks up driver names in the libcuda.so.1 at argv[1] with
 * dlsym(), as cuBLAS Lt does: cuLinkCreate_v2 (not implemented: it must
 * be there and answer CUDA_ERROR_NOT_SUPPORTED), two older names that
 * must be their _v2 entries, and two per-thread-stream names that must be
 * their entries. Prints "link RC old-name SAME SAME per-thread SAME SAME".
 */
#include <dlfcn.h>
#include <stdio.h>

typedef int (*link_create)(unsigned int, void *, void *, void *);

int main(int argc, char **argv)
{
	void *lib = argc == 2 ? dlopen(argv[1], RTLD_NOW | RTLD_LOCAL) : NULL;

	if (!lib) {
		fprintf(stderr, "shim_names: %s\n", argc == 2 ? dlerror() : "usage: shim_names LIB");
		return 2;
	}
	link_create f = (link_create)dlsym(lib, "cuLinkCreate_v2");
	void *a = dlsym(lib, "cuDevicePrimaryCtxRelease"), *b = dlsym(lib, "cuDevicePrimaryCtxRelease_v2");
	void *c = dlsym(lib, "cuStreamDestroy"), *d = dlsym(lib, "cuStreamDestroy_v2");
	void *e = dlsym(lib, "cuLaunchKernel_ptsz"), *g = dlsym(lib, "cuLaunchKernel");
	void *h = dlsym(lib, "cuMemcpyHtoD_v2_ptds"), *i = dlsym(lib, "cuMemcpyHtoD_v2");

	if (!f || !a || !b || !c || !d || !e || !g || !h || !i) {
		fprintf(stderr, "shim_names: a name is missing\n");
		return 1;
	}
	printf("link %d old-name %s %s per-thread %s %s\n", f(0, NULL, NULL, NULL),
	       a == b ? "True" : "False", c == d ? "True" : "False", e == g ? "True" : "False",
	       h == i ? "True" : "False");
	return 0;
}
