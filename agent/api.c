/* SPDX-License-Identifier: MIT */
/*
 * api.c - the host agent's routes (docs/api.md):
 *
 *   GET    /v1/health              the agent, the registry and the mediator
 *   GET    /v1/host                this host: name, versions, GPUs, pools, VMs
 *   GET    /v1/gpus                each GPU: busy time, load, work in flight, pools
 *   GET    /v1/pools               the pools (vgpu-admin list-pools --json), live GPU time
 *   POST   /v1/pools               create one (create-pool)
 *   GET    /v1/pools/{A-Z}         one pool
 *   PATCH  /v1/pools/{A-Z}         change it (update-pool)
 *   DELETE /v1/pools/{C-Z}         delete it (delete-pool)
 *   GET    /v1/vms                 the VMs (list-vms --json), each with its live figures
 *   POST   /v1/vms                 register one (register-vm)
 *   GET    /v1/vms/{uuid}          one VM
 *   PATCH  /v1/vms/{uuid}          change its name, pool, priority, weight, rate
 *                                  limit, memory quota (live, as set-pool,
 *                                  set-priority and set-sched)
 *   DELETE /v1/vms/{uuid}          remove it (remove-vm)
 *   GET    /metrics                Prometheus' text (the mediator's metrics)
 *
 * The registry is changed through the same library calls as vgpu-admin's,
 * with the same checks: values are validated with the library's
 * validators and ranges before anything is written, and the library's
 * errors map to statuses as vgpu-admin maps them to exit codes (invalid:
 * 400, not found: 404, exists / in use / ambiguous: 409, else 500).
 * Bodies are JSON objects without duplicate keys; an unknown field, a
 * value of the wrong type or out of range is a 400 that names it, and
 * nothing changes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "admin_shared.h"
#include "agent.h"
#include "nvml.h"
#include "prom.h"

#define JSON_TYPE "application/json"
#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

static void reply_text(struct agent_reply *r, unsigned status, const char *type, char *body)
{
	r->status = status;
	r->type = type;
	r->body = body;
}

/* A JSON reply (steals @doc). */
static void reply_json(struct agent_reply *r, unsigned status, json_t *doc)
{
	char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;

	json_decref(doc);
	if (!text) {
		reply_text(r, 500, JSON_TYPE, strdup("{\"error\": \"out of memory\"}\n"));
		return;
	}
	size_t n = strlen(text);
	char *body = realloc(text, n + 2);

	if (body) {
		body[n] = '\n';
		body[n + 1] = '\0';
		text = body;
	}
	reply_text(r, status, JSON_TYPE, text);
}

static void __attribute__((format(printf, 3, 4)))
reply_error(struct agent_reply *r, unsigned status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	reply_json(r, status, json_pack("{s:o}", "error", json_text(msg)));
}

/* The status for a library error, as vgpu-admin's exit code for it. */
static unsigned status_of(int rc)
{
	switch (rc) {
	case VGPU_INVALID_PARAM:
		return 400;
	case VGPU_NOT_FOUND:
		return 404;
	case VGPU_EXISTS:
	case VGPU_AMBIGUOUS:
	case VGPU_BUSY:
		return 409;
	default:
		return 500;
	}
}

static void reply_lib(struct agent_reply *r, struct agent *a, int rc, const char *what)
{
	const char *msg = a->db ? vgpu_db_errmsg(a->db) : "";

	reply_error(r, status_of(rc), "%s: %s", what, *msg ? msg : vgpu_strerror(rc));
}

/* The registry, opened once (created with its schema when missing, as
 * vgpu-admin does). */
static bool db_open(struct agent *a, struct agent_reply *r)
{
	char err[512];

	if (a->db)
		return true;
	if (vgpu_db_init(a->db_path, 0, &a->db, err, sizeof(err)) != VGPU_OK) {
		a->db = NULL;
		reply_error(r, 500, "the registry: %s", err);
		return false;
	}
	return true;
}

/* ---- bodies ------------------------------------------------------------ */

/* @body as a JSON object of at least one key, each among @allowed
 * (NULL-ended). */
static json_t *body_object(const char *body, size_t len, const char *const *allowed,
			   struct agent_reply *r)
{
	json_error_t jerr;
	json_t *doc, *v;
	const char *key;

