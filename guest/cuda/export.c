/* SPDX-License-Identifier: MIT */
/*
 * export.c - cuGetExportTable: the private tables ("dark API") cudart,
 * cuBLAS and PyTorch ask the driver for by UUID. A table is an array of
 * pointers; most start with their own size in bytes. Layouts and
 * behaviour follow ZLUDA (github.com/vosen/ZLUDA, dark_api/src/lib.rs and
 * zluda/src/impl/driver.rs, commit 8a7931b; Apache-2.0 OR MIT), which
 * checked them against NVIDIA's driver; docs/specs/cuda-remoting.md lists
 * what each slot is for and what cudart 13 calls (traced on the H200).
 *
 * Everything here is answered in the guest: the context-local storage
 * that cudart reads on every runtime call (11 to 238 times in the traced
 * samples) above all. Tables not listed are refused with
 * CUDA_ERROR_INVALID_VALUE, as ZLUDA does (cudart asks for f8cff951...
 * before cuInit() and goes on without it), and logged with
 * VGPU_CUDA_LOG.
 *
 * Not yet: the module slots of CUDART_INTERFACE (1, 6, 8) answer
 * CUDA_ERROR_NOT_SUPPORTED until modules reach the host.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

#define SIZE_WORD(slots) ((const void *)(uintptr_t)(sizeof(void *) * (slots)))

/* ---- CUDART_INTERFACE ---- */

static CUresult module_from_cubin(CUmodule *module, const void *wrapper)
{
	(void)wrapper;
	if (!module)
		return CUDA_ERROR_INVALID_VALUE;
	vgpu_cuda_log(true, "loading modules is not implemented yet: CUDA_ERROR_NOT_SUPPORTED");
	return CUDA_ERROR_NOT_SUPPORTED;
}

static CUresult module_from_cubin_ext1(CUmodule *module, const void *wrapper, void *arg3,
				       void *arg4, unsigned int arg5)
{
	(void)arg3, (void)arg4, (void)arg5;
	return module_from_cubin(module, wrapper);
}

/* Note the order: the fatbin first. */
static CUresult module_from_cubin_ext2(const void *fatbin, CUmodule *module, void *arg3,
				       void *arg4, unsigned int arg5)
{
	(void)arg3, (void)arg4, (void)arg5;
	return module_from_cubin(module, fatbin);
}

/* The device's primary context, not retained (as NVIDIA's driver: a
 * later cuDevicePrimaryCtxRetain returns the same handle). */
static CUresult primary_context(CUcontext *pctx, CUdevice dev)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!pctx)
		return CUDA_ERROR_INVALID_VALUE;
	*pctx = vgpu_cuda_primary(dev);
	return *pctx ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

static void cudart_fn7(size_t arg)
{
	(void)arg;
}

/* NVIDIA's driver loads its PTX compiler and libnvvm here; the host does. */
static CUresult load_compilers(void)
{
	return CUDA_SUCCESS;
}

static const void *const cudart_interface[13] = {
	SIZE_WORD(13), (const void *)module_from_cubin, (const void *)primary_context, NULL, NULL,
	NULL, (const void *)module_from_cubin_ext1, (const void *)cudart_fn7,
	(const void *)module_from_cubin_ext2, NULL, NULL, NULL, (const void *)load_compilers,
};

/* ---- TOOLS_RUNTIME_CALLBACK_HOOKS: no profiler attached ---- */

static uintptr_t hook_noop(const void *a, const void *b)
{
	(void)a, (void)b;
	return 0;
}

static uint32_t hook_buffer1[1024], hook_buffer2[14];

static void hook_get_buffer1(void **ptr, size_t *size)
{
	*ptr = hook_buffer1;
	*size = 1024;
}

static void hook_get_buffer2(void **ptr, size_t *size)
{
	*ptr = hook_buffer2;
	*size = 14;
}

