/* SPDX-License-Identifier: MIT */
/*
 * prom.h - Prometheus' text exposition format (0.0.4): a label value
 * written escaped (backslash, double quote, newline), for the mediator's
 * metrics (mediator/metrics.c) and the agent's GPU figures (agent/api.c).
 */
#ifndef VGPU_PROM_H
#define VGPU_PROM_H

#include <stdio.h>

/* @s between double quotes, escaped; NULL as "". */
void vgpu_prom_label(FILE *f, const char *s);

#endif
