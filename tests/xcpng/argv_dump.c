/* SPDX-License-Identifier: MIT */
/*
 * argv_dump.c - stands in for XCP-ng's stock qemu-wrapper in the tests of
 * vgpu-qemu-wrapper: writes its whole argument vector, argv[0] included, to
 * the file $ARGV_DUMP_FILE, each argument followed by a NUL byte, so that a
 * test can compare the exact vector with cmp(1). When $ARGV_DUMP_SIGIGN is
 * set it also copies the SigIgn mask of /proc/self/status (the signals it
 * was started with ignored) to that file, and when $ARGV_DUMP_FDS is set the
 * numbers of its open descriptors, one a line. Exits 0.
 *
 * Must never: run anything else, or exit 0 when a dump was not written.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int dump_sigign(const char *path)
{
	char line[256];
	FILE *in = fopen("/proc/self/status", "re"), *out;
	int rc = 1;

	if (!in)
		return 1;
	out = fopen(path, "we");
	while (out && fgets(line, sizeof(line), in)) {
		if (strncmp(line, "SigIgn:", 7) == 0) {
			fputs(line + 7 + strspn(line + 7, " \t"), out);
			rc = 0;
		}
	}
	if (!out || fclose(out) != 0)
		rc = 1;
	fclose(in);
	return rc;
}

static int dump_fds(const char *path)
{
	DIR *d = opendir("/proc/self/fd");
	FILE *out = fopen(path, "we");
	struct dirent *e;
	int rc = d && out ? 0 : 1;

	/* The two descriptors opened here are close-on-exec and left out. */
	while (!rc && (e = readdir(d)))
		if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d) &&
		    atoi(e->d_name) != fileno(out))
			fprintf(out, "%s\n", e->d_name);
	if (d)
		closedir(d);
	if (out && fclose(out) != 0)
		rc = 1;
	return rc;
}

int main(int argc, char **argv)
{
	const char *path = getenv("ARGV_DUMP_FILE");
	const char *sigign = getenv("ARGV_DUMP_SIGIGN");
	const char *fds = getenv("ARGV_DUMP_FDS");
	FILE *f;

	if (fds && *fds && dump_fds(fds) != 0) {
		perror(fds);
		return 1;
	}

	if (!path || !*path) {
		fprintf(stderr, "argv-dump: ARGV_DUMP_FILE is not set\n");
		return 1;
	}
	if (sigign && *sigign && dump_sigign(sigign) != 0) {
		perror(sigign);
		return 1;
	}
	f = fopen(path, "we");
	if (!f) {
		perror(path);
		return 1;
	}
	for (int i = 0; i < argc; i++)
		fwrite(argv[i], 1, strlen(argv[i]) + 1, f);
	if (fclose(f) != 0) {
		perror(path);
		return 1;
	}
	return 0;
}
