/* SPDX-License-Identifier: MIT */
/*
 * scheduler.c - the scheduling policy (see scheduler.h; docs/scheduler.md).
 *
 * Virtual time: a pool's (and a VM's) virtual time at a level grows by the
 * GPU time it used there, times VT_ONE / weight; the least virtual time
 * goes first (stride scheduling over measured time). A pool or VM that
 * starts waiting again is moved up to the level's floor: the virtual time
 * of the last one picked there, so idle time is not saved up as credit.
 *
 * Token buckets, in nanoseconds of GPU time: a VM's rate limit, a pool's
 * cap (cap x its GPUs x 1 s per second), and each level's aging floor.
 * They refill lazily, hold at most burst_ns worth of their rate, and may go
 * below zero by one work's cost: a work runs while its bucket is above
 * zero, and what it used beyond that is paid back before the next.
 *
 * The VMs with queued work are on one list; pick walks it twice (once for
 * the level and pool, once for the VM), so a decision costs O(VMs waiting).
 *
 * Never: allocate after new, read the clock, or lose an item (every pushed
 * item is queued until pick or drain hands it back).
 */
#include <stdlib.h>
#include <string.h>

#include "scheduler.h"
#include "vgpu_error.h"

#define LEVELS VGPU_SCHED_LEVELS
#define VT_ONE 65536u /* virtual time per ns at weight 1 */
#define NONE UINT32_MAX
#define NS_PER_S 1000000000ull

struct bucket {
	uint64_t rate;   /* ns of GPU time per second; 0: no limit */
	int64_t tokens;  /* ns */
	int64_t burst;   /* most tokens held */
	uint64_t last_ns;
};

struct sched_vm {
	bool defined;
	uint32_t gen;
	uint32_t pool;
	int level;
	uint32_t weight;
	struct bucket rate;
	uint64_t vt[LEVELS];
	struct vgpu_sched_item *head, *tail;
	uint32_t depth;
	uint32_t prev, next;   /* the waiting list, while depth > 0 */
	uint64_t mem_quota;    /* bytes; 0: none */
	uint64_t mem_held;     /* bytes of its picked, unfinished works */
	uint64_t used_ns, picks, aged;
	uint64_t ran_on;       /* GPUs its works were given to (placement) */
};

struct sched_pool {
	bool defined;
	uint32_t weight;
	uint32_t cap_permille;
	uint64_t gpus;
	struct bucket cap;
	uint64_t vt[LEVELS];
	uint64_t vm_floor[LEVELS]; /* where a VM starting to wait at a level resumes */
	uint64_t out_vm_min[LEVELS]; /* the least of its VMs running outside the queue */
	uint32_t waiting[LEVELS];  /* its VMs with queued work, per level */
	uint64_t used_ns;
};

struct vgpu_sched {
	struct vgpu_sched_params p;
	uint32_t max_vms, max_pools, n_gpus;
	uint32_t first;            /* the waiting list's head */
	uint32_t queued;
	uint64_t pool_floor[LEVELS];
	uint64_t out_pool_min[LEVELS]; /* the least pool running outside the queue */
	struct bucket floor[LEVELS];
	uint64_t gpu_used_ns[VGPU_SCHED_MAX_GPUS];
	/* Per GPU, what runs: estimated time, and works per level. */
	uint64_t gpu_inflight_ns[VGPU_SCHED_MAX_GPUS];
	uint32_t gpu_inflight[VGPU_SCHED_MAX_GPUS][LEVELS];
	uint64_t gpu_picked_ns[VGPU_SCHED_MAX_GPUS][LEVELS]; /* last pick, +1 (0: never) */
	struct sched_pool *pools;
	uint64_t *pool_gpu_ns;     /* [pool * n_gpus + gpu]: placement */
	struct sched_vm vms[];
};

void vgpu_sched_params_default(struct vgpu_sched_params *p)
{
	p->aging_ns = 50000000ull;
	p->floor_permille = 50;
	p->burst_ns = 100000000ull;
	p->inflight_ns = 2000000ull;
	p->inflight_min = 1;
	p->guard_ns = 0;
}