	doc = body && len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
	if (!doc) {
		reply_error(r, 400, len ? "the body is not JSON: %s" : "a JSON object is needed",
			    len ? jerr.text : "");
		return NULL;
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		reply_error(r, 400, "the body must be a JSON object");
		return NULL;
	}
	json_object_foreach(doc, key, v) {
		bool known = false;

		for (size_t i = 0; allowed[i] && !known; i++)
			known = strcmp(key, allowed[i]) == 0;
		if (!known) {
			char safe[64];

			sanitize(key, safe, sizeof(safe));
			if (strcmp(key, "vm_id") == 0)
				reply_error(r, 400, "vm_id cannot change here: a new vm_id restarts a "
						    "running VM (vgpu-admin set-vm-id)");
			else
				reply_error(r, 400, "unknown field \"%s\"", safe);
			json_decref(doc);
			return NULL;
		}
	}
	if (json_object_size(doc) == 0) {
		json_decref(doc);
		reply_error(r, 400, "an empty object: give at least one field");
		return NULL;
	}
	return doc;
}

/* Field @key of @o as a string, if there: *@out; false (and a 400) when
 * it is there and not a string. */
static bool get_string(json_t *o, const char *key, const char **out, struct agent_reply *r)
{
	json_t *v = json_object_get(o, key);

	*out = NULL;
	if (!v)
		return true;
	if (!json_is_string(v)) {
		reply_error(r, 400, "%s must be a string", key);
		return false;
	}
	*out = json_string_value(v);
	return true;
}

/* Field @key of @o as an integer in @min..@max, if there (*@given). */
static bool get_int(json_t *o, const char *key, long long min, long long max, long long *out,
		    bool *given, struct agent_reply *r)
{
	json_t *v = json_object_get(o, key);

	*given = v != NULL;
	if (!v)
		return true;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		reply_error(r, 400, "%s must be an integer in %lld..%lld", key, min, max);
		return false;
	}
	*out = json_integer_value(v);
	return true;
}

/* A name (a VM's, a pool's): the registry's rule. */
static bool valid_name(const char *key, const char *s, bool empty_ok, struct agent_reply *r)
{
	if (!s || ((*s || empty_ok) && vgpu_name_valid(s)))
		return true;
	reply_error(r, 400, "%s: %s bytes of printable UTF-8, no control characters", key,
		    empty_ok ? "at most 255" : "1 to 255");
	return false;
}

/* "priority": "low", "medium", "high" or 0..2; -1 when absent. */
static bool get_priority(json_t *o, int *out, struct agent_reply *r)
{
	json_t *v = json_object_get(o, "priority");

	*out = -1;
	if (!v)
		return true;
	if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 2) {
		*out = (int)json_integer_value(v);
		return true;
	}
	if (json_is_string(v) && vgpu_priority_parse(json_string_value(v), out) == VGPU_OK)
		return true;
	reply_error(r, 400, "priority must be low, medium, high, or 0, 1, 2");
	return false;
}

/* "pool_id": one letter; 0 when absent. */
static bool get_pool_id(json_t *o, char *out, struct agent_reply *r)
{
	const char *s;

	*out = 0;
	if (!get_string(o, "pool_id", &s, r))
		return false;
	if (s && vgpu_pool_id_parse(s, out) != VGPU_OK) {
		reply_error(r, 400, "pool_id must be one letter A to Z");
		return false;
	}
	return true;
}

/* ---- live figures ------------------------------------------------------ */

/* The mediator's statistics, or NULL (and why in @err). */
static json_t *live(struct agent *a, char *err, size_t err_size)
{
	json_t *doc = NULL;

	return mediator_stats(a->run_dir, &doc, err, err_size) == VGPU_OK ? doc : NULL;
}

/* The entry of the stats' @what array whose @key is @value, a new reference. */
static json_t *live_entry(json_t *stats, const char *what, const char *key, const char *value)
{
	json_t *o;
	size_t i;

	json_array_foreach(json_object_get(stats, what), i, o) {
		const char *s = json_string_value(json_object_get(o, key));

		if (s && strcmp(s, value) == 0)
			return json_incref(o);
	}
	return json_null();
}

/* ---- routes ------------------------------------------------------------ */

