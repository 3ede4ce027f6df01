/* SPDX-License-Identifier: MIT */
/*
 * test_exec.c - vgpu_exec from common/exec.h: stdout, stderr and exit status
 * captured; arguments passed verbatim (no shell); stdin is /dev/null; a
 * missing program is VGPU_NOT_FOUND and a non-executable one VGPU_DENIED;
 * the deadline kills the whole process group (grandchildren too, SIGKILL when
 * SIGTERM is ignored) and returns promptly; output past max_bytes is dropped
 * and flagged; no file descriptor or child is left behind.
 *
 * The children are crafted with /bin/sh -c here, in the test only.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "exec.h"
#include "vgpu_error.h"

#define MAX_BYTES 65536

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* No child of ours is left, running or unreaped. */
static void assert_no_children(void)
{
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

/* Whether @pid has ended (gone, or a zombie waiting for init), waiting up
 * to @seconds for it. */
static bool process_ended(pid_t pid, double seconds)
{
	double until = now_s() + seconds;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (;;) {
		FILE *f = fopen(path, "re");
		char buf[512] = "";
		char *paren;

		if (!f)
			return true;
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
		paren = strrchr(buf, ')');
		if (paren && (paren[2] == 'Z' || paren[2] == 'X'))
			return true;
		if (now_s() > until)
			return false;
		usleep(20 * 1000);
	}
}

static void captures_output_and_status(void **state)
{
	const char *const argv[] = { "/bin/sh", "-c",
				     "printf 'out\\nline2'; printf 'err' >&2; exit 3", NULL };
	struct vgpu_exec_result r;
	(void)state;

	memset(&r, 0, sizeof(r));
	assert_int_equal(vgpu_exec(argv, 5000, MAX_BYTES, &r), VGPU_OK);
	assert_int_equal(r.status, 3);
	assert_string_equal(r.out, "out\nline2");
	assert_int_equal(r.out_len, 9);
	assert_string_equal(r.err, "err");
	assert_int_equal(r.err_len, 3);
	assert_false(r.truncated);
	vgpu_exec_result_free(&r);
	assert_null(r.out);
	assert_null(r.err);

	/* Success, with nothing written, found on PATH. */
	const char *const ok[] = { "true", NULL };
	assert_int_equal(vgpu_exec(ok, 5000, MAX_BYTES, &r), VGPU_OK);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "");
	assert_int_equal(r.out_len, 0);
	assert_string_equal(r.err, "");
	vgpu_exec_result_free(&r);

	/* Death by a signal is 128 + the signal. */
	const char *const killed[] = { "/bin/sh", "-c", "kill -KILL $$", NULL };
	assert_int_equal(vgpu_exec(killed, 5000, MAX_BYTES, &r), VGPU_OK);
	assert_int_equal(r.status, 128 + SIGKILL);
	vgpu_exec_result_free(&r);
	assert_no_children();
}

static void arguments_are_not_shell_words(void **state)
{
	const char *const argv[] = { "printf", "%s|", "a b", "$HOME", "*;rm -rf x", "`id`", "",
				     NULL };
	struct vgpu_exec_result r;
	(void)state;

	assert_int_equal(vgpu_exec(argv, 5000, MAX_BYTES, &r), VGPU_OK);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "a b|$HOME|*;rm -rf x|`id`||");
	vgpu_exec_result_free(&r);
}

static void stdin_is_dev_null(void **state)
{
	const char *const argv[] = { "cat", NULL };
	struct vgpu_exec_result r;
	double start = now_s();
	(void)state;

	assert_int_equal(vgpu_exec(argv, 5000, MAX_BYTES, &r), VGPU_OK);
	assert_true(now_s() - start < 2.0);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.out_len, 0);
	vgpu_exec_result_free(&r);
}

