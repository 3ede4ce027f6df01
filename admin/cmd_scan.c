/* SPDX-License-Identifier: MIT */
/*
 * cmd_scan.c - scan-vms and status: the registry joined with what xe says is
 * on this host. A host VM matches a registry entry by UUID, else by name
 * (CloudStack recreates VMs under new UUIDs but keeps their names), which is
 * the rule vgpu-qemu-wrapper uses at start time too.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "xe.h"

/* Index into @reg of the entry for host VM @hv, or -1; *ret_by_name tells how. */
static long match(const struct xe_vm *hv, const struct vgpu_vm_config *reg, size_t n_reg,
		  bool *ret_by_name)
{
	long by_name = -1;
	int name_hits = 0;

	for (size_t i = 0; i < n_reg; i++) {
		if (strcmp(reg[i].vm_uuid, hv->uuid) == 0) {
			*ret_by_name = false;
			return (long)i;
		}
		if (reg[i].vm_name[0] && strcmp(reg[i].vm_name, hv->name_label) == 0) {
			by_name = (long)i;
			name_hits++;
		}
	}
	*ret_by_name = true;
	return name_hits == 1 ? by_name : -1;
}

struct joined {
	struct vgpu_vm_config *reg;   /* registry, by vm_id */
	size_t n_reg;
	struct xe_vm *host;           /* xe vm-list; NULL when xe failed */
	size_t n_host;
	long *host_match;             /* per host VM: registry index or -1 */
	bool *host_by_name;
	const char **reg_power;       /* per registry VM: power state or NULL */
	char xe_err[512];             /* why host is NULL */
};

static void joined_free(struct joined *j)
{
	free(j->reg);
	free(j->host);
	free(j->host_match);
	free(j->host_by_name);
	free(j->reg_power);
}

/* Read the registry and, when xe works, the host's VMs; join them. */
static int join(const struct cli *cli, vgpu_db *db, struct joined *j)
{
	int rc;

	memset(j, 0, sizeof(*j));
	rc = vgpu_list_vms(db, 0, -1, &j->reg, &j->n_reg);
	if (rc != VGPU_OK)
		return cli_fail(db, rc, "cannot list VMs");
	rc = xe_list_vms(cli->timeout_s, &j->host, &j->n_host, j->xe_err, sizeof(j->xe_err));
	if (rc != VGPU_OK)
		j->host = NULL, j->n_host = 0;
	j->host_match = calloc(j->n_host + 1, sizeof(*j->host_match));
	j->host_by_name = calloc(j->n_host + 1, sizeof(*j->host_by_name));
	j->reg_power = calloc(j->n_reg + 1, sizeof(*j->reg_power));
	if (!j->host_match || !j->host_by_name || !j->reg_power) {
		print_error("out of memory");
		return EXIT_ERROR;
	}
	for (size_t h = 0; h < j->n_host; h++)
		j->host_match[h] = match(&j->host[h], j->reg, j->n_reg, &j->host_by_name[h]);
	for (size_t h = 0; h < j->n_host; h++) {
		/* A name matches only when one host VM carries it. */
		for (size_t o = 0; o < j->n_host && j->host_by_name[h] && j->host_match[h] >= 0; o++)
			if (o != h && strcmp(j->host[o].name_label, j->host[h].name_label) == 0)
				j->host_match[h] = -1;
		if (j->host_match[h] >= 0)
			j->reg_power[j->host_match[h]] = j->host[h].power_state;
	}
	return EXIT_OK;
}

static json_t *json_host_vm(const struct joined *j, size_t h)
{
	json_t *o = json_pack("{s:s, s:o, s:o, s:b}", "vm_uuid", j->host[h].uuid,
			      "name_label", json_text(j->host[h].name_label),
			      "power_state", json_text(j->host[h].power_state),
			      "registered", j->host_match[h] >= 0);
	if (j->host_match[h] >= 0) {
		const struct vgpu_vm_config *r = &j->reg[j->host_match[h]];
		char pool[2] = { r->pool_id, '\0' };

		json_object_set_new(o, "pool_id", json_string(pool));
		json_object_set_new(o, "priority", json_integer(r->priority));
		json_object_set_new(o, "priority_name", json_string(vgpu_priority_name(r->priority)));
		json_object_set_new(o, "vm_id", json_integer(r->vm_id));
		json_object_set_new(o, "matched_by", json_string(j->host_by_name[h] ? "name" : "uuid"));
		if (j->host_by_name[h])
			json_object_set_new(o, "registered_uuid", json_string(r->vm_uuid));
	}
	return o;
}