static void get_health(struct agent *a, struct agent_reply *r)
{
	char err[512] = "";
	json_t *stats = live(a, err, sizeof(err));
	char dberr[512] = "";
	bool db_ok = a->db || vgpu_db_init(a->db_path, 0, &a->db, dberr, sizeof(dberr)) == VGPU_OK;
	json_t *med = stats ? json_incref(json_object_get(stats, "mediator")) : json_null();

	struct agent_gpu nv[AGENT_GPUS_MAX];
	const char *why;
	int n_nv = agent_nvml_gpus(nv, AGENT_GPUS_MAX, &why);

	if (!db_ok)
		a->db = NULL;
	/* NVML is not needed to serve (a host without NVIDIA's driver runs
	 * the CPU backend): it does not make the agent degraded. */
	reply_json(r, stats && db_ok ? 200 : 503,
		   json_pack("{s:s, s:s, s:{s:b, s:o, s:o?}, s:{s:b, s:s, s:o}, s:{s:b, s:i, s:o}}",
			     "status", stats && db_ok ? "ok" : "degraded", "agent_version",
			     VGPU_VERSION, "mediator", "up", stats != NULL, "error",
			     stats ? json_null() : json_text(err), "figures", med, "registry", "up",
			     db_ok, "path", a->db_path, "error",
			     db_ok ? json_null() : json_text(dberr), "nvml", "up", n_nv >= 0, "gpus",
			     n_nv > 0 ? n_nv : 0, "error", why ? json_text(why) : json_null()));
	json_decref(stats);
}

/* The pools as the registry has them, each with its live GPU time. */
static json_t *pools_json(struct agent *a, json_t *stats, struct agent_reply *r)
{
	struct vgpu_pool_info *pools;
	size_t n;
	int rc = vgpu_list_pools(a->db, &pools, &n);
	json_t *arr;

	if (rc != VGPU_OK) {
		reply_lib(r, a, rc, "cannot list the pools");
		return NULL;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		char id[2] = { pools[i].pool_id, '\0' };
		json_t *p = json_pool(&pools[i]);

		json_object_set_new(p, "live", live_entry(stats, "pools", "pool_id", id));
		json_array_append_new(arr, p);
	}
	free(pools);
	return arr;
}

static void get_host(struct agent *a, struct agent_reply *r)
{
	char host[256] = "", err[512];
	json_t *stats = live(a, err, sizeof(err)), *pools = NULL;
	struct vgpu_vm_config *vms;
	size_t n_vms = 0;
	int rc;

	if (db_open(a, r))
		pools = pools_json(a, stats, r);
	if (!pools) {
		json_decref(stats);
		return;
	}
	rc = vgpu_list_vms(a->db, 0, -1, &vms, &n_vms);
	if (rc != VGPU_OK) {
		json_decref(pools);
		json_decref(stats);
		reply_lib(r, a, rc, "cannot list the VMs");
		return;
	}
	free(vms);
	gethostname(host, sizeof(host) - 1);
	reply_json(r, 200,
		   json_pack("{s:o, s:s, s:o?, s:o?, s:o, s:I, s:s}", "hostname", json_text(host),
			     "agent_version", VGPU_VERSION, "mediator",
			     stats ? json_incref(json_object_get(stats, "mediator")) : json_null(),
			     "gpus", stats ? json_incref(json_object_get(stats, "gpus")) : json_array(),
			     "pools", pools, "vm_count", (json_int_t)n_vms, "registry", a->db_path));
	json_decref(stats);
}

/* NVML's figures of GPU @i into @o (when NVML knows it). */
static void add_nvml(json_t *o, const struct agent_gpu *g)
{
	json_object_set_new(o, "model", g && *g->name ? json_text(g->name) : json_null());
	json_object_set_new(o, "bus_id", g && *g->bus_id ? json_text(g->bus_id) : json_null());
	json_object_set_new(o, "memory_total_bytes",
			    g && g->memory_known ? json_integer((json_int_t)g->memory_total)
						 : json_null());
	json_object_set_new(o, "memory_used_bytes",
			    g && g->memory_known ? json_integer((json_int_t)g->memory_used)
						 : json_null());
	json_object_set_new(o, "utilization_percent",
			    g && g->util_gpu >= 0 ? json_integer(g->util_gpu) : json_null());
}

/* Each GPU: what the mediator serves (its busy time, load, works in
 * flight), what NVML says of it (model, PCI address, memory,
 * utilisation), and the pools that may use it. */