static int64_t burst_of(uint64_t rate, uint64_t burst_ns)
{
	return (int64_t)((unsigned __int128)rate * burst_ns / NS_PER_S);
}

static void bucket_refill(struct bucket *b, uint64_t now)
{
	unsigned __int128 add;

	if (b->rate == 0 || now <= b->last_ns)
		return;
	add = (unsigned __int128)(now - b->last_ns) * b->rate / NS_PER_S;
	if (add >= (unsigned __int128)(b->burst - b->tokens)) {
		b->tokens = b->burst;
		b->last_ns = now;
	} else if (add > 0) {
		/* Advance by the time those tokens took, not to now: frequent
		 * calls must not round the rate down. */
		b->tokens += (int64_t)add;
		b->last_ns += (uint64_t)(add * NS_PER_S / b->rate);
	}
}

/* A bucket given a limit starts full; a changed one keeps what it has,
 * refilled at its old rate up to @now (setting the same limit again, as
 * every registry read does, must not lose the time since the last refill). */
static void bucket_set(struct bucket *b, uint64_t rate, uint64_t burst_ns, uint64_t now)
{
	bool had_limit = b->rate != 0;

	if (had_limit)
		bucket_refill(b, now);
	b->rate = rate;
	b->burst = burst_of(rate, burst_ns);
	if (!had_limit || b->tokens > b->burst)
		b->tokens = b->burst;
	if (!had_limit)
		b->last_ns = now;
}

static bool bucket_open(struct bucket *b, uint64_t now)
{
	if (b->rate == 0)
		return true;
	bucket_refill(b, now);
	return b->tokens > 0;
}

/* When bucket @b (tokens < @want, want <= burst) holds @want tokens: at
 * least 1 ns later. */
static uint64_t bucket_holds(const struct bucket *b, int64_t want, uint64_t now)
{
	unsigned __int128 owed = (unsigned __int128)(want - b->tokens);
	uint64_t at = b->last_ns + (uint64_t)((owed * NS_PER_S + b->rate - 1) / b->rate);

	return at > now ? at : now + 1;
}

/* When a closed bucket (tokens <= 0) opens again. */
static uint64_t bucket_opens(const struct bucket *b, uint64_t now)
{
	return bucket_holds(b, 1, now);
}

static void bucket_take(struct bucket *b, int64_t ns)
{
	if (b->rate != 0)
		b->tokens -= ns;
}

static uint64_t vt_of(uint64_t ns, uint32_t weight)
{
	return ns * VT_ONE / weight;
}

static void vt_add(uint64_t *vt, int64_t ns, uint32_t weight)
{
	uint64_t d = vt_of((uint64_t)(ns < 0 ? -ns : ns), weight);

	if (ns >= 0)
		*vt += d;
	else
		*vt = *vt > d ? *vt - d : 0;
}

static uint32_t popcount64(uint64_t x)
{
	return (uint32_t)__builtin_popcountll(x);
}

int vgpu_sched_new(uint32_t max_vms, uint32_t max_pools, uint32_t n_gpus,
		   const struct vgpu_sched_params *params, struct vgpu_sched **ret)
{
	struct vgpu_sched *s;
	size_t size;
	int l;

	if (!ret || max_vms == 0 || max_vms >= NONE || max_pools == 0 || n_gpus == 0 ||
	    n_gpus > VGPU_SCHED_MAX_GPUS || !params || params->floor_permille > 1000 ||
	    params->inflight_min == 0 ||
	    params->burst_ns == 0 || params->burst_ns > VGPU_SCHED_COST_MAX_NS)
		return VGPU_INVALID_PARAM;
	if (__builtin_mul_overflow((size_t)max_vms, sizeof(s->vms[0]), &size) ||
	    __builtin_add_overflow(size, sizeof(*s), &size))
		return VGPU_NO_MEMORY;
	s = calloc(1, size);
	if (!s)
		return VGPU_NO_MEMORY;
	s->pools = calloc(max_pools, sizeof(s->pools[0]));
	s->pool_gpu_ns = calloc((size_t)max_pools * n_gpus, sizeof(s->pool_gpu_ns[0]));
	if (!s->pools || !s->pool_gpu_ns) {
		free(s->pools);
		free(s->pool_gpu_ns);
		free(s);
		return VGPU_NO_MEMORY;
	}
	s->p = *params;
	s->max_vms = max_vms;
	s->max_pools = max_pools;
	s->n_gpus = n_gpus;
	s->first = NONE;
	for (l = 0; l < LEVELS - 1; l++)
		bucket_set(&s->floor[l], (uint64_t)params->floor_permille * n_gpus * (NS_PER_S / 1000u),
			   params->burst_ns, 0);
	*ret = s;
	return VGPU_OK;
}

