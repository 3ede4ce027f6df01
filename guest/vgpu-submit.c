/* SPDX-License-Identifier: MIT */
/*
 * vgpu-submit - run one op of the catalogue through the mediator, check it,
 * and report latencies.
 *
 *   vgpu-submit [--transport URI] OP [--n N] [--m M --k K] [--verify]
 *               [--repeat N] [--depth D] [--json] [--seed S] ...
 *
 * Exit status: 0 when every request succeeded (and, with --verify, every
 * result was checked correct), 1 when any failed or differed, 2 for a usage
 * error (each flag value is checked before anything is sent).
 *
 * Must never: exit 0 for a result it did not check when --verify is given,
 * accept a flag value out of range, or use anything of libvgpu beyond its
 * public header.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libvgpu.h"
#include "submit.h"
#include "vgpu_clock.h"

#define PROG "vgpu-submit"
#define MAX_REPEAT 1000000u
#define MAX_TIMEOUT_MS 86400000u
/* Output buffers kept for --depth requests in flight. */
#define MAX_DEPTH_BYTES (1ull << 30)
/* Failed requests described one by one on stderr; the rest only counted. */
#define MAX_ERROR_LINES 10
#define DEFAULT_N 4096u
#define DEFAULT_DIM 64u

struct args {
	const char *transport;
	const char *op_name;
	int op;
	const char *n, *m, *k;   /* as given; checked once the op is known */
	const char *repeat, *depth, *seed, *vm_id, *timeout_ms;
	bool verify, json, in_window;
};

/* Values of the numeric flags, once checked. */
struct settings {
	uint64_t n, m, k, repeat, depth, seed, vm_id, timeout_ms;
};

static void usage(FILE *f)
{
	const struct vgpu_proto_limits *l = &vgpu_proto_default_limits;

	fprintf(f,
		"usage: " PROG " [--transport URI] OP [options]\n"
		"\n"
		"Runs OP through the vgpu mediator with deterministic pseudo-random inputs.\n"
		"\n"
		"OP:\n"
		"  vector-add, saxpy, reduce-sum   sized by --n (default %u)\n"
		"  sgemm                           sized by --m, --n, --k (default %u each)\n"
		"\n"
		"options:\n"
		"  --transport URI   unix:/path/to/vm-<uuid>.sock; shm:/path/to/vm-<uuid>.sock\n"
		"                    (a shared-memory window asked for on that socket; its\n"
		"                    size follows the work unless VGPU_SHM_MIB is set); or\n"
		"                    spool:DIR with DIR the VM's spool directory as an\n"
		"                    absolute path (spool:/mnt/vgpu); or dev:/dev/vgpuN in\n"
		"                    a guest with the vgpu driver. Default: $VGPU_TRANSPORT,\n"
		"                    else dev:/dev/vgpu0 when it exists\n"
		"  --n N             vector length 1..%" PRIu32 "; sgemm columns 1..%" PRIu32 "\n"
		"  --m M, --k K      sgemm rows of A, columns of A, 1..%" PRIu32 "\n"
		"  --verify          check every result against a CPU computation\n"
		"                    (relative 1e-4; sgemm and reduce-sum relative to the\n"
		"                    magnitude of the terms summed)\n"
		"  --repeat N        run N requests, 1..%u (default 1)\n"
		"  --depth D         keep up to D requests in flight, 1..%u (default 1)\n"
		"  --seed S          input seed, 0..2^64-1 (default 1)\n"
		"  --vm-id ID        vm_id written in each request, 0..2^32-1 (default 0)\n"
		"  --timeout-ms MS   give up on a response after MS, 1..%u (default: never)\n"
		"  --in-window       place each request's arrays with vgpu_buffer_alloc()\n"
		"                    (in the window over shm: and dev:, so no copy is made),\n"
		"                    as a program after speed does\n"
		"  --json            print one JSON object instead of text\n"
		"  --help            show this and exit\n"
		"\n"
		"Exit status: 0 all requests succeeded (and were verified with --verify),\n"
		"1 a request failed or a result differed, 2 usage error.\n",
		DEFAULT_N, DEFAULT_DIM, l->max_elems, l->max_dim, l->max_dim, MAX_REPEAT,
		VGPU_CLIENT_MAX_OUTSTANDING, MAX_TIMEOUT_MS);
}

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry '" PROG " --help'.\n", stderr);
	return 2;
}