static void get_gpus(struct agent *a, struct agent_reply *r)
{
	char err[512];
	json_t *stats = live(a, err, sizeof(err)), *out;
	json_t *served = json_object_get(stats, "gpus");
	struct vgpu_pool_info *pools;
	struct agent_gpu nv[AGENT_GPUS_MAX];
	const char *why;
	int n_nv = agent_nvml_gpus(nv, AGENT_GPUS_MAX, &why);
	size_t n, count = json_array_size(served);
	int rc;

	if (n_nv > 0 && (size_t)n_nv > count)
		count = (size_t)n_nv;
	if (count == 0) {
		reply_error(r, 503, "no GPU known: %s; %s", stats ? "the mediator serves none" : err,
			    why ? why : "NVML lists none");
		json_decref(stats);
		return;
	}
	if (!db_open(a, r)) {
		json_decref(stats);
		return;
	}
	rc = vgpu_list_pools(a->db, &pools, &n);
	if (rc != VGPU_OK) {
		json_decref(stats);
		reply_lib(r, a, rc, "cannot list the pools");
		return;
	}
	out = json_array();
	for (size_t i = 0; i < count; i++) {
		json_t *g = json_array_get(served, i);
		json_t *o = g ? json_deep_copy(g) : json_pack("{s:I}", "gpu", (json_int_t)i);
		json_t *ids = json_array();

		for (size_t k = 0; k < n; k++)
			if (pools[k].gpus == 0 || (i < 32 && (pools[k].gpus >> i & 1))) {
				char id[2] = { pools[k].pool_id, '\0' };

				json_array_append_new(ids, json_string(id));
			}
		json_object_set_new(o, "pools", ids);
		json_object_set_new(o, "served", json_boolean(g != NULL));
		add_nvml(o, (int)i < n_nv && nv[i].known ? &nv[i] : NULL);
		json_array_append_new(out, o);
	}
	free(pools);
	json_decref(stats);
	reply_json(r, 200, out);
}

static void get_pools(struct agent *a, struct agent_reply *r)
{
	char err[512];
	json_t *stats = live(a, err, sizeof(err)), *pools = NULL;

	if (db_open(a, r))
		pools = pools_json(a, stats, r);
	if (pools)
		reply_json(r, 200, pools);
	json_decref(stats);
}

static void get_pool(struct agent *a, char id, struct agent_reply *r)
{
	struct vgpu_pool_info info;
	char err[512], s[2] = { id, '\0' };
	json_t *stats, *p;
	int rc;

	if (!db_open(a, r))
		return;
	rc = vgpu_get_pool_info(a->db, id, &info);
	if (rc != VGPU_OK) {
		reply_lib(r, a, rc, "cannot show the pool");
		return;
	}
	stats = live(a, err, sizeof(err));
	p = json_pool(&info);
	json_object_set_new(p, "live", live_entry(stats, "pools", "pool_id", s));
	json_decref(stats);
	reply_json(r, 200, p);
}

static const char *const pool_fields[] = { "pool_id", "pool_name", "description", "weight",
					   "cap_percent", "gpus", NULL };

/* A pool's settings from @o (create: @id from it too), checked. */
static bool pool_settings(json_t *o, struct vgpu_pool_settings *st, struct agent_reply *r)
{
	const char *gpus;
	long long v;
	bool given;
	unsigned mask;

	if (!get_string(o, "pool_name", &st->pool_name, r) ||
	    !valid_name("pool_name", st->pool_name, false, r) ||
	    !get_string(o, "description", &st->description, r))
		return false;
	if (st->description && !vgpu_text_valid(st->description, VGPU_DESCRIPTION_MAX)) {
		reply_error(r, 400, "description: at most 1023 bytes of printable UTF-8, no control "
				    "characters");
		return false;
	}
	if (!get_int(o, "weight", VGPU_WEIGHT_MIN, VGPU_WEIGHT_MAX, &v, &given, r))
		return false;
	if (given)
		st->weight = (int)v;
	if (!get_int(o, "cap_percent", VGPU_CAP_PERCENT_MIN, VGPU_CAP_PERCENT_MAX, &v, &given, r))
		return false;
	if (given)
		st->cap_percent = (int)v;
	if (!get_string(o, "gpus", &gpus, r))
		return false;
	if (gpus) {
		if (vgpu_gpus_parse(gpus, &mask) != VGPU_OK) {
			reply_error(r, 400, "gpus must be all, or GPU numbers 0..31 separated by "
					    "commas");
			return false;
		}
		st->gpus = mask;
	}
	return true;
}

