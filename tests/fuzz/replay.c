/* SPDX-License-Identifier: MIT */
/*
 * replay.c - runs a libFuzzer harness over its committed corpus without
 * libFuzzer, so that `make test` replays every corpus with gcc and the
 * sanitizers. With -Dfuzzing=true the harnesses link libFuzzer instead.
 * usage: HARNESS FILE|DIR...
 *
 * Each input gets an allocation of exactly its size, as libFuzzer gives it,
 * so that ASan reports a harness reading past its input's end; a larger
 * buffer would hide that. An input over REPLAY_MAX_INPUT is refused, never
 * cut short.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Far above any corpus file (a few KiB), far below what hurts to allocate. */
#define REPLAY_MAX_INPUT (64u << 20)

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	uint8_t *buf;
	size_t size;

	if (!f) {
		perror(path);
		return -1;
	}
	if (fstat(fileno(f), &st) != 0) {
		perror(path);
		fclose(f);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > (off_t)REPLAY_MAX_INPUT) {
		if (S_ISREG(st.st_mode))
			fprintf(stderr, "%s: %lld bytes, over the %u this replay takes\n",
				path, (long long)st.st_size, REPLAY_MAX_INPUT);
		else
			fprintf(stderr, "%s: not a regular file\n", path);
		fclose(f);
		return -1;
	}
	size = (size_t)st.st_size;
	/* An empty input is the end of a 1-byte allocation: ASan's malloc(0)
	 * would leave one byte readable. */
	buf = malloc(size > 0 ? size : 1);
	if (!buf) {
		fprintf(stderr, "%s: out of memory for %zu bytes\n", path, size);
		fclose(f);
		return -1;
	}
	if (fread(buf, 1, size, f) != size || fgetc(f) != EOF) {
		fprintf(stderr, "%s: changed or unreadable while read\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(size > 0 ? buf : buf + 1, size);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	int count = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) != 0) {
			perror(argv[i]);
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (replay_file(argv[i]) != 0)
				return 1;
			count++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		struct dirent *e;

		if (!d) {
			perror(argv[i]);
			return 1;
		}
		while ((e = readdir(d))) {
			char path[4096];

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			if (replay_file(path) != 0) {
				closedir(d);
				return 1;
			}
			count++;
		}
		closedir(d);
	}
	if (count == 0) {
		fprintf(stderr, "no inputs replayed\n");
		return 1;
	}
	printf("replayed %d inputs\n", count);
	return 0;
}
