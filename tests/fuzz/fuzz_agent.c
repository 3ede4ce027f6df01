/* SPDX-License-Identifier: MIT */
/*
 * fuzz_agent.c - the host agent's requests (agent/api.c): the route from
 * the method and path, and the JSON bodies, against a real registry in a
 * temporary directory (two VMs registered; no mediator, so the live
 * figures are absent). Input: a byte choosing the method, the path up to
 * the first newline, the rest the body. Invariants: every reply has a
 * status the API documents and a body; a JSON reply parses; the registry
 * still opens.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct agent agent = { .lock = PTHREAD_MUTEX_INITIALIZER };
static char db_path[64];

static void setup(void)
{
	static char dir[] = "/tmp/vgpu-fuzz-agent.XXXXXX";
	struct vgpu_vm_config vm;
	char err[256];
	vgpu_db *db;

	if (!mkdtemp(dir))
		abort();
	snprintf(db_path, sizeof(db_path), "%s/vgpu.db", dir);
	if (vgpu_db_init(db_path, 0, &db, err, sizeof(err)) != VGPU_OK ||
	    vgpu_register_vm(db, "00000000-0000-4000-8000-000000000001", "one", 'A', 2, 1, &vm) ||
	    vgpu_register_vm(db, "00000000-0000-4000-8000-000000000002", "two", 'B', 0, 2, &vm))
		abort();
	vgpu_db_close(db);
	agent.db_path = db_path;
	agent.run_dir = dir; /* no control.sock there: no mediator */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = { "GET", "POST", "PATCH", "DELETE", "PUT", "HEAD" };
	char path[512];
	const uint8_t *nl;
	size_t plen;
	struct agent_reply r;

	if (!agent.db_path)
		setup();
	if (size < 1)
		return 0;
	nl = memchr(data + 1, '\n', size - 1);
	plen = nl ? (size_t)(nl - data - 1) : size - 1;
	if (plen >= sizeof(path))
		return 0;
	memcpy(path, data + 1, plen);
	path[plen] = '\0';
	if (strlen(path) != plen)
		return 0; /* a NUL in the path: libmicrohttpd hands none */
	agent_handle(&agent, methods[data[0] % 6], path, nl ? (const char *)nl + 1 : NULL,
		     nl ? size - plen - 2 : 0, &r);
	if (!r.body || !r.type)
		abort();
	switch (r.status) {
	case 200: case 201: case 204: case 400: case 404: case 405: case 409: case 503:
		break;
	default:
		abort();
	}
	if (strcmp(r.type, "application/json") == 0 && r.status != 204) {
		json_t *doc = json_loads(r.body, 0, NULL);

		if (!doc)
			abort();
		json_decref(doc);
	}
	free(r.body);
	return 0;
}