static void post_pool(struct agent *a, const char *body, size_t len, struct agent_reply *r)
{
	struct vgpu_pool_settings st = VGPU_POOL_SETTINGS_INIT;
	json_t *o = body_object(body, len, pool_fields, r);
	char id;
	int rc;

	if (!o)
		return;
	if (get_pool_id(o, &id, r) && !id)
		reply_error(r, 400, "pool_id is needed");
	else if (id && pool_settings(o, &st, r) && db_open(a, r)) {
		rc = vgpu_create_pool(a->db, id, &st);
		if (rc == VGPU_OK) {
			get_pool(a, id, r);
			if (r->status == 200)
				r->status = 201;
		} else
			reply_lib(r, a, rc, "cannot create the pool");
	}
	json_decref(o);
}

static void patch_pool(struct agent *a, char id, const char *body, size_t len,
		       struct agent_reply *r)
{
	struct vgpu_pool_settings st = VGPU_POOL_SETTINGS_INIT;
	json_t *o = body_object(body, len, pool_fields + 1, r);
	int rc;

	if (!o)
		return;
	if (pool_settings(o, &st, r) && db_open(a, r)) {
		rc = vgpu_update_pool(a->db, id, &st);
		if (rc == VGPU_OK)
			get_pool(a, id, r);
		else
			reply_lib(r, a, rc, "cannot change the pool");
	}
	json_decref(o);
}

static void delete_pool(struct agent *a, char id, struct agent_reply *r)
{
	int rc;

	if (!db_open(a, r))
		return;
	rc = vgpu_delete_pool(a->db, id);
	if (rc == VGPU_OK)
		reply_text(r, 204, JSON_TYPE, strdup(""));
	else
		reply_lib(r, a, rc, "cannot delete the pool");
}

/* A VM's registry entry with its live figures. */
static json_t *vm_json(const struct vgpu_vm_config *vm, json_t *stats)
{
	json_t *o = json_vm(vm);

	json_object_set_new(o, "live", live_entry(stats, "vms", "vm_uuid", vm->vm_uuid));
	return o;
}

static void get_vms(struct agent *a, struct agent_reply *r)
{
	struct vgpu_vm_config *vms;
	char err[512];
	json_t *stats, *arr;
	size_t n;
	int rc;

	if (!db_open(a, r))
		return;
	rc = vgpu_list_vms(a->db, 0, -1, &vms, &n);
	if (rc != VGPU_OK) {
		reply_lib(r, a, rc, "cannot list the VMs");
		return;
	}
	stats = live(a, err, sizeof(err));
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, vm_json(&vms[i], stats));
	free(vms);
	json_decref(stats);
	reply_json(r, 200, arr);
}

static void get_vm(struct agent *a, const char *uuid, unsigned status, struct agent_reply *r)
{
	struct vgpu_vm_config vm;
	char err[512];
	json_t *stats;
	int rc;

	if (!db_open(a, r))
		return;
	rc = vgpu_get_vm_config(a->db, uuid, &vm);
	if (rc != VGPU_OK) {
		reply_lib(r, a, rc, "cannot show the VM");
		return;
	}
	stats = live(a, err, sizeof(err));
	reply_json(r, status, vm_json(&vm, stats));
	json_decref(stats);
}

static const char *const register_fields[] = { "vm_uuid", "vm_name", "pool_id", "priority",
					       "vm_id", NULL };

static void post_vm(struct agent *a, const char *body, size_t len, struct agent_reply *r)
{
	char uuid[VGPU_UUID_STRLEN + 1], pool;
	const char *s, *name;
	struct vgpu_vm_config vm;
	json_t *o = body_object(body, len, register_fields, r);
	long long vm_id = 0;
	bool given;
	int prio, rc;

	if (!o)
		return;
	if (!get_string(o, "vm_uuid", &s, r) || !get_string(o, "vm_name", &name, r) ||
	    !valid_name("vm_name", name, true, r) || !get_pool_id(o, &pool, r) ||
	    !get_priority(o, &prio, r) || !get_int(o, "vm_id", 1, VGPU_VM_ID_MAX, &vm_id, &given, r))
		goto out;
	if (!s || vgpu_uuid_normalize(s, uuid) != VGPU_OK) {
		reply_error(r, 400, "vm_uuid is needed: xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx");
		goto out;
	}
	if (!db_open(a, r))
		goto out;
	rc = vgpu_register_vm(a->db, uuid, name, pool, prio, (int)vm_id, &vm);
	if (rc == VGPU_OK)
		get_vm(a, uuid, 201, r);
	else
		reply_lib(r, a, rc, "cannot register the VM");
out:
	json_decref(o);
}