static void print_host_group(const struct joined *j, char group)
{
	char label[XE_LABEL_MAX + 1], power[XE_POWER_MAX + 1];
	int shown = 0;

	if (group)
		printf("Pool %c\n", group);
	else
		printf("Unregistered\n");
	for (size_t h = 0; h < j->n_host; h++) {
		long m = j->host_match[h];

		if (group ? (m < 0 || j->reg[m].pool_id != group) : m >= 0)
			continue;
		if (!shown++)
			printf("  %-36s  %-8s %-10s %-8s %s\n", "UUID", "POWER", "VM_ID", "PRIORITY",
			       "NAME");
		sanitize(j->host[h].name_label, label, sizeof(label));
		sanitize(j->host[h].power_state, power, sizeof(power));
		if (m >= 0)
			printf("  %-36s  %-8s %-10d %-8s %s%s\n", j->host[h].uuid, power,
			       j->reg[m].vm_id, vgpu_priority_name(j->reg[m].priority), label,
			       j->host_by_name[h] ? "  (matched by name)" : "");
		else
			printf("  %-36s  %-8s %-10s %-8s %s\n", j->host[h].uuid, power, "-", "-",
			       label);
	}
	if (!shown)
		printf("  (none)\n");
}

/* Pools A and B are always listed; C to Z when a host VM is in them. */
static bool group_listed(const struct joined *j, char pool)
{
	if (pool == VGPU_DEFAULT_POOL || pool == VGPU_SECOND_POOL)
		return true;
	for (size_t h = 0; h < j->n_host; h++)
		if (j->host_match[h] >= 0 && j->reg[j->host_match[h]].pool_id == pool)
			return true;
	return false;
}

int cmd_scan_vms(struct cli *cli)
{
	struct joined j;
	int ex;
	vgpu_db *db = cli_open_db(cli, &ex);

	if (!db)
		return ex;
	ex = join(cli, db, &j);
	if (ex == EXIT_OK && !j.host) {
		print_error("cannot list this host's VMs: %s", j.xe_err);
		ex = EXIT_ERROR;
	}
	if (ex != EXIT_OK)
		goto out;
	if (cli->json) {
		json_t *groups = json_object();

		/* The pools 'A' .. 'Z', then the unregistered (g 0). */
		for (int i = 0; i <= 26; i++) {
			char g = i < 26 ? (char)('A' + i) : 0, name[2] = { g, '\0' };
			json_t *arr;

			if (g && !group_listed(&j, g))
				continue;
			arr = json_array();
			for (size_t h = 0; h < j.n_host; h++) {
				long m = j.host_match[h];
				bool in = !g ? m < 0 : m >= 0 && j.reg[m].pool_id == g;

				if (in)
					json_array_append_new(arr, json_host_vm(&j, h));
			}
			json_object_set_new(groups, g ? name : "unregistered", arr);
		}
		json_t *absent = json_array();
		for (size_t r = 0; r < j.n_reg; r++)
			if (!j.reg_power[r])
				json_array_append_new(absent, json_vm(&j.reg[r]));
		ex = print_json(json_pack("{s:o, s:o}", "groups", groups, "not_on_host", absent));
	} else {
		for (char g = 'A'; g <= 'Z'; g++)
			if (group_listed(&j, g))
				print_host_group(&j, g);
		print_host_group(&j, 0);
		size_t absent = 0;
		for (size_t r = 0; r < j.n_reg; r++)
			absent += !j.reg_power[r];
		if (absent)
			printf("\n%zu registered VM%s not on this host (see list-vms).\n", absent,
			       absent == 1 ? " is" : "s are");
	}
out:
	joined_free(&j);
	vgpu_db_close(db);
	return ex;
}