static const void *const tools_hooks[7] = {
	SIZE_WORD(7), (const void *)hook_noop, (const void *)hook_get_buffer1,
	(const void *)hook_noop, (const void *)hook_noop, (const void *)hook_noop,
	(const void *)hook_get_buffer2,
};

/* ---- CONTEXT_LOCAL_STORAGE: a value per (context, key) ---- */

typedef void (*cls_dtor)(CUcontext ctx, void *key, void *value);

#define CLS_SLOTS 256

static struct cls_entry {
	CUcontext ctx;      /* NULL: free */
	void *key, *value;
	cls_dtor dtor;
} cls[CLS_SLOTS];
static pthread_mutex_t cls_lock = PTHREAD_MUTEX_INITIALIZER;

/* @ctx, or the calling thread's current context; NULL when neither. */
static CUcontext cls_context(CUcontext ctx)
{
	if (!ctx && cuCtxGetCurrent(&ctx) != CUDA_SUCCESS)
		return NULL;
	return ctx && vgpu_cuda_ctx_device(ctx) >= 0 ? ctx : NULL;
}

static struct cls_entry *cls_find(CUcontext ctx, void *key)
{
	for (int i = 0; i < CLS_SLOTS; i++)
		if (cls[i].ctx == ctx && cls[i].key == key)
			return &cls[i];
	return NULL;
}

static CUresult cls_put(CUcontext ctx, void *key, void *value, cls_dtor dtor)
{
	struct cls_entry *e;
	CUresult rc = CUDA_SUCCESS;

	ctx = cls_context(ctx);
	if (!ctx)
		return CUDA_ERROR_INVALID_CONTEXT;
	pthread_mutex_lock(&cls_lock);
	e = cls_find(ctx, key);
	if (!e)
		e = cls_find(NULL, NULL);
	if (e)
		*e = (struct cls_entry){ ctx, key, value, dtor };
	else
		rc = CUDA_ERROR_OUT_OF_MEMORY;
	pthread_mutex_unlock(&cls_lock);
	return rc;
}

/* A key that is not there is no error; its destructor is not called. */
static CUresult cls_delete(CUcontext ctx, void *key)
{
	struct cls_entry *e;

	ctx = cls_context(ctx);
	if (!ctx)
		return CUDA_ERROR_INVALID_CONTEXT;
	pthread_mutex_lock(&cls_lock);
	e = cls_find(ctx, key);
	if (e)
		*e = (struct cls_entry){ 0 };
	pthread_mutex_unlock(&cls_lock);
	return CUDA_SUCCESS;
}

/* Note the order: the value first. */
static CUresult cls_get(void **value, CUcontext ctx, void *key)
{
	struct cls_entry *e;
	CUresult rc = CUDA_ERROR_INVALID_HANDLE;

	ctx = cls_context(ctx);
	if (!ctx)
		return CUDA_ERROR_INVALID_CONTEXT;
	if (!value)
		return CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&cls_lock);
	e = cls_find(ctx, key);
	if (e) {
		*value = e->value;
		rc = CUDA_SUCCESS;
	}
	pthread_mutex_unlock(&cls_lock);
	return rc;
}

void vgpu_cuda_cls_reset(CUcontext ctx)
{
	struct cls_entry gone[CLS_SLOTS];
	int n = 0;

	pthread_mutex_lock(&cls_lock);
	for (int i = 0; i < CLS_SLOTS; i++)
		if (cls[i].ctx == ctx) {
			gone[n++] = cls[i];
			cls[i] = (struct cls_entry){ 0 };
		}
	pthread_mutex_unlock(&cls_lock);
	/* Destructors run unlocked: they may call back in. */
	for (int i = 0; i < n; i++)
		if (gone[i].dtor)
			gone[i].dtor(gone[i].ctx, gone[i].key, gone[i].value);
}

/* No size word. */
static const void *const context_local_storage[4] = {
	(const void *)cls_put, (const void *)cls_delete, (const void *)cls_get, NULL,
};

