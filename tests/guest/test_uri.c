/* SPDX-License-Identifier: MIT */
/*
 * test_uri.c - transport URIs: what vgpu_uri_parse() accepts, and what
 * vgpu_connect() answers for each kind of bad or unreachable URI.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "libvgpu.h"
#include "transport.h"

static void test_parse_good(void **state)
{
	struct vgpu_uri u;

	(void)state;
	assert_int_equal(vgpu_uri_parse("unix:/run/vgpu/vm-1b2c.sock", &u), VGPU_OK);
	assert_int_equal(u.kind, VGPU_URI_UNIX);
	assert_string_equal(u.path, "/run/vgpu/vm-1b2c.sock");
	assert_int_equal(vgpu_uri_parse("unix:relative/vm.sock", &u), VGPU_OK);
	assert_string_equal(u.path, "relative/vm.sock");
	assert_int_equal(vgpu_uri_parse("spool:/mnt/vgpu", &u), VGPU_OK);
	assert_int_equal(u.kind, VGPU_URI_SPOOL);
	assert_string_equal(u.path, "/mnt/vgpu");
	/* The longest socket path a sockaddr_un holds. */
	char uri[8 + 108];
	memset(uri, 'a', sizeof(uri));
	memcpy(uri, "unix:/", 6);
	uri[5 + 107] = '\0';
	assert_int_equal(vgpu_uri_parse(uri, &u), VGPU_OK);
	assert_int_equal(strlen(u.path), 107);
}

static void test_parse_bad(void **state)
{
	static const char *const bad[] = {
		"", "unix", "unix:", "spool:", "/run/vgpu/vm.sock", "UNIX:/x", "Unix:/x",
		"tcp:127.0.0.1:5", "unix /x", " unix:/x", "file:/x", "spool", ":/x",
		"unix:/x\n", "unix:/a\tb", "spool:/mnt/\x7f", "unix:\x01",
		/* A spool directory is absolute: it must not depend on the cwd. */
		"spool:relative/dir", "spool:./vgpu", "spool:vgpu", "spool:~/vgpu",
	};
	struct vgpu_uri u = { .kind = 99, .path = "untouched" };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (vgpu_uri_parse(bad[i], &u) != VGPU_INVALID_PARAM)
			fail_msg("'%s' accepted", bad[i]);
	}
	assert_int_equal(vgpu_uri_parse(NULL, &u), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_uri_parse("unix:/x", NULL), VGPU_INVALID_PARAM);
	assert_int_equal(u.kind, 99);
	assert_string_equal(u.path, "untouched");
}

static void test_parse_long(void **state)
{
	struct vgpu_uri u;
	char *uri = malloc(8 + 5000);

	(void)state;
	assert_non_null(uri);
	/* One byte too long for sockaddr_un. */
	memset(uri, 'a', 8 + 5000);
	memcpy(uri, "unix:/", 6);
	uri[5 + 108] = '\0';
	assert_int_equal(vgpu_uri_parse(uri, &u), VGPU_INVALID_PARAM);
	/* Spool directories may be longer, up to 4095 bytes. */
	static const struct {
		size_t len;
		int want;
	} spool[] = { { 200, VGPU_OK }, { 4095, VGPU_OK }, { 4096, VGPU_LIMIT }, { 5000, VGPU_LIMIT } };
	for (size_t i = 0; i < sizeof(spool) / sizeof(spool[0]); i++) {
		memset(uri, 'a', 8 + 5000);
		memcpy(uri, "spool:/", 7);
		uri[6 + spool[i].len] = '\0';
		assert_int_equal(vgpu_uri_parse(uri, &u), spool[i].want);
	}
	free(uri);
}