void vgpu_sched_free(struct vgpu_sched *s)
{
	if (!s)
		return;
	free(s->pools);
	free(s->pool_gpu_ns);
	free(s);
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* VM @v (depth > 0) starts waiting at its level in its pool. */
static void wait_begin(struct vgpu_sched *s, struct sched_vm *v)
{
	struct sched_pool *p = &s->pools[v->pool];
	int l = v->level;

	v->vt[l] = max_u64(v->vt[l], p->vm_floor[l]);
	if (p->waiting[l]++ == 0)
		p->vt[l] = max_u64(p->vt[l], s->pool_floor[l]);
}

static void wait_end(struct vgpu_sched *s, struct sched_vm *v)
{
	s->pools[v->pool].waiting[v->level]--;
}

static void list_add(struct vgpu_sched *s, uint32_t slot)
{
	struct sched_vm *v = &s->vms[slot];

	v->prev = NONE;
	v->next = s->first;
	if (s->first != NONE)
		s->vms[s->first].prev = slot;
	s->first = slot;
}

static void list_del(struct vgpu_sched *s, uint32_t slot)
{
	struct sched_vm *v = &s->vms[slot];

	if (v->prev != NONE)
		s->vms[v->prev].next = v->next;
	else
		s->first = v->next;
	if (v->next != NONE)
		s->vms[v->next].prev = v->prev;
	v->prev = v->next = NONE;
}

int vgpu_sched_set_pool(struct vgpu_sched *s, uint32_t pool, uint32_t weight,
			uint32_t cap_permille, uint64_t gpus, uint64_t now_ns)
{
	struct sched_pool *p;
	uint64_t all = s->n_gpus == 64 ? UINT64_MAX : (1ull << s->n_gpus) - 1;

	if (!s || pool >= s->max_pools || weight == 0 || weight > VGPU_SCHED_WEIGHT_MAX ||
	    cap_permille == 0 || cap_permille > 1000 || gpus == 0 || (gpus & ~all))
		return VGPU_INVALID_PARAM;
	p = &s->pools[pool];
	p->defined = true;
	p->weight = weight;
	p->cap_permille = cap_permille;
	p->gpus = gpus;
	bucket_set(&p->cap,
		   cap_permille >= 1000 ? 0
					: (uint64_t)cap_permille * popcount64(gpus) * (NS_PER_S / 1000u),
		   s->p.burst_ns, now_ns);
	return VGPU_OK;
}

int vgpu_sched_set_vm(struct vgpu_sched *s, uint32_t slot, uint32_t pool, int level,
		      uint32_t weight, uint64_t rate_ns_per_s, uint64_t now_ns)
{
	struct sched_vm *v;

	if (!s || slot >= s->max_vms || pool >= s->max_pools || !s->pools[pool].defined ||
	    level < 0 || level >= LEVELS || weight == 0 || weight > VGPU_SCHED_WEIGHT_MAX ||
	    rate_ns_per_s > (uint64_t)s->n_gpus * NS_PER_S)
		return VGPU_INVALID_PARAM;
	v = &s->vms[slot];
	if (!v->defined) {
		uint32_t gen = v->gen + 1;

		memset(v, 0, sizeof(*v));
		v->gen = gen;
		v->defined = true;
		v->prev = v->next = NONE;
	} else if (v->depth > 0) {
		wait_end(s, v);
	}
	v->pool = pool;
	v->level = level;
	v->weight = weight;
	bucket_set(&v->rate, rate_ns_per_s, s->p.burst_ns, now_ns);
	if (v->depth > 0)
		wait_begin(s, v); /* queued work moves with the VM */
	return VGPU_OK;
}

int vgpu_sched_set_vm_quota(struct vgpu_sched *s, uint32_t slot, uint64_t quota_bytes)
{
	if (!s || slot >= s->max_vms || !s->vms[slot].defined)
		return VGPU_INVALID_PARAM;
	s->vms[slot].mem_quota = quota_bytes;
	return VGPU_OK;
}

int vgpu_sched_remove_vm(struct vgpu_sched *s, uint32_t slot)
{
	if (!s || slot >= s->max_vms || !s->vms[slot].defined)
		return VGPU_INVALID_PARAM;
	if (s->vms[slot].depth > 0)
		return VGPU_BUSY;
	s->vms[slot].defined = false;
	return VGPU_OK;
}

int vgpu_sched_push(struct vgpu_sched *s, struct vgpu_sched_item *item, uint64_t now_ns)
{
	struct sched_vm *v;

	if (!s || !item || item->vm_slot >= s->max_vms || !s->vms[item->vm_slot].defined)
		return VGPU_INVALID_PARAM;
	v = &s->vms[item->vm_slot];
	if (v->mem_quota && item->mem_bytes > v->mem_quota)
		return VGPU_NO_MEMORY;
	item->next = NULL;
	item->enqueued_ns = now_ns;
	if (item->cost_ns > VGPU_SCHED_COST_MAX_NS)
		item->cost_ns = VGPU_SCHED_COST_MAX_NS;
	if (v->tail)
		v->tail->next = item;
	else
		v->head = item;
	v->tail = item;
	if (v->depth++ == 0) {
		list_add(s, item->vm_slot);
		wait_begin(s, v);
	}
	s->queued++;
	return VGPU_OK;
}

/* Unlink VM @slot's oldest item. */
static struct vgpu_sched_item *take(struct vgpu_sched *s, uint32_t slot)
{
	struct sched_vm *v = &s->vms[slot];
	struct vgpu_sched_item *item = v->head;

	v->head = item->next;
	if (!v->head)
		v->tail = NULL;
	item->next = NULL;
	s->queued--;
	if (--v->depth == 0) {
		wait_end(s, v);
		list_del(s, slot);
	}
	return item;
}

/* Whether a level above @level is active on @gpu (running there, or
 * given work there within guard_ns) while a work of a level below it
 * already runs there: the guard of scheduler.h. */
static bool guarded(const struct vgpu_sched *s, uint32_t gpu, int level, uint64_t now)
{
	if (s->p.guard_ns == 0)
		return false; /* off */
	for (int l = LEVELS - 1; l > level; l--) {
		uint64_t at = s->gpu_picked_ns[gpu][l];
		uint32_t below = 0;

		if (!s->gpu_inflight[gpu][l] && (at == 0 || now - (at - 1) >= s->p.guard_ns))
			continue;
		for (int b = 0; b < l; b++)
			below += s->gpu_inflight[gpu][b];
		return below > 0;
	}
	return false;
}

/* Whether work of @level may start on @gpu: not guarded, and fewer than
 * inflight_min works run there, or the estimated time of what runs is
 * below the in-flight budget, or every running work is of a lower level. */
static bool room_on(const struct vgpu_sched *s, uint32_t gpu, int level, uint64_t now)
{
	uint32_t running = 0;
	int l;

	if (guarded(s, gpu, level, now))
		return false;
	if (s->p.inflight_ns == 0 || s->gpu_inflight_ns[gpu] < s->p.inflight_ns)
		return true;
	for (l = 0; l < LEVELS; l++)
		running += s->gpu_inflight[gpu][l];
	if (running < s->p.inflight_min)
		return true;
	for (l = LEVELS - 1; l >= level; l--)
		if (s->gpu_inflight[gpu][l])
			return false;
	return true;
}

/* Whether VM @v may run on @gpu now; if held back only by a bucket,
 * *retry becomes the earliest time one opens. */
static bool eligible(struct vgpu_sched *s, struct sched_vm *v, uint32_t gpu, uint64_t now,
		     uint64_t *retry)
{
	struct sched_pool *p = &s->pools[v->pool];
	uint64_t at;

	if (!(p->gpus >> gpu & 1))
		return false;
	/* The GPU holds its budget of work already: a level above everything
	 * running may still go, the others wait for a done(). */
	if (!room_on(s, gpu, v->level, now)) {
		if (*retry == 0)
			*retry = UINT64_MAX;
		return false;
	}
	/* Over its memory quota: it waits for its own works to finish, at no
	 * time known here (UINT64_MAX, unless a bucket opens sooner). */
	if (v->mem_quota && v->mem_held &&
	    v->mem_held + v->head->mem_bytes > v->mem_quota) {
		if (*retry == 0)
			*retry = UINT64_MAX;
		return false;
	}
	if (!bucket_open(&v->rate, now)) {
		at = bucket_opens(&v->rate, now);
		if (*retry == 0 || at < *retry)
			*retry = at;
		return false;
	}
	if (!bucket_open(&p->cap, now)) {
		at = bucket_opens(&p->cap, now);
		if (*retry == 0 || at < *retry)
			*retry = at;
		return false;
	}
	return true;
}

struct vgpu_sched_item *vgpu_sched_pick(struct vgpu_sched *s, uint32_t gpu, uint64_t now_ns,
					uint64_t *ret_retry_ns)
{
	uint32_t best_pool[LEVELS] = { NONE, NONE, NONE };
	uint32_t oldest[LEVELS] = { NONE, NONE, NONE };
	uint64_t best_pool_ns[LEVELS] = { 0, 0, 0 };
	uint32_t chosen = NONE, slot;
	uint64_t retry = 0, best_vt = 0;
	struct vgpu_sched_item *item;
	struct sched_vm *v;
	struct sched_pool *p;
	int top = -1, l;
	bool aged = false;

	if (ret_retry_ns)
		*ret_retry_ns = 0;
	if (!s || gpu >= s->n_gpus)
		return NULL;

	/* Pass 1: the highest level with eligible work, the least-served pool
	 * of each level, the oldest eligible work. */
	for (slot = s->first; slot != NONE; slot = v->next) {
		v = &s->vms[slot];
		if (!eligible(s, v, gpu, now_ns, &retry))
			continue;
		l = v->level;
		if (l > top)
			top = l;
		/* Least virtual time; between equals, the oldest work. */
		if (best_pool[l] == NONE || s->pools[v->pool].vt[l] < s->pools[best_pool[l]].vt[l] ||
		    (s->pools[v->pool].vt[l] == s->pools[best_pool[l]].vt[l] &&
		     v->head->enqueued_ns < best_pool_ns[l])) {
			best_pool[l] = v->pool;
			best_pool_ns[l] = v->head->enqueued_ns;
		}
		if (oldest[l] == NONE || v->head->enqueued_ns < s->vms[oldest[l]].head->enqueued_ns)
			oldest[l] = slot;
	}
	if (top < 0) {
		if (ret_retry_ns)
			*ret_retry_ns = retry;
		return NULL;
	}

	/* Aging: the oldest work below the top level waited too long, and
	 * its level's floor has room. */
	for (l = 0; l < top && s->p.floor_permille > 0; l++) {
		if (oldest[l] == NONE ||
		    now_ns - s->vms[oldest[l]].head->enqueued_ns < s->p.aging_ns ||
		    !bucket_open(&s->floor[l], now_ns))
			continue;
		if (chosen == NONE || s->vms[oldest[l]].head->enqueued_ns <
					      s->vms[chosen].head->enqueued_ns)
			chosen = oldest[l];
	}
	if (chosen != NONE) {
		aged = true;
	} else {
		/* Pass 2: in the chosen pool at the top level, the least-served VM. */
		for (slot = s->first; slot != NONE; slot = s->vms[slot].next) {
			v = &s->vms[slot];
			if (v->level != top || v->pool != best_pool[top] ||
			    !eligible(s, v, gpu, now_ns, &retry))
				continue;
			if (chosen == NONE || v->vt[top] < best_vt ||
			    (v->vt[top] == best_vt &&
			     v->head->enqueued_ns < s->vms[chosen].head->enqueued_ns)) {
				chosen = slot;
				best_vt = v->vt[top];
			}
		}
	}
	if (chosen == NONE)
		return NULL; /* cannot happen: pass 1 saw one eligible */

	v = &s->vms[chosen];
	p = &s->pools[v->pool];
	l = v->level;
	item = take(s, chosen);
	item->pool = v->pool;
	item->gpu = gpu;
	item->vm_gen = v->gen;
	item->level = (uint8_t)l;
	item->aged = aged;
	item->picked_ns = now_ns;
	/* The floors: where those that start waiting resume. */
	p->vm_floor[l] = max_u64(p->vm_floor[l], v->vt[l]);
	s->pool_floor[l] = max_u64(s->pool_floor[l], p->vt[l]);
	vt_add(&v->vt[l], (int64_t)item->cost_ns, v->weight);
	vt_add(&p->vt[l], (int64_t)item->cost_ns, p->weight);
	bucket_take(&v->rate, (int64_t)item->cost_ns);
	bucket_take(&p->cap, (int64_t)item->cost_ns);
	if (aged) {
		bucket_take(&s->floor[l], (int64_t)item->cost_ns);
		v->aged++;
	}
	v->picks++;
	v->ran_on |= 1ull << gpu;
	v->mem_held += item->mem_bytes;
	s->gpu_inflight_ns[gpu] += item->cost_ns;
	s->gpu_inflight[gpu][l]++;
	s->gpu_picked_ns[gpu][l] = now_ns + 1;
	return item;
}

void vgpu_sched_done(struct vgpu_sched *s, const struct vgpu_sched_item *item,
		     uint64_t measured_ns)
{
	struct sched_vm *v;
	struct sched_pool *p;
	int64_t delta;

	if (!s || !item || item->vm_slot >= s->max_vms || item->pool >= s->max_pools ||
	    item->gpu >= s->n_gpus || item->level >= LEVELS)
		return;
	if (measured_ns > VGPU_SCHED_COST_MAX_NS)
		measured_ns = VGPU_SCHED_COST_MAX_NS;
	delta = (int64_t)measured_ns - (int64_t)item->cost_ns;
	s->gpu_used_ns[item->gpu] += measured_ns;
	s->gpu_inflight_ns[item->gpu] -= item->cost_ns < s->gpu_inflight_ns[item->gpu]
						 ? item->cost_ns
						 : s->gpu_inflight_ns[item->gpu];
	if (s->gpu_inflight[item->gpu][item->level])
		s->gpu_inflight[item->gpu][item->level]--;
	p = &s->pools[item->pool];
	vt_add(&p->vt[item->level], delta, p->weight);
	bucket_take(&p->cap, delta);
	p->used_ns += measured_ns;
	s->pool_gpu_ns[(size_t)item->pool * s->n_gpus + item->gpu] += measured_ns;
	if (item->aged)
		bucket_take(&s->floor[item->level], delta);
	v = &s->vms[item->vm_slot];
	if (!v->defined || v->gen != item->vm_gen)
		return; /* the VM went away meanwhile */
	vt_add(&v->vt[item->level], delta, v->weight);
	bucket_take(&v->rate, delta);
	v->used_ns += measured_ns;
	v->mem_held -= item->mem_bytes < v->mem_held ? item->mem_bytes : v->mem_held;
}

static bool defined_vm(const struct vgpu_sched *s, uint32_t slot)
{
	return s && slot < s->max_vms && s->vms[slot].defined;
}

int vgpu_sched_level(const struct vgpu_sched *s, uint32_t slot)
{
	return defined_vm(s, slot) ? s->vms[slot].level : -1;
}

void vgpu_sched_charge(struct vgpu_sched *s, uint32_t slot, uint32_t gpu, uint64_t ns)
{
	struct sched_vm *v;
	struct sched_pool *p;

	if (!defined_vm(s, slot) || gpu >= s->n_gpus)
		return;
	if (ns > VGPU_SCHED_COST_MAX_NS)
		ns = VGPU_SCHED_COST_MAX_NS;
	v = &s->vms[slot];
	p = &s->pools[v->pool];
	s->gpu_used_ns[gpu] += ns;
	vt_add(&p->vt[v->level], (int64_t)ns, p->weight);
	bucket_take(&p->cap, (int64_t)ns);
	p->used_ns += ns;
	s->pool_gpu_ns[(size_t)v->pool * s->n_gpus + gpu] += ns;
	vt_add(&v->vt[v->level], (int64_t)ns, v->weight);
	bucket_take(&v->rate, (int64_t)ns);
	v->used_ns += ns;
	v->ran_on |= 1ull << gpu;
	/* Time charged after the fact owes at most a second of the rate: the
	 * rest is forgiven (a worker that cannot be paced must not close the
	 * VM's bucket for good), and late steps on a loaded host are still
	 * paid back. */
	if (p->cap.rate && p->cap.tokens < -(int64_t)p->cap.rate)
		p->cap.tokens = -(int64_t)p->cap.rate;
	if (v->rate.rate && v->rate.tokens < -(int64_t)v->rate.rate)
		v->rate.tokens = -(int64_t)v->rate.rate;
}

int64_t vgpu_sched_room(struct vgpu_sched *s, uint32_t slot, uint64_t now_ns, uint64_t want_ns,
			uint64_t *opens_ns)
{
	struct bucket *b[2];
	int64_t room = INT64_MAX;

	*opens_ns = 0;
	if (!defined_vm(s, slot))
		return room;
	b[0] = &s->vms[slot].rate;
	b[1] = &s->pools[s->vms[slot].pool].cap;
	for (int i = 0; i < 2; i++) {
		if (b[i]->rate == 0)
			continue;
		bucket_refill(b[i], now_ns);
		if (b[i]->tokens < room)
			room = b[i]->tokens;
	}
	for (int i = 0; i < 2; i++) {
		int64_t want = want_ns < (uint64_t)b[i]->burst ? (int64_t)want_ns : b[i]->burst;

		if (b[i]->rate != 0 && b[i]->tokens < want)
			*opens_ns = max_u64(*opens_ns, bucket_holds(b[i], want, now_ns));
	}
	return room;
}

int64_t vgpu_sched_ahead(const struct vgpu_sched *s, uint32_t a, uint32_t b)
{
	const struct sched_vm *va, *vb;
	uint64_t x, y;
	uint32_t weight;
	__int128 d;
	int l;

	if (!defined_vm(s, a) || !defined_vm(s, b))
		return 0;
	va = &s->vms[a];
	vb = &s->vms[b];
	l = va->level;
	if (va->pool != vb->pool) {
		x = s->pools[va->pool].vt[l];
		y = s->pools[vb->pool].vt[l];
		weight = s->pools[va->pool].weight;
	} else {
		x = va->vt[l];
		y = vb->vt[l];
		weight = va->weight;
	}
	d = ((__int128)x - (__int128)y) * weight / VT_ONE;
	return d > INT64_MAX ? INT64_MAX : d < -INT64_MAX ? -INT64_MAX : (int64_t)d;
}

void vgpu_sched_outside_begin(struct vgpu_sched *s)
{
	for (int l = 0; l < LEVELS; l++) {
		s->out_pool_min[l] = UINT64_MAX;
		for (uint32_t p = 0; p < s->max_pools; p++)
			s->pools[p].out_vm_min[l] = UINT64_MAX;
	}
}

void vgpu_sched_outside_running(struct vgpu_sched *s, uint32_t slot)
{
	struct sched_vm *v;
	struct sched_pool *p;
	int l;

	if (!defined_vm(s, slot))
		return;
	v = &s->vms[slot];
	p = &s->pools[v->pool];
	l = v->level;
	if (p->vt[l] < s->out_pool_min[l])
		s->out_pool_min[l] = p->vt[l];
	if (v->vt[l] < p->out_vm_min[l])
		p->out_vm_min[l] = v->vt[l];
}

void vgpu_sched_outside_end(struct vgpu_sched *s)
{
	for (int l = 0; l < LEVELS; l++) {
		if (s->out_pool_min[l] != UINT64_MAX)
			s->pool_floor[l] = max_u64(s->pool_floor[l], s->out_pool_min[l]);
		for (uint32_t p = 0; p < s->max_pools; p++)
			if (s->pools[p].out_vm_min[l] != UINT64_MAX)
				s->pools[p].vm_floor[l] =
					max_u64(s->pools[p].vm_floor[l], s->pools[p].out_vm_min[l]);
	}
}

void vgpu_sched_resume(struct vgpu_sched *s, uint32_t slot)
{
	struct sched_vm *v;
	struct sched_pool *p;
	int l;

	if (!defined_vm(s, slot))
		return;
	v = &s->vms[slot];
	p = &s->pools[v->pool];
	l = v->level;
	v->vt[l] = max_u64(v->vt[l], p->vm_floor[l]);
	p->vt[l] = max_u64(p->vt[l], s->pool_floor[l]);
}

uint32_t vgpu_sched_drain_vm(struct vgpu_sched *s, uint32_t slot,
			     struct vgpu_sched_item **ret_list)
{
	struct vgpu_sched_item *head = NULL, **out = &head;
	uint32_t n = 0;

	if (ret_list)
		*ret_list = NULL;
	if (!s || !ret_list || slot >= s->max_vms)
		return 0;
	while (s->vms[slot].depth > 0) {
		*out = take(s, slot);
		out = &(*out)->next;
		n++;
	}
	*ret_list = head;
	return n;
}

uint32_t vgpu_sched_depth(const struct vgpu_sched *s, uint32_t slot)
{
	if (!s)
		return 0;
	if (slot == UINT32_MAX)
		return s->queued;
	return slot < s->max_vms ? s->vms[slot].depth : 0;
}

uint32_t vgpu_sched_level_depth(const struct vgpu_sched *s, int level)
{
	uint32_t n = 0;

	for (uint32_t slot = s ? s->first : NONE; slot != NONE; slot = s->vms[slot].next)
		if (s->vms[slot].level == level)
			n += s->vms[slot].depth;
	return n;
}

void vgpu_sched_usage(const struct vgpu_sched *s, uint32_t slot, uint32_t pool, uint32_t gpu,
		      struct vgpu_sched_usage *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!s)
		return;
	if (slot < s->max_vms && s->vms[slot].defined) {
		ret->vm_ns = s->vms[slot].used_ns;
		ret->picks = s->vms[slot].picks;
		ret->aged = s->vms[slot].aged;
		ret->mem_held = s->vms[slot].mem_held;
		ret->mem_quota = s->vms[slot].mem_quota;
		ret->vm_gpus = s->vms[slot].ran_on;
	}
	if (pool < s->max_pools)
		ret->pool_ns = s->pools[pool].used_ns;
	if (gpu < s->n_gpus) {
		ret->gpu_ns = s->gpu_used_ns[gpu];
		for (int l = 0; l < LEVELS; l++)
			ret->gpu_running += s->gpu_inflight[gpu][l];
	}
	if (pool < s->max_pools && gpu < s->n_gpus)
		ret->pool_gpu_ns = s->pool_gpu_ns[(size_t)pool * s->n_gpus + gpu];
}
