/* SPDX-License-Identifier: MIT */
/*
 * test_parsers.c - unit tests of the parsers and builders behind
 * vgpu-qemu-wrapper: domids, the xenstore `vm` value, QEMU option escaping
 * and the vgpu-stub device argument.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "qemu_opts.h"
#include "xenstore.h"

static void test_domid(void **state)
{
	static const char *const bad[] = {
		"", "0", "00", "01", "007", "-1", "+1", " 1", "1 ", "1x", "0x10", "32752",
		"32767", "99999", "4294967297", "\xd9\xa1",
	};
	unsigned d = 12345;

	(void)state;
	assert_true(vgpu_domid_parse("1", &d));
	assert_int_equal(d, 1);
	assert_true(vgpu_domid_parse("5", &d));
	assert_int_equal(d, 5);
	assert_true(vgpu_domid_parse("32751", &d));
	assert_int_equal(d, 32751);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		d = 12345;
		assert_false(vgpu_domid_parse(bad[i], &d));
		assert_int_equal(d, 12345); /* untouched on failure */
	}
	assert_false(vgpu_domid_parse(NULL, &d));
}

static void test_vm_uuid(void **state)
{
	static const char *const bad[] = {
		"", "/vm/", "vm/0a1b2c3d-0000-4000-8000-00000000000a",
		"/vm/0a1b2c3d-0000-4000-8000-00000000000", "/vm/0a1b2c3d-0000-4000-8000-00000000000a/",
		"/vm//0a1b2c3d-0000-4000-8000-00000000000a", " /vm/0a1b2c3d-0000-4000-8000-00000000000a",
		"/VM/0a1b2c3d-0000-4000-8000-00000000000a", "/vm/0a1b2c3d00000400080000000000000a",
		"/vm/0a1b2c3d-0000-4000-8000-00000000000g",
	};
	char uuid[VGPU_UUID_STRLEN + 1] = "untouched";

	(void)state;
	assert_int_equal(vgpu_xs_vm_uuid("/vm/0A1B2C3D-0000-4000-8000-00000000000A", uuid), VGPU_OK);
	assert_string_equal(uuid, "0a1b2c3d-0000-4000-8000-00000000000a");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(vgpu_xs_vm_uuid(bad[i], uuid), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_xs_vm_uuid(NULL, uuid), VGPU_INVALID_PARAM);
}

static void test_escape(void **state)
{
	char out[16];

	(void)state;
	assert_true(vgpu_qemu_opt_escape("", out, sizeof(out)));
	assert_string_equal(out, "");
	assert_true(vgpu_qemu_opt_escape("B", out, sizeof(out)));
	assert_string_equal(out, "B");
	assert_true(vgpu_qemu_opt_escape("a,b,,c", out, sizeof(out)));
	assert_string_equal(out, "a,,b,,,,c");
	assert_true(vgpu_qemu_opt_escape(",", out, 3));
	assert_string_equal(out, ",,");
	strcpy(out, "keep");
	assert_false(vgpu_qemu_opt_escape(",", out, 2)); /* ",," and the NUL need 3 */
	assert_string_equal(out, "keep");
	assert_false(vgpu_qemu_opt_escape("abc", out, 3));
	assert_string_equal(out, "keep");
	assert_false(vgpu_qemu_opt_escape(NULL, out, sizeof(out)));
}

static void test_device_arg(void **state)
{
	struct vgpu_vm_config vm = { .vm_id = 7, .pool_id = 'B', .priority = 2 };
	char arg[VGPU_QEMU_DEVICE_ARG_MAX];

	(void)state;
	assert_int_equal(vgpu_qemu_stub_device_arg(&vm, NULL, arg, sizeof(arg)), VGPU_OK);
	assert_string_equal(arg, "vgpu-stub,pool_id=B,priority=2,vm_id=7");

	vm.vm_id = VGPU_VM_ID_MAX;
	vm.pool_id = 'A';
	vm.priority = 0;
	assert_int_equal(vgpu_qemu_stub_device_arg(&vm, NULL, arg, sizeof(arg)), VGPU_OK);
	assert_string_equal(arg, "vgpu-stub,pool_id=A,priority=0,vm_id=2147483647");

	/* With the mediator's directory: the VM's socket, commas doubled. */
	strcpy(vm.vm_uuid, "0a1b2c3d-0000-4000-8000-000000000001");
	assert_int_equal(vgpu_qemu_stub_device_arg(&vm, "/run/v,gpu", arg, sizeof(arg)), VGPU_OK);
	assert_string_equal(arg, "vgpu-stub,pool_id=A,priority=0,vm_id=2147483647,mediator=/run/v,,gpu/"
				 "vm-0a1b2c3d-0000-4000-8000-000000000001.sock");
	strcpy(vm.vm_uuid, "not-a-uuid");
	assert_int_equal(vgpu_qemu_stub_device_arg(&vm, "/run/vgpu", arg, sizeof(arg)),
			 VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_qemu_stub_device_arg(&vm, "", arg, sizeof(arg)), VGPU_OK);

	strcpy(arg, "keep");
	assert_int_equal(vgpu_qemu_stub_device_arg(&vm, NULL, arg, 20), VGPU_LIMIT);
	assert_string_equal(arg, "keep");

	struct vgpu_vm_config bad[] = {
		{ .vm_id = 0, .pool_id = 'A', .priority = 1 },
		{ .vm_id = -1, .pool_id = 'A', .priority = 1 },
		{ .vm_id = 1, .pool_id = '1', .priority = 1 },
		{ .vm_id = 1, .pool_id = '[', .priority = 1 },
		{ .vm_id = 1, .pool_id = ',', .priority = 1 },
		{ .vm_id = 1, .pool_id = 'A', .priority = 3 },
		{ .vm_id = 1, .pool_id = 'A', .priority = -1 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(vgpu_qemu_stub_device_arg(&bad[i], NULL, arg, sizeof(arg)),
				 VGPU_INVALID_PARAM);
	assert_string_equal(arg, "keep");
}

static void test_printable(void **state)
{
	char out[8];

	(void)state;
	vgpu_xs_printable("a\nb\x01\xff", 10, out, sizeof(out));
	assert_string_equal(out, "a?b??");
	vgpu_xs_printable("abcdefghij", 10, out, sizeof(out));
	assert_string_equal(out, "abcdefg");
	vgpu_xs_printable("abcdef", 3, out, sizeof(out));
	assert_string_equal(out, "abc");
	vgpu_xs_printable(NULL, 3, out, sizeof(out));
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_domid),
		cmocka_unit_test(test_vm_uuid),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_device_arg),
		cmocka_unit_test(test_printable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
