/* SPDX-License-Identifier: MIT */
/*
 * prom.c - Prometheus label values (prom.h).
 */
#include "prom.h"

void vgpu_prom_label(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		if (*s == '\n') {
			fputs("\\n", f);
			continue;
		}
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
}