/* ---- CONTEXT_CHECKS: bits never observed set ---- */

static CUresult context_check(CUcontext ctx, uint32_t *result1, const void **result2)
{
	(void)ctx;
	if (result1)
		*result1 = 0;
	if (result2)
		*result2 = NULL;
	return CUDA_SUCCESS;
}

static uint32_t check_fn3(void)
{
	return 0;
}

static const void *const context_checks[4] = {
	SIZE_WORD(4), NULL, (const void *)context_check, (const void *)check_fn3,
};

/* ---- INTEGRITY_CHECK ---- */

static CUresult integrity_check(uint32_t version, uint64_t unix_seconds, uint64_t result[2]);

static const void *const integrity_table[3] = {
	SIZE_WORD(3), (const void *)integrity_check, NULL,
};

static CUresult integrity_check(uint32_t version, uint64_t unix_seconds, uint64_t result[2])
{
	struct vgpu_cuda_device_hash devs[VGPU_CUDA_MAX_DEVICES];
	struct vgpu_cuda_integrity_in in = {
		.version = version,
		.pid = (uint32_t)getpid(),
		.tid = (uint32_t)pthread_self(),
		.cudart_table = (uint64_t)(uintptr_t)cudart_interface,
		.integrity_table = (uint64_t)(uintptr_t)integrity_table,
		.fn = (uint64_t)(uintptr_t)integrity_check,
		.unix_seconds = unix_seconds,
	};
	int driver = 0, count = 0;
	CUresult rc;

	if (!result)
		return CUDA_ERROR_INVALID_VALUE;
	cuDriverGetVersion(&driver);
	in.driver_version = (uint32_t)driver;
	rc = cuDeviceGetCount(&count);
	if (rc != CUDA_SUCCESS)
		return rc;
	for (int d = 0; d < count; d++) {
		const struct vgpu_cuda_device_desc *v = vgpu_cuda_device(d);

		memcpy(devs[d].uuid, v->uuid, sizeof(devs[d].uuid));
		if (cuDeviceGetAttribute(&devs[d].pci_domain, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, d) ||
		    cuDeviceGetAttribute(&devs[d].pci_bus, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, d) ||
		    cuDeviceGetAttribute(&devs[d].pci_device, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, d))
			return CUDA_ERROR_INVALID_DEVICE;
	}
	vgpu_cuda_integrity_hash(&in, devs, (size_t)count, result);
	return CUDA_SUCCESS;
}

/* Calls of the private slots whose meaning is inferred, with
 * VGPU_CUDA_LOG=2. */
#define TRACE(...)                                         \
	do {                                               \
		if (vgpu_cuda_log_level() >= 2)            \
			vgpu_cuda_log(false, __VA_ARGS__); \
	} while (0)

/* ---- TOOLS_TLS ---- */

static uintptr_t tls_fn1(void)
{
	return 0;
}

static uintptr_t tls_fn3(const void *arg)
{
	(void)arg;
	return 0;
}

/* Slot 2: the calling thread's current context, as cuCtxGetCurrent (a
 * decompiler's name for it: "get_thread_context"). cuBLAS Lt reads it
 * and hands it to CONTEXT_IDENTITY's slot 4 (below); the stub this was
 * before wrote nothing, so cuBLAS passed its own uninitialized stack word
 * on as a context. */
static CUresult tls_current_context(CUcontext *pctx)
{
	CUresult rc = cuCtxGetCurrent(pctx);

	TRACE("TOOLS_TLS slot 2: %d (%p)", rc, rc == CUDA_SUCCESS ? (void *)*pctx : NULL);
	return rc;
}

static const void *const tools_tls[4] = {
	SIZE_WORD(4), (const void *)tls_fn1, (const void *)tls_current_context,
	(const void *)tls_fn3,
};