static void missing_program(void **state)
{
	const char *const abs[] = { "/nonexistent/vgpu-test-prog", NULL };
	const char *const on_path[] = { "vgpu-test-no-such-program", "x", NULL };
	struct vgpu_exec_result r;
	(void)state;

	memset(&r, 0x7e, sizeof(r));
	assert_int_equal(vgpu_exec(abs, 5000, MAX_BYTES, &r), VGPU_NOT_FOUND);
	/* execvp reports EACCES when any PATH entry cannot be searched (for an
	 * unprivileged user, /root/... often): search only system directories. */
	char *saved = strdup(getenv("PATH") ? getenv("PATH") : "");
	assert_non_null(saved);
	assert_int_equal(setenv("PATH", "/usr/bin:/bin", 1), 0);
	int rc = vgpu_exec(on_path, 5000, MAX_BYTES, &r);
	setenv("PATH", saved, 1);
	free(saved);
	assert_int_equal(rc, VGPU_NOT_FOUND);
	/* *ret is not written on failure. */
	assert_int_equal(r.status, 0x7e7e7e7e);
	assert_no_children();
}

static void not_executable(void **state)
{
	char *dir = *state;
	char *script = th_join(dir, "script.sh");
	const char *const argv[] = { script, NULL };
	const char *const dir_argv[] = { dir, NULL };
	struct vgpu_exec_result r;

	th_write_file(script, "#!/bin/sh\necho ran\n", 19);
	assert_int_equal(chmod(script, 0644), 0);
	assert_int_equal(vgpu_exec(argv, 5000, MAX_BYTES, &r), VGPU_DENIED);
	assert_int_equal(vgpu_exec(dir_argv, 5000, MAX_BYTES, &r), VGPU_DENIED);
	/* The same file once executable runs. */
	assert_int_equal(chmod(script, 0755), 0);
	assert_int_equal(vgpu_exec(argv, 5000, MAX_BYTES, &r), VGPU_OK);
	assert_string_equal(r.out, "ran\n");
	vgpu_exec_result_free(&r);
	assert_no_children();
	free(script);
}

static void timeout_kills_promptly(void **state)
{
	const char *const argv[] = { "sleep", "30", NULL };
	struct vgpu_exec_result r;
	double start = now_s(), took;
	(void)state;

	assert_int_equal(vgpu_exec(argv, 300, MAX_BYTES, &r), VGPU_TIMEOUT);
	took = now_s() - start;
	assert_true(took >= 0.25);
	assert_true(took < 2.0);
	assert_int_equal(r.status, 128 + SIGTERM);
	assert_non_null(r.out);
	vgpu_exec_result_free(&r);
	assert_no_children();
}

/* Run @script (which prints a grandchild's pid first) under a 300 ms deadline
 * and check that the grandchild dies with it. */
static void assert_group_killed(const char *script, int want_status, double max_s)
{
	const char *const argv[] = { "/bin/sh", "-c", script, NULL };
	struct vgpu_exec_result r;
	double start = now_s(), took;
	int grandchild;

	assert_int_equal(vgpu_exec(argv, 300, MAX_BYTES, &r), VGPU_TIMEOUT);
	took = now_s() - start;
	assert_true(took < max_s);
	assert_int_equal(r.status, want_status);
	/* What was captured before the deadline is kept. */
	assert_int_equal(sscanf(r.out, "%d", &grandchild), 1);
	assert_true(grandchild > 1);
	assert_true(process_ended(grandchild, 2.0));
	vgpu_exec_result_free(&r);
	assert_no_children();
}

static void timeout_kills_grandchildren(void **state)
{
	(void)state;
	assert_group_killed("sleep 30 & echo $!; wait", 128 + SIGTERM, 2.0);
}

static void timeout_escalates_to_sigkill(void **state)
{
	(void)state;
	/* The shell and its sleep ignore SIGTERM: SIGKILL follows a second later. */
	assert_group_killed("trap '' TERM; sleep 30 & echo $!; wait; wait; sleep 30",
			    128 + SIGKILL, 2.5);
}