/* A decimal integer in [min, max], digits only; prints why not. */
static int parse_u64(const char *flag, const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	unsigned long long v;
	char *end;

	if (!s)
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end || errno || v < min || v > max)
		return usage_error("%s: '%s' is not an integer from %" PRIu64 " to %" PRIu64, flag,
				   s, min, max);
	*ret = v;
	return 0;
}

static int parse_args(int argc, char **argv, struct args *a)
{
	enum { O_TRANSPORT = 256, O_N, O_M, O_K, O_VERIFY, O_REPEAT, O_DEPTH, O_JSON, O_IN_WINDOW, O_SEED,
	       O_VM_ID, O_TIMEOUT, O_HELP };
	static const struct option options[] = {
		{ "transport", required_argument, NULL, O_TRANSPORT },
		{ "n", required_argument, NULL, O_N },
		{ "m", required_argument, NULL, O_M },
		{ "k", required_argument, NULL, O_K },
		{ "verify", no_argument, NULL, O_VERIFY },
		{ "repeat", required_argument, NULL, O_REPEAT },
		{ "depth", required_argument, NULL, O_DEPTH },
		{ "json", no_argument, NULL, O_JSON },
		{ "in-window", no_argument, NULL, O_IN_WINDOW },
		{ "seed", required_argument, NULL, O_SEED },
		{ "vm-id", required_argument, NULL, O_VM_ID },
		{ "timeout-ms", required_argument, NULL, O_TIMEOUT },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		switch (opt) {
		case O_TRANSPORT: a->transport = optarg; break;
		case O_N: a->n = optarg; break;
		case O_M: a->m = optarg; break;
		case O_K: a->k = optarg; break;
		case O_VERIFY: a->verify = true; break;
		case O_REPEAT: a->repeat = optarg; break;
		case O_DEPTH: a->depth = optarg; break;
		case O_JSON: a->json = true; break;
		case O_IN_WINDOW: a->in_window = true; break;
		case O_SEED: a->seed = optarg; break;
		case O_VM_ID: a->vm_id = optarg; break;
		case O_TIMEOUT: a->timeout_ms = optarg; break;
		case O_HELP:
			usage(stdout);
			exit(0);
		case ':':
			return usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return usage_error("no op given (vector-add, saxpy, sgemm or reduce-sum)");
	if (argc - optind > 1)
		return usage_error("unexpected argument '%s'", argv[optind + 1]);
	a->op_name = argv[optind];
	a->op = vgpu_op_from_name(a->op_name);
	if (!a->op)
		return usage_error("unknown op '%s' (vector-add, saxpy, sgemm or reduce-sum)",
				   a->op_name);
	if (!a->transport)
		a->transport = vgpu_default_transport();
	if (!a->transport)
		return usage_error("--transport URI is required (no /dev/vgpu0 here, "
				   "and VGPU_TRANSPORT is not set)");
	if (a->op != VGPU_OP_SGEMM && (a->m || a->k))
		return usage_error("--m and --k apply to sgemm only");
	return 0;
}

static int check_settings(const struct args *a, struct settings *s)
{
	const struct vgpu_proto_limits *l = &vgpu_proto_default_limits;
	bool sgemm = a->op == VGPU_OP_SGEMM;

	*s = (struct settings){ .n = sgemm ? DEFAULT_DIM : DEFAULT_N, .m = DEFAULT_DIM,
				.k = DEFAULT_DIM, .repeat = 1, .depth = 1, .seed = 1 };
	if (parse_u64("--n", a->n, 1, sgemm ? l->max_dim : l->max_elems, &s->n) ||
	    parse_u64("--m", a->m, 1, l->max_dim, &s->m) ||
	    parse_u64("--k", a->k, 1, l->max_dim, &s->k) ||
	    parse_u64("--repeat", a->repeat, 1, MAX_REPEAT, &s->repeat) ||
	    parse_u64("--depth", a->depth, 1, VGPU_CLIENT_MAX_OUTSTANDING, &s->depth) ||
	    parse_u64("--seed", a->seed, 0, UINT64_MAX, &s->seed) ||
	    parse_u64("--vm-id", a->vm_id, 0, UINT32_MAX, &s->vm_id) ||
	    parse_u64("--timeout-ms", a->timeout_ms, 1, MAX_TIMEOUT_MS, &s->timeout_ms))
		return 2;
	if (s->depth > s->repeat)
		s->depth = s->repeat; /* never more in flight than there are requests */
	return 0;
}

/* Set up @w for the op and sizes; 2 (with a message) when they exceed the limits. */
static int shape_work(const struct args *a, const struct settings *s, struct submit_work *w)
{
	const struct vgpu_proto_limits *l = &vgpu_proto_default_limits;
	struct vgpu_op_params *p = &w->params;

	w->op = a->op;
	p->vm_id = (uint32_t)s->vm_id;
	p->n = (uint32_t)s->n;
	if (a->op == VGPU_OP_SAXPY)
		p->alpha = 0.75f;
	if (a->op == VGPU_OP_SGEMM) {
		p->m = (uint32_t)s->m;
		p->k = (uint32_t)s->k;
		p->alpha = 1.25f;
		p->beta = -0.5f;
	}
	if (vgpu_proto_op_shape(w->op, p, l, &w->n_inputs, w->in_count, &w->out_count) !=
	    VGPU_OK)
		return usage_error("these sizes exceed the protocol's default limits (%" PRIu32
				   " floats per array, %" PRIu32 " bytes per message)",
				   l->max_elems, l->max_payload);
	if (s->depth * w->out_count * sizeof(float) > MAX_DEPTH_BYTES)
		return usage_error("--depth %" PRIu64 " with these sizes needs more than %llu MiB "
				   "of output buffers", s->depth, MAX_DEPTH_BYTES >> 20);
	return 0;
}

/* What the run saw. */
struct tally {
	uint64_t requests, failures, verified;
	uint64_t wall_ns;                  /* the whole run */
	uint64_t n_ok;                     /* entries in the arrays below */
	uint64_t *total_ns, *queue_ns, *exec_ns;
	uint64_t errors[32];               /* failures by -status; [0]: results that differed */
	uint64_t other_errors;             /* statuses past the table */
};

static void count_failure(struct tally *t, int status, uint64_t index, const char *what)
{
	t->failures++;
	if (status == VGPU_OK)
		t->errors[0]++;
	else if (-status > 0 && -status < 32)
		t->errors[-status]++;
	else
		t->other_errors++;
	if (t->failures <= MAX_ERROR_LINES)
		fprintf(stderr, PROG ": request %" PRIu64 ": %s\n", index + 1, what);
	else if (t->failures == MAX_ERROR_LINES + 1)
		fprintf(stderr, PROG ": further failures are only counted\n");
}

/* One request's buffers: its output (saxpy's y and sgemm's C, in and out),
 * and with --in-window its own copies of the inputs, in the window. */
struct slot {
	uint64_t id;
	uint64_t index; /* which of the --repeat requests */
	float *out;
	float *in[3];   /* --in-window: vgpu_buffer_alloc()ed, filled once */
	bool windowed;  /* out and in[] are the client's (vgpu_buffer_free()) */
};

static int submit_one(vgpu_client *c, const struct submit_work *w, struct slot *sl, bool verify)
{
	const float *in[3] = { w->in[0], w->in[1], w->in[2] };

	if (sl->windowed)
		for (int i = 0; i < 3; i++)
			in[i] = sl->in[i];
	if (w->op == VGPU_OP_SAXPY || w->op == VGPU_OP_SGEMM) {
		int inout = w->op == VGPU_OP_SAXPY ? 1 : 2;

		memcpy(sl->out, w->in[inout], w->out_count * sizeof(float));
		in[inout] = sl->out;
	} else if (verify || !sl->windowed) {
		memset(sl->out, 0xff, w->out_count * sizeof(float)); /* NaN: nothing stale passes */
	}
	return vgpu_submit(c, w->op, &w->params, in, sl->out, &sl->id);
}

/* --in-window: each slot's arrays from the client (in the window over shm:
 * and dev:), the inputs copied in once. */
static int window_slots(vgpu_client *c, const struct submit_work *w, struct slot *slots,
			uint64_t depth)
{
	for (uint64_t i = 0; i < depth; i++) {
		void *p;
		int rc = vgpu_buffer_alloc(c, w->out_count * sizeof(float), &p);

		if (rc != VGPU_OK)
			return rc;
		free(slots[i].out);
		slots[i].out = p;
		slots[i].windowed = true;
		for (int k = 0; k < w->n_inputs; k++) {
			rc = vgpu_buffer_alloc(c, w->in_count[k] * sizeof(float), &p);
			if (rc != VGPU_OK)
				return rc;
			slots[i].in[k] = p;
			memcpy(p, w->in[k], w->in_count[k] * sizeof(float));
		}
	}
	return VGPU_OK;
}

static void window_slots_free(vgpu_client *c, struct slot *slots, uint64_t depth)
{
	for (uint64_t i = 0; slots && i < depth; i++) {
		if (!slots[i].windowed)
			continue;
		vgpu_buffer_free(c, slots[i].out);
		slots[i].out = NULL;
		for (int k = 0; k < 3; k++)
			vgpu_buffer_free(c, slots[i].in[k]);
		slots[i].windowed = false;
	}
}

static void finish_one(const struct submit_work *w, const struct slot *sl, int status,
		       const struct vgpu_timing *tm, bool verify, struct tally *t)
{
	char what[160];

	if (status != VGPU_OK) {
		count_failure(t, status, sl->index, vgpu_strerror(status));
		return;
	}
	if (verify) {
		int64_t bad = submit_work_check(w, sl->out);

		if (bad >= 0) {
			snprintf(what, sizeof(what), "result differs at element %" PRId64
				 ": got %.9g, expected %.9g", bad, (double)sl->out[bad],
				 (double)w->ref[bad]);
			count_failure(t, VGPU_OK, sl->index, what);
			return;
		}
		t->verified++;
	}
	t->total_ns[t->n_ok] = tm->total_ns;
	t->queue_ns[t->n_ok] = tm->queue_ns;
	t->exec_ns[t->n_ok] = tm->exec_ns;
	t->n_ok++;
}

static void log_to_stderr(void *opaque, const char *message)
{
	(void)opaque;
	fprintf(stderr, PROG ": %s\n", message);
}

/* What a spool directory or a window needs, when it lacks it. */
static const char *connect_hint(const char *uri, int rc)
{
	if (strncmp(uri, "dev:", 4) == 0) {
		if (rc == VGPU_NOT_FOUND)
			return " (is the vgpu driver loaded? modprobe vgpu)";
		if (rc == VGPU_DENIED)
			return " (the device belongs to the group the udev rule names: vgpu)";
		if (rc == VGPU_BUSY)
			return " (another program has the device open)";
		if (rc == VGPU_TIMEOUT)
			return " (the device's window was not registered with the mediator: is it running?)";
		return "";
	}
	if (strncmp(uri, "shm:", 4) == 0) {
		if (rc == VGPU_LIMIT)
			return " (the window asked for is larger than the mediator's shm_max_mib: "
			       "set VGPU_SHM_MIB lower, or run less at once)";
		if (rc == VGPU_BUSY)
			return " (the mediator's windows together reached its shm_total_mib)";
		return "";
	}
	if (strncmp(uri, "spool:", 6) != 0)
		return "";
	if (rc == VGPU_NOT_FOUND)
		return " (a spool directory must be there and hold the directories req/ and "
		       "resp/, which the mediator creates for each registered VM: is the VM's "
		       "spool directory mounted there?)";
	if (rc == VGPU_DENIED)
		return " (req/ must be writable, and resp/ readable and writable)";
	return "";
}

static bool connection_lost(int status)
{
	return status == VGPU_IO_ERROR || status == VGPU_PROTOCOL;
}

/* Run s->repeat requests, up to s->depth at once; stops early when the
 * connection is lost or a response times out. */
static void run(vgpu_client *c, const struct submit_work *w, const struct settings *s,
		bool verify, struct slot *slots, struct tally *t)
{
	uint64_t next = 0, head = 0, inflight = 0;
	int timeout = s->timeout_ms ? (int)s->timeout_ms : -1;
	bool stop = false;

	for (;;) {
		while (!stop && next < s->repeat && inflight < s->depth) {
			struct slot *sl = &slots[(head + inflight) % s->depth];
			int rc;

			sl->index = next++;
			t->requests++;
			rc = submit_one(c, w, sl, verify);
			if (rc != VGPU_OK) {
				count_failure(t, rc, sl->index, vgpu_strerror(rc));
				stop = connection_lost(rc);
				continue;
			}
			inflight++;
		}
		if (inflight == 0)
			break;

		struct slot *sl = &slots[head];
		struct vgpu_timing tm;
		int rc = vgpu_wait(c, sl->id, timeout, &tm);

		if (rc == VGPU_TIMEOUT) {
			/* Give up on this and every request in flight: the client is closed
			 * before their buffers are freed. */
			for (; inflight; inflight--, head = (head + 1) % s->depth)
				count_failure(t, rc, slots[head].index, "no response in time");
			break;
		}
		finish_one(w, sl, rc, &tm, verify, t);
		stop = stop || connection_lost(rc);
		head = (head + 1) % s->depth;
		inflight--;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile @q (0..100] of @v[0..n), in microseconds. */
static double percentile_us(const uint64_t *v, uint64_t n, unsigned q)
{
	uint64_t rank = (n * q + 99) / 100;

	return (double)v[rank ? rank - 1 : 0] / 1000.0;
}

static void print_dist(const char *name, uint64_t *v, uint64_t n, bool json)
{
	if (n)
		qsort(v, n, sizeof(*v), cmp_u64);
	if (json) {
		if (!n)
			printf(",\"%s\":{\"p50\":null,\"p99\":null,\"max\":null}", name);
		else
			printf(",\"%s\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f}", name,
			       percentile_us(v, n, 50), percentile_us(v, n, 99),
			       percentile_us(v, n, 100));
		return;
	}
	if (n)
		printf("%-8s p50 %.1f us  p99 %.1f us  max %.1f us\n", name,
		       percentile_us(v, n, 50), percentile_us(v, n, 99), percentile_us(v, n, 100));
}

static void print_json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

/* Bytes in and out of the requests answered, per second of the run. */
static double gbps(const struct submit_work *w, const struct tally *t)
{
	uint64_t bytes = w->out_count;

	for (int i = 0; i < w->n_inputs; i++)
		bytes += w->in_count[i];
	bytes *= sizeof(float);
	return t->wall_ns ? (double)(bytes * t->n_ok) / (double)t->wall_ns : 0.0;
}

static void report(const struct args *a, const struct settings *s, const struct submit_work *w,
		   struct tally *t)
{
	char op[32];

	snprintf(op, sizeof(op), "%s", vgpu_op_name(a->op));
	for (char *p = op; *p; p++)
		if (*p == '_')
			*p = '-';
	if (a->json) {
		printf("{\"op\":\"%s\",\"transport\":", op);
		print_json_string(a->transport);
		printf(",\"m\":%" PRIu32 ",\"n\":%" PRIu32 ",\"k\":%" PRIu32, w->params.m,
		       w->params.n, w->params.k);
		printf(",\"requests\":%" PRIu64 ",\"failures\":%" PRIu64, t->requests, t->failures);
		if (a->verify)
			printf(",\"verified\":%" PRIu64, t->verified);
		printf(",\"errors\":{");
		const char *sep = "";
		if (t->errors[0]) {
			printf("\"mismatch\":%" PRIu64, t->errors[0]);
			sep = ",";
		}
		for (int i = 1; i < 32; i++)
			if (t->errors[i]) {
				printf("%s\"%s\":%" PRIu64, sep, vgpu_strerror(-i), t->errors[i]);
				sep = ",";
			}
		if (t->other_errors)
			printf("%s\"other\":%" PRIu64, sep, t->other_errors);
		printf("}");
		print_dist("latency_us", t->total_ns, t->n_ok, true);
		print_dist("queue_us", t->queue_ns, t->n_ok, true);
		print_dist("exec_us", t->exec_ns, t->n_ok, true);
		printf(",\"in_window\":%s,\"wall_s\":%.6f,\"throughput_gbps\":%.3f}\n",
		       a->in_window ? "true" : "false", (double)t->wall_ns / 1e9,
		       gbps(w, t));
		return;
	}
	if (a->op == VGPU_OP_SGEMM)
		printf("%s m=%" PRIu32 " n=%" PRIu32 " k=%" PRIu32, op, w->params.m, w->params.n,
		       w->params.k);
	else
		printf("%s n=%" PRIu32, op, w->params.n);
	printf(" over %s: %" PRIu64 " of %" PRIu64 " requests sent, %" PRIu64 " failed", a->transport,
	       t->requests, s->repeat, t->failures);
	if (a->verify)
		printf(", %" PRIu64 " verified", t->verified);
	printf("\n");
	print_dist("latency", t->total_ns, t->n_ok, false);
	print_dist("queue", t->queue_ns, t->n_ok, false);
	print_dist("exec", t->exec_ns, t->n_ok, false);
	printf("throughput %.3f GB/s (bytes in and out of the %" PRIu64 " answered, over %.3f s)\n",
	       gbps(w, t), t->n_ok, (double)t->wall_ns / 1e9);
}

int main(int argc, char **argv)
{
	struct args a = { 0 };
	struct settings s;
	struct submit_work w = { 0 };
	struct tally t = { 0 };
	struct slot *slots = NULL;
	vgpu_client *c = NULL;
	int rc, status = 1;

	rc = parse_args(argc, argv, &a);
	if (!rc)
		rc = check_settings(&a, &s);
	if (!rc)
		rc = shape_work(&a, &s, &w);
	if (rc)
		return rc;

	t.total_ns = calloc(s.repeat, sizeof(uint64_t));
	t.queue_ns = calloc(s.repeat, sizeof(uint64_t));
	t.exec_ns = calloc(s.repeat, sizeof(uint64_t));
	slots = calloc(s.depth, sizeof(*slots));
	if (!t.total_ns || !t.queue_ns || !t.exec_ns || !slots ||
	    submit_work_init(&w, s.seed) != VGPU_OK ||
	    (a.verify && submit_work_reference(&w) != VGPU_OK)) {
		fprintf(stderr, PROG ": out of memory\n");
		goto out;
	}
	for (uint64_t i = 0; i < s.depth; i++) {
		slots[i].out = malloc(w.out_count * sizeof(float));
		if (!slots[i].out) {
			fprintf(stderr, PROG ": out of memory\n");
			goto out;
		}
	}

	/* A window holds what --depth requests stage at once (the arrays here
	 * are ordinary memory), unless the caller chose its size. */
	if (strncmp(a.transport, "shm:", 4) == 0) {
		uint64_t bytes = w.out_count * sizeof(float), mib;
		char v[24];

		for (int i = 0; i < 3; i++)
			bytes += w.in_count[i] * sizeof(float);
		mib = (s.depth * (bytes + 4096) >> 20) + 1;
		snprintf(v, sizeof(v), "%" PRIu64, mib > 2048 ? 2048 : mib);
		setenv("VGPU_SHM_MIB", v, 0);
	}
	rc = vgpu_connect(a.transport, &c);
	if (rc == VGPU_INVALID_PARAM) {
		status = usage_error("--transport: '%s' is not a transport URI "
				     "(unix:/path/to/vm-<uuid>.sock, shm:/path/to/vm-<uuid>.sock, "
				     "dev:/dev/vgpu0, or spool:/mnt/vgpu: an "
				     "absolute directory)",
				     a.transport);
		goto out;
	}
	if (rc != VGPU_OK) {
		fprintf(stderr, PROG ": cannot connect to %s: %s%s\n", a.transport,
			vgpu_strerror(rc), connect_hint(a.transport, rc));
		goto out;
	}
	vgpu_client_set_log(c, log_to_stderr, NULL);
	if (a.in_window && (rc = window_slots(c, &w, slots, s.depth)) != VGPU_OK) {
		fprintf(stderr, PROG ": --in-window: %s (the window is too small for --depth "
			"requests of this size?)\n", vgpu_strerror(rc));
		goto out;
	}
	uint64_t t0 = vgpu_now_ns();
	run(c, &w, &s, a.verify, slots, &t);
	t.wall_ns = vgpu_now_ns() - t0;
	window_slots_free(c, slots, s.depth);
	vgpu_close(c); /* before the buffers of abandoned requests are freed */
	c = NULL;
	report(&a, &s, &w, &t);
	status = t.failures == 0 && t.requests == s.repeat ? 0 : 1;
out:
	window_slots_free(c, slots, s.depth);
	vgpu_close(c);
	if (slots)
		for (uint64_t i = 0; i < s.depth; i++)
			free(slots[i].out);
	free(slots);
	free(t.total_ns);
	free(t.queue_ns);
	free(t.exec_ns);
	submit_work_free(&w);
	return status;
}