/* ---- CONTEXT_IDENTITY (21318c60-...) ----
 *
 * Asked for by cuBLAS Lt's algorithm heuristic
 * (cublasLtSSSMatmulAlgoGetHeuristic and the other types'), which finds no
 * algorithm without it ("not supported"). NVIDIA's driver 580 serves
 * a table of 93 words (its size, then 92 slots; the probe reads it) and
 * cuBLAS 13 calls three slots, 4, 39 and 51, whatever size the table
 * says it has (a 5-word table was tried: it called slot 51 all the
 * same). The size is NVIDIA's here. What they are:
 *  - 4: the context's unique id, as cuCtxGetId (a decompiler's table names
 *    it "getContextNumber"; checked against NVIDIA's driver by the probe),
 *    but 0 for no context rather than an error;
 *  - 39 and 51: not known. They are answered as LUPINE (SCUDA's successor,
 *    client.cpp, Apache-2.0) answers them and runs cuBLAS with: 39 writes
 *    0 through its third argument; 51 writes through its third the
 *    address of a zeroed object (one per process; 512 bytes, more than
 *    the 0xc0 its fifth argument names), CUDA_ERROR_INVALID_HANDLE where
 *    its second argument is all ones.
 * Every other slot logs its number and answers CUDA_ERROR_NOT_SUPPORTED. */

static CUresult ctxid_unknown(int slot)
{
	vgpu_cuda_log(true, "slot %d of private table 21318c60 is not served: "
			    "CUDA_ERROR_NOT_SUPPORTED", slot);
	return CUDA_ERROR_NOT_SUPPORTED;
}

/* A context's id; 0 for no context (on a thread that has none current,
 * where TOOLS_TLS's slot 2 gave NULL): what NVIDIA's driver answers
 * there too (the probe's export-thread line). */
static CUresult ctxid_4(CUcontext ctx, unsigned long long *id)
{
	CUresult rc = CUDA_SUCCESS;

	if (!id)
		rc = CUDA_ERROR_INVALID_VALUE;
	else if (!ctx)
		*id = 0;
	else
		rc = cuCtxGetId(ctx, id);
	TRACE("table 21318c60 slot 4 (%p): %d (%llu)", (void *)ctx, rc, id && !rc ? *id : 0);
	return rc;
}

static CUresult ctxid_39(uintptr_t a0, uintptr_t a1, uint64_t *out)
{
	TRACE("table 21318c60 slot 39 (%#lx %#lx %p)", (unsigned long)a0,
			(unsigned long)a1, (void *)out);
	if (!a1 || !out)
		return CUDA_ERROR_INVALID_VALUE;
	*out = 0;
	return CUDA_SUCCESS;
}

static CUresult ctxid_51(uintptr_t a0, uintptr_t a1, void **out, uintptr_t a3, uintptr_t a4,
			 uintptr_t a5)
{
	static _Alignas(64) uint64_t object[64];

	TRACE("table 21318c60 slot 51 (%#lx %#lx %p %#lx %#lx %#lx)", (unsigned long)a0,
			(unsigned long)a1, (void *)out, (unsigned long)a3, (unsigned long)a4,
			(unsigned long)a5);
	if (!out)
		return CUDA_ERROR_INVALID_VALUE;
	if (a1 == UINTPTR_MAX)
		return CUDA_ERROR_INVALID_HANDLE;
	*out = object;
	return CUDA_SUCCESS;
}

/* ctxid_N for the slots not served: ctxid_1 to ctxid_92 but 4, 39, 51. */
#define S(n)                                       \
	static CUresult ctxid_##n(void)            \
	{                                          \
		return ctxid_unknown(n);           \
	}
#define S10(t) S(t##0) S(t##1) S(t##2) S(t##3) S(t##4) S(t##5) S(t##6) S(t##7) S(t##8) S(t##9)
S(1) S(2) S(3) S(5) S(6) S(7) S(8) S(9)
S10(1) S10(2) S(30) S(31) S(32) S(33) S(34) S(35) S(36) S(37) S(38)
S(40) S(41) S(42) S(43) S(44) S(45) S(46) S(47) S(48) S(49) S(50)
S(52) S(53) S(54) S(55) S(56) S(57) S(58) S(59) S10(6) S10(7) S10(8)
S(90) S(91) S(92)
#undef S10
#undef S