static void output_truncated_at_max_bytes(void **state)
{
	const char *const big[] = {
		"/bin/sh", "-c",
		"head -c 100000 /dev/zero | tr '\\0' x; head -c 5000 /dev/zero | tr '\\0' y >&2",
		NULL,
	};
	const char *const exact[] = { "/bin/sh", "-c", "head -c 1000 /dev/zero | tr '\\0' x", NULL };
	struct vgpu_exec_result r;
	(void)state;

	/* The writer is not blocked by the limit: it runs to its end, status 0. */
	assert_int_equal(vgpu_exec(big, 10000, 1000, &r), VGPU_OK);
	assert_int_equal(r.status, 0);
	assert_true(r.truncated);
	assert_int_equal(r.out_len, 1000);
	assert_int_equal(strlen(r.out), 1000);
	assert_int_equal(strspn(r.out, "x"), 1000);
	assert_int_equal(r.err_len, 1000);
	assert_int_equal(strspn(r.err, "y"), 1000);
	vgpu_exec_result_free(&r);

	assert_int_equal(vgpu_exec(exact, 10000, 1000, &r), VGPU_OK);
	assert_false(r.truncated);
	assert_int_equal(r.out_len, 1000);
	vgpu_exec_result_free(&r);

	assert_int_equal(vgpu_exec(big, 10000, 1 << 20, &r), VGPU_OK);
	assert_false(r.truncated);
	assert_int_equal(r.out_len, 100000);
	assert_int_equal(r.err_len, 5000);
	vgpu_exec_result_free(&r);

	/* max_bytes 0 keeps nothing. */
	assert_int_equal(vgpu_exec(exact, 10000, 0, &r), VGPU_OK);
	assert_true(r.truncated);
	assert_int_equal(r.out_len, 0);
	assert_string_equal(r.out, "");
	vgpu_exec_result_free(&r);
}

static void bad_arguments(void **state)
{
	const char *const empty[] = { NULL };
	const char *const ok[] = { "true", NULL };
	struct vgpu_exec_result r;
	(void)state;

	assert_int_equal(vgpu_exec(NULL, 1000, 10, &r), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_exec(empty, 1000, 10, &r), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_exec(ok, 1000, 10, NULL), VGPU_INVALID_PARAM);
	vgpu_exec_result_free(NULL);
	memset(&r, 0, sizeof(r));
	vgpu_exec_result_free(&r);
	assert_no_children();
}

static void nothing_leaks(void **state)
{
	const char *const argv[] = { "/bin/sh", "-c", "echo hi; echo ho >&2; exit 1", NULL };
	const char *const missing[] = { "/nonexistent/x", NULL };
	const char *const slow[] = { "sleep", "5", NULL };
	struct vgpu_exec_result r;
	int before = count_fds();
	(void)state;

	for (int i = 0; i < 20; i++) {
		assert_int_equal(vgpu_exec(argv, 5000, 64, &r), VGPU_OK);
		assert_string_equal(r.out, "hi\n");
		assert_string_equal(r.err, "ho\n");
		assert_int_equal(r.status, 1);
		vgpu_exec_result_free(&r);
		assert_int_equal(vgpu_exec(missing, 5000, 64, &r), VGPU_NOT_FOUND);
	}
	assert_int_equal(vgpu_exec(slow, 50, 64, &r), VGPU_TIMEOUT);
	vgpu_exec_result_free(&r);
	assert_int_equal(count_fds(), before);
	assert_no_children();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(captures_output_and_status),
		cmocka_unit_test(arguments_are_not_shell_words),
		cmocka_unit_test(stdin_is_dev_null),
		cmocka_unit_test(missing_program),
		cmocka_unit_test_setup_teardown(not_executable, th_dir_setup, th_dir_teardown),
		cmocka_unit_test(timeout_kills_promptly),
		cmocka_unit_test(timeout_kills_grandchildren),
		cmocka_unit_test(timeout_escalates_to_sigkill),
		cmocka_unit_test(output_truncated_at_max_bytes),
		cmocka_unit_test(bad_arguments),
		cmocka_unit_test(nothing_leaks),
	};

	return cmocka_run_group_tests_name("exec", tests, NULL, NULL);
}
