/* SPDX-License-Identifier: MIT */
/*
 * schema.h - the registry's migrations, generated from schema/NNN_*.sql.
 * vgpu_schema_migrations[i] takes the schema from version i to i + 1.
 */
#ifndef VGPU_SCHEMA_H
#define VGPU_SCHEMA_H

extern const char *const vgpu_schema_migrations[];
extern const int vgpu_schema_migration_count;

#endif