static const char *const update_fields[] = { "vm_name", "pool_id", "priority", "weight",
					     "rate_limit_ms", "mem_quota_mib", NULL };

static void patch_vm(struct agent *a, const char *uuid, const char *body, size_t len,
		     struct agent_reply *r)
{
	struct vgpu_vm_update upd = VGPU_VM_UPDATE_INIT;
	json_t *o = body_object(body, len, update_fields, r);
	long long v;
	bool given;
	int rc;

	if (!o)
		return;
	if (!get_string(o, "vm_name", &upd.vm_name, r) ||
	    !valid_name("vm_name", upd.vm_name, true, r) || !get_pool_id(o, &upd.pool_id, r) ||
	    !get_priority(o, &upd.priority, r))
		goto out;
	if (!get_int(o, "weight", VGPU_WEIGHT_MIN, VGPU_WEIGHT_MAX, &v, &given, r))
		goto out;
	if (given)
		upd.weight = (int)v;
	if (!get_int(o, "rate_limit_ms", 0, VGPU_RATE_LIMIT_MS_MAX, &v, &given, r))
		goto out;
	if (given)
		upd.rate_limit_ms = (int)v;
	if (!get_int(o, "mem_quota_mib", 0, VGPU_MEM_QUOTA_MIB_MAX, &v, &given, r))
		goto out;
	if (given)
		upd.mem_quota_mib = v;
	if (!db_open(a, r))
		goto out;
	rc = vgpu_update_vm(a->db, uuid, &upd);
	if (rc == VGPU_OK)
		get_vm(a, uuid, 200, r);
	else
		reply_lib(r, a, rc, "cannot change the VM");
out:
	json_decref(o);
}

static void delete_vm(struct agent *a, const char *uuid, struct agent_reply *r)
{
	int rc;

	if (!db_open(a, r))
		return;
	rc = vgpu_remove_vm(a->db, uuid);
	if (rc == VGPU_OK)
		reply_text(r, 204, JSON_TYPE, strdup(""));
	else
		reply_lib(r, a, rc, "cannot remove the VM");
}

/* @text (the mediator's metrics) with NVML's figures of each GPU after it
 * (docs/metrics.md); @text itself when NVML is not there or memory short. */
static char *append_nvml(char *text)
{
	struct agent_gpu nv[AGENT_GPUS_MAX];
	const char *why;
	int n = agent_nvml_gpus(nv, AGENT_GPUS_MAX, &why);
	size_t size = 0;
	char *more = NULL;
	FILE *f;

	if (n <= 0 || !(f = open_memstream(&more, &size)))
		return text;
	fputs(text, f);
	fputs("# HELP vgpu_gpu_info A GPU as NVIDIA's driver names it (always 1).\n"
	      "# TYPE vgpu_gpu_info gauge\n", f);
	for (int i = 0; i < n; i++)
		if (nv[i].known) {
			fprintf(f, "vgpu_gpu_info{gpu=\"%d\",name=", i);
			vgpu_prom_label(f, nv[i].name);
			fputs(",bus_id=", f);
			vgpu_prom_label(f, nv[i].bus_id);
			fputs("} 1\n", f);
		}
	fputs("# HELP vgpu_gpu_memory_total_bytes The GPU's memory (NVML).\n"
	      "# TYPE vgpu_gpu_memory_total_bytes gauge\n", f);
	for (int i = 0; i < n; i++)
		if (nv[i].memory_known)
			fprintf(f, "vgpu_gpu_memory_total_bytes{gpu=\"%d\"} %llu\n", i,
				nv[i].memory_total);
	fputs("# HELP vgpu_gpu_memory_used_bytes The GPU's memory in use, by every process "
	      "(NVML).\n# TYPE vgpu_gpu_memory_used_bytes gauge\n", f);
	for (int i = 0; i < n; i++)
		if (nv[i].memory_known)
			fprintf(f, "vgpu_gpu_memory_used_bytes{gpu=\"%d\"} %llu\n", i,
				nv[i].memory_used);
	fputs("# HELP vgpu_gpu_utilization_ratio Part of the driver's last sample period a "
	      "kernel ran (NVML).\n# TYPE vgpu_gpu_utilization_ratio gauge\n", f);
	for (int i = 0; i < n; i++)
		if (nv[i].util_gpu >= 0)
			fprintf(f, "vgpu_gpu_utilization_ratio{gpu=\"%d\"} %.2f\n", i,
				nv[i].util_gpu / 100.0);
	if (fclose(f) != 0) {
		free(more);
		return text;
	}
	free(text);
	return more;
}