static void test_connect_errors(void **state)
{
	char dir[] = "/tmp/vgpu-uri-XXXXXX", uri[256], path[200];
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	vgpu_client *c = (vgpu_client *)1;
	int fd;

	(void)state;
	assert_int_equal(vgpu_connect("bogus:/x", &c), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_connect("unix:", &c), VGPU_INVALID_PARAM);
	/* No URI: the default, $VGPU_TRANSPORT, else /dev/vgpu0 (none here). */
	unsetenv("VGPU_TRANSPORT");
	assert_null(vgpu_default_transport());
	assert_int_equal(vgpu_connect(NULL, &c), VGPU_NOT_FOUND);
	setenv("VGPU_TRANSPORT", "bogus:/x", 1);
	assert_string_equal(vgpu_default_transport(), "bogus:/x");
	assert_int_equal(vgpu_connect(NULL, &c), VGPU_INVALID_PARAM);
	unsetenv("VGPU_TRANSPORT");
	assert_int_equal(vgpu_connect("dev:relative/vgpu0", &c), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_connect("dev:/nonexistent/vgpu0", &c), VGPU_NOT_FOUND);
	assert_int_equal(vgpu_connect("unix:/x", NULL), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_connect("spool:relative", &c), VGPU_INVALID_PARAM);
	assert_non_null(mkdtemp(dir));
	snprintf(uri, sizeof(uri), "unix:%s/missing.sock", dir);
	assert_int_equal(vgpu_connect(uri, &c), VGPU_NOT_FOUND);
	/* A regular file is no socket. */
	snprintf(path, sizeof(path), "%s/file", dir);
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	snprintf(uri, sizeof(uri), "unix:%s", path);
	assert_int_equal(vgpu_connect(uri, &c), VGPU_IO_ERROR);
	unlink(path);
	/* A socket nobody listens on any more. */
	snprintf(path, sizeof(path), "%s/dead.sock", dir);
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	close(fd);
	snprintf(uri, sizeof(uri), "unix:%s", path);
	assert_int_equal(vgpu_connect(uri, &c), VGPU_IO_ERROR);
	unlink(path);
	/* ret is written only on success. */
	assert_ptr_equal(c, (vgpu_client *)1);
	rmdir(dir);
}

static void make_dir(const char *dir, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(mkdir(path, 0700), 0);
}

static void remove_entry(const char *dir, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (rmdir(path) != 0)
		assert_int_equal(unlink(path), 0);
}

/* spool:DIR needs DIR/req and DIR/resp, real directories the mediator made:
 * the client creates neither and answers VGPU_NOT_FOUND without them. */
static void test_spool_connect(void **state)
{
	char dir[] = "/tmp/vgpu-uri-XXXXXX", uri[256], path[256];
	vgpu_client *c = (vgpu_client *)1;
	struct stat st;
	int fd;

	(void)state;
	assert_int_equal(vgpu_connect("spool:/nonexistent/vgpu", &c), VGPU_NOT_FOUND);
	assert_non_null(mkdtemp(dir));
	snprintf(uri, sizeof(uri), "spool:%s", dir);
	assert_int_equal(vgpu_connect(uri, &c), VGPU_NOT_FOUND); /* neither */
	make_dir(dir, "req");
	assert_int_equal(vgpu_connect(uri, &c), VGPU_NOT_FOUND); /* no resp/ */
	snprintf(path, sizeof(path), "%s/resp", dir);
	assert_int_equal(stat(path, &st), -1); /* and it was not created */
	remove_entry(dir, "req");
	make_dir(dir, "resp");
	assert_int_equal(vgpu_connect(uri, &c), VGPU_NOT_FOUND); /* no req/ */
	snprintf(path, sizeof(path), "%s/req", dir);
	assert_int_equal(stat(path, &st), -1);
	/* req/ a regular file, then a symlink to a directory: both refused. */
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(vgpu_connect(uri, &c), VGPU_NOT_FOUND);
	remove_entry(dir, "req");
	assert_int_equal(symlink(dir, path), 0);
	assert_int_equal(vgpu_connect(uri, &c), VGPU_NOT_FOUND);
	remove_entry(dir, "req");
	/* The spool directory itself is a file. */
	snprintf(path, sizeof(path), "spool:%s/resp/file", dir);
	snprintf(uri, sizeof(uri), "%s/resp/file", dir);
	fd = open(uri, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(vgpu_connect(path, &c), VGPU_NOT_FOUND);
	assert_int_equal(unlink(uri), 0);
	/* Both there: connected, and nothing written by connecting. */
	make_dir(dir, "req");
	snprintf(uri, sizeof(uri), "spool:%s", dir);
	assert_ptr_equal(c, (vgpu_client *)1);
	assert_int_equal(vgpu_connect(uri, &c), VGPU_OK);
	vgpu_close(c);
	/* Without write permission on req/ (only meaningful when not root). */
	if (geteuid() != 0) {
		snprintf(path, sizeof(path), "%s/req", dir);
		assert_int_equal(chmod(path, 0500), 0);
		c = (vgpu_client *)1;
		assert_int_equal(vgpu_connect(uri, &c), VGPU_DENIED);
		assert_ptr_equal(c, (vgpu_client *)1);
		assert_int_equal(chmod(path, 0700), 0);
	}
	remove_entry(dir, "req");
	remove_entry(dir, "resp");
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_parse_long),
		cmocka_unit_test(test_connect_errors),
		cmocka_unit_test(test_spool_connect),
	};

	return cmocka_run_group_tests_name("guest-uri", tests, NULL, NULL);
}