int cmd_status(struct cli *cli)
{
	struct vgpu_pool_info *pools = NULL;
	size_t n_pools = 0;
	struct joined j;
	int ex, rc, version = 0;
	size_t by_prio[3] = { 0 }, running = 0, halted = 0, other = 0, unknown = 0;
	vgpu_db *db = cli_open_db(cli, &ex);

	if (!db)
		return ex;
	ex = join(cli, db, &j);
	if (ex != EXIT_OK)
		goto out;
	rc = vgpu_list_pools(db, &pools, &n_pools);
	if (rc == VGPU_OK)
		rc = vgpu_db_schema_version(db, &version);
	if (rc != VGPU_OK) {
		ex = cli_fail(db, rc, "cannot read the registry");
		goto out;
	}
	for (size_t r = 0; r < j.n_reg; r++) {
		const char *p = j.reg_power[r];

		if (vgpu_priority_valid(j.reg[r].priority))
			by_prio[j.reg[r].priority]++;
		if (!j.host)
			unknown++;
		else if (!p)
			other++;
		else if (strcmp(p, "running") == 0)
			running++;
		else if (strcmp(p, "halted") == 0)
			halted++;
		else
			other++;
	}

	if (cli->json) {
		json_t *jp = json_array();

		for (size_t i = 0; i < n_pools; i++) {
			json_t *o = json_pool(&pools[i]), *vms = json_array();

			for (size_t r = 0; r < j.n_reg; r++) {
				if (j.reg[r].pool_id != pools[i].pool_id)
					continue;
				json_t *v = json_vm(&j.reg[r]);
				json_object_set_new(v, "power_state",
						    !j.host ? json_string("unknown")
						    : j.reg_power[r] ? json_text(j.reg_power[r])
								     : json_string("absent"));
				json_array_append_new(vms, v);
			}
			json_object_set_new(o, "vms", vms);
			json_array_append_new(jp, o);
		}
		json_t *summary = json_pack(
			"{s:i, s:{s:i, s:i, s:i}, s:i, s:i, s:i, s:i}", "vms", (int)j.n_reg,
			"by_priority", "high", (int)by_prio[2], "medium", (int)by_prio[1], "low",
			(int)by_prio[0], "running", (int)running, "halted", (int)halted,
			"absent_or_other", (int)other, "unknown", (int)unknown);
		json_t *med = NULL;
		char merr[512];

		if (mediator_stats(cli->run_dir, &med, merr, sizeof(merr)) != VGPU_OK)
			med = json_null();
		ex = print_json(json_pack("{s:s, s:i, s:b, s:o, s:o, s:o}", "db", cli->db_path,
					  "schema_version", version, "xe_available", j.host != NULL,
					  "pools", jp, "summary", summary, "mediator", med));
		goto out;
	}

	char dbshown[512];
	sanitize(cli->db_path, dbshown, sizeof(dbshown));
	printf("vgpu status   registry %s (schema %d)\n", dbshown, version);
	printf("==============================================================================\n");
	for (size_t i = 0; i < n_pools; i++) {
		char name[VGPU_NAME_MAX + 1];

		sanitize(pools[i].pool_name, name, sizeof(name));
		printf("\n[Pool %c] %s  -  %s, %d VM%s\n", pools[i].pool_id, name,
		       pools[i].enabled ? "enabled" : "disabled", pools[i].vm_count,
		       pools[i].vm_count == 1 ? "" : "s");
		if (!pools[i].vm_count) {
			printf("  (no VMs)\n");
			continue;
		}
		printf("  %-10s %-8s %-8s %-36s  %s\n", "VM_ID", "PRIORITY", "POWER", "UUID", "NAME");
		for (size_t r = 0; r < j.n_reg; r++) {
			if (j.reg[r].pool_id != pools[i].pool_id)
				continue;
			char power[XE_POWER_MAX + 1];
			sanitize(!j.host ? "unknown" : j.reg_power[r] ? j.reg_power[r] : "absent",
				 power, sizeof(power));
			sanitize(j.reg[r].vm_name, name, sizeof(name));
			printf("  %-10d %-8s %-8s %-36s  %s\n", j.reg[r].vm_id,
			       vgpu_priority_name(j.reg[r].priority), power, j.reg[r].vm_uuid,
			       *name ? name : "-");
		}
	}
	printf("\nSummary: %zu VM%s registered (high %zu, medium %zu, low %zu)", j.n_reg,
	       j.n_reg == 1 ? "" : "s", by_prio[2], by_prio[1], by_prio[0]);
	if (j.host)
		printf("; %zu running, %zu halted, %zu absent or other\n", running, halted, other);
	else
		printf("\nPower states unknown: %s\n", j.xe_err);

	json_t *med;
	char merr[512];
	printf("\n");
	if (mediator_stats(cli->run_dir, &med, merr, sizeof(merr)) == VGPU_OK) {
		print_mediator_stats(med);
		json_decref(med);
	} else {
		printf("Mediator: %s\n", merr);
	}
	ex = EXIT_OK;
out:
	free(pools);
	joined_free(&j);
	vgpu_db_close(db);
	return ex;
}