static void get_metrics(struct agent *a, struct agent_reply *r)
{
	char err[512], *text;

	if (mediator_ask(a->run_dir, "metrics", &text, err, sizeof(err)) != VGPU_OK) {
		reply_error(r, 503, "%s", err);
		return;
	}
	if (strncmp(text, "{\"error\"", 8) == 0) { /* a mediator without metrics */
		free(text);
		reply_error(r, 503, "the mediator gives no metrics");
		return;
	}
	reply_text(r, 200, METRICS_TYPE, append_nvml(text));
}

/* ---- routing ----------------------------------------------------------- */

static bool is(const char *method, const char *want)
{
	return strcmp(method, want) == 0;
}

static void pool_route(struct agent *a, const char *method, const char *id, const char *body,
		       size_t len, struct agent_reply *r)
{
	char pool;

	if (vgpu_pool_id_parse(id, &pool) != VGPU_OK)
		reply_error(r, 404, "no such pool: a pool is one letter A to Z");
	else if (is(method, "GET"))
		get_pool(a, pool, r);
	else if (is(method, "PATCH"))
		patch_pool(a, pool, body, len, r);
	else if (is(method, "DELETE"))
		delete_pool(a, pool, r);
	else
		reply_error(r, 405, "a pool takes GET, PATCH and DELETE");
}

static void vm_route(struct agent *a, const char *method, const char *id, const char *body,
		     size_t len, struct agent_reply *r)
{
	char uuid[VGPU_UUID_STRLEN + 1];

	if (vgpu_uuid_normalize(id, uuid) != VGPU_OK)
		reply_error(r, 404, "no such VM: a VM is its UUID, xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx");
	else if (is(method, "GET"))
		get_vm(a, uuid, 200, r);
	else if (is(method, "PATCH"))
		patch_vm(a, uuid, body, len, r);
	else if (is(method, "DELETE"))
		delete_vm(a, uuid, r);
	else
		reply_error(r, 405, "a VM takes GET, PATCH and DELETE");
}

static void route(struct agent *a, const char *method, const char *path, const char *body,
		  size_t len, struct agent_reply *r)
{
	static const char *const paths[] = { "/metrics", "/v1/health", "/v1/host", "/v1/gpus",
					     "/v1/pools", "/v1/vms" };
	bool get = is(method, "GET"), post = is(method, "POST");

	if (strcmp(path, "/metrics") == 0 && get)
		get_metrics(a, r);
	else if (strcmp(path, "/v1/health") == 0 && get)
		get_health(a, r);
	else if (strcmp(path, "/v1/host") == 0 && get)
		get_host(a, r);
	else if (strcmp(path, "/v1/gpus") == 0 && get)
		get_gpus(a, r);
	else if (strcmp(path, "/v1/pools") == 0 && get)
		get_pools(a, r);
	else if (strcmp(path, "/v1/pools") == 0 && post)
		post_pool(a, body, len, r);
	else if (strncmp(path, "/v1/pools/", 10) == 0)
		pool_route(a, method, path + 10, body, len, r);
	else if (strcmp(path, "/v1/vms") == 0 && get)
		get_vms(a, r);
	else if (strcmp(path, "/v1/vms") == 0 && post)
		post_vm(a, body, len, r);
	else if (strncmp(path, "/v1/vms/", 8) == 0)
		vm_route(a, method, path + 8, body, len, r);
	else {
		for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
			if (strcmp(path, paths[i]) == 0) {
				reply_error(r, 405, "method not allowed on %s", paths[i]);
				return;
			}
		reply_error(r, 404, "no such route (docs/api.md lists them)");
	}
}

void agent_handle(struct agent *a, const char *method, const char *path, const char *body,
		  size_t len, struct agent_reply *r)
{
	*r = (struct agent_reply){ 0 };
	pthread_mutex_lock(&a->lock);
	route(a, method, path, body, len, r);
	pthread_mutex_unlock(&a->lock);
	if (!r->body) { /* out of memory on the way: an empty 500 */
		r->status = 500;
		r->type = JSON_TYPE;
	}
}

void agent_close(struct agent *a)
{
	if (a->db)
		vgpu_db_close(a->db);
	a->db = NULL;
}