#define F(n) (const void *)ctxid_##n
#define F10(t) F(t##0), F(t##1), F(t##2), F(t##3), F(t##4), F(t##5), F(t##6), F(t##7), F(t##8), F(t##9)
static const void *const context_identity[93] = {
	SIZE_WORD(93), F(1), F(2), F(3), F(4), F(5), F(6), F(7), F(8), F(9),
	F10(1), F10(2), F10(3), F10(4), F10(5), F10(6), F10(7), F10(8),
	F(90), F(91), F(92),
};
#undef F10
#undef F

/* ---- the index ---- */

static const struct {
	const char *name;
	uint8_t uuid[16];
	const void *const *table;
} tables[] = {
	{ "CUDART_INTERFACE",
	  { 0x6b, 0xd5, 0xfb, 0x6c, 0x5b, 0xf4, 0xe7, 0x4a, 0x89, 0x87, 0xd9, 0x39, 0x12, 0xfd, 0x9d, 0xf9 },
	  cudart_interface },
	{ "TOOLS_RUNTIME_CALLBACK_HOOKS",
	  { 0xa0, 0x94, 0x79, 0x8c, 0x2e, 0x74, 0x2e, 0x74, 0x93, 0xf2, 0x08, 0x00, 0x20, 0x0c, 0x0a, 0x66 },
	  tools_hooks },
	{ "CONTEXT_LOCAL_STORAGE",
	  { 0xc6, 0x93, 0x33, 0x6e, 0x11, 0x21, 0xdf, 0x11, 0xa8, 0xc3, 0x68, 0xf3, 0x55, 0xd8, 0x95, 0x93 },
	  context_local_storage },
	{ "CONTEXT_CHECKS",
	  { 0x26, 0x3e, 0x88, 0x60, 0x7c, 0xd2, 0x61, 0x43, 0x92, 0xf6, 0xbb, 0xd5, 0x00, 0x6d, 0xfa, 0x7e },
	  context_checks },
	{ "INTEGRITY_CHECK",
	  { 0xd4, 0x08, 0x20, 0x55, 0xbd, 0xe6, 0x70, 0x4b, 0x8d, 0x34, 0xba, 0x12, 0x3c, 0x66, 0xe1, 0xf2 },
	  integrity_table },
	{ "TOOLS_TLS",
	  { 0x42, 0xd8, 0x5a, 0x81, 0x23, 0xf6, 0xcb, 0x47, 0x82, 0x98, 0xf6, 0xe7, 0x8a, 0x3a, 0xec, 0xdc },
	  tools_tls },
	{ "CONTEXT_IDENTITY",
	  { 0x21, 0x31, 0x8c, 0x60, 0x97, 0x14, 0x32, 0x48, 0x8c, 0xa6, 0x41, 0xff, 0x73, 0x24, 0xc8, 0xf2 },
	  context_identity },
};

CUresult cuGetExportTable(const void **ppExportTable, const CUuuid *pExportTableId)
{
	if (!ppExportTable || !pExportTableId)
		return CUDA_ERROR_INVALID_VALUE;
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
		if (memcmp(tables[i].uuid, pExportTableId->bytes, 16) == 0) {
			*ppExportTable = tables[i].table;
			vgpu_cuda_log(false, "export table %s", tables[i].name);
			return CUDA_SUCCESS;
		}
	const uint8_t *u = (const uint8_t *)pExportTableId->bytes;

	vgpu_cuda_log(false,
		      "export table %02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x"
		      ": not provided",
		      u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		      u[13], u[14], u[15]);
	return CUDA_ERROR_INVALID_VALUE;
}
