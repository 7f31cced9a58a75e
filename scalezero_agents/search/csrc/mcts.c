/*
 * scalezero-agents batched MCTS core (plain C99). See mcts.h for the data layout.
 *
 * Semantics (the NumPy oracle in ../reference.py follows them operation by operation, so both
 * give bit-identical trees; keep the two in step):
 *
 * - pUCT (MuZero): score(a) = P(a) * (log((N + c2 + 1) / c2) + c1) * sqrt(N) / (1 + n(a)) + Qn(a),
 *   N = the node's visit count, n(a) = the child's. Qn(a) = min-max normalised r(a) + g * v(a),
 *   denominator floored at `value_floor`, clamped to [0, 1]; the statistics are updated with the Q of
 *   every edge on a backup path.
 *   - Unvisited children take the normalised value of their parent, V(s) = its mean backed-up
 *     return (`unvisited_parent` = 1, the default; mctx's parent-and-siblings transform does the
 *     same), or Qn = 0 as in the MuZero pseudocode (`unvisited_parent` = 0). Measured reason for the
 *     default (40 seeds, 50 simulations, benchmarks in tests/search/test_semantics.py): with Qn = 0 a
 *     sampled search (K = 20) of a 1-D bandit tries 2.2 of its 20 samples and picks the best one 3%
 *     of the time, vs 20/20 and 50% with the parent's value; on random 5-arm bandits with random
 *     priors the best arm is chosen 36% vs 68% of the time.
 *   - The root starts with visit count 1 and value sum = the network's root value, exactly like every
 *     other node after its own expansion (and as mctx does). The MuZero pseudocode starts the root at
 *     0 visits, which makes sqrt(N) = 0 on the first simulation: every child then scores 0 and the
 *     first expansion ignores the prior (an arbitrary tie). Starting at 1 makes it follow the prior.
 *     Root visit counts reported to callers exclude that initial visit.
 *   - Ties go to the lowest action index. Unvisited children all score P(a) * pbc + the same Qn, so only the one
 *     with the highest prior (lowest index on ties) is a candidate: unvisited children are tried in
 *     prior order. Selection therefore scores the visited children plus that one candidate.
 * - Sampled MuZero: K sampled actions per node, each with prior 1/K (the proposal is the policy,
 *   so beta-hat / beta * pi is the empirical 1/K); root Dirichlet noise mixes into these priors.
 * - Gumbel MuZero (root): Gumbel-top-k + sequential halving via a visit schedule; the completed-Q
 *   improved policy softmax(logits + sigma(q_completed)) is the policy target.
 * - Random numbers: one splitmix64 stream per root, seeded by the caller.
 *
 * Speed (a simulation is a few hundred cycles of work per root, so memory layout and per-call costs
 * decide): szm_expand_backup with select_next runs expansion, backup and the next selection root by
 * root, while the root's path is still in cache; pUCT scores a node's children from the node's own
 * `kids` row (szm_kid records: the children's Q, prior and visits, kept equal to their node records
 * by the backup) instead of one node record per child; a node's next_kid is found again only when
 * the node is next selected from (most nodes never are), with SSE2 scans where available (the max,
 * then its first slot through a bit mask: no data-dependent branch to mispredict).
 *
 * This file never allocates: every buffer belongs to the caller.
 */
#include "mcts.h"

#include <math.h>
#include <stddef.h>

/* SSE2 (every x86-64 CPU has it) for the max scans over a node's row (max_where), finding the
 * next unvisited child (first_at) and the NaN/inf checks of inputs (any_nonfinite); plain C
 * elsewhere, with the same results. */
#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define SZM_SSE2 1
#endif

/* Cache prefetch hints (no effect on results); a no-op where the compiler has no builtin. */
#ifdef __GNUC__
#define PREFETCH_R(p) __builtin_prefetch((p), 0, 3)
#define PREFETCH_W(p) __builtin_prefetch((p), 1, 3)
#else
#define PREFETCH_R(p) ((void)(p))
#define PREFETCH_W(p) ((void)(p))
#endif

#define LOG_SQRT_2PI 0.91893853320467274178
#define GUMBEL_EPS 1e-8
#define TANH_EPS 1e-6
#define LOG_STD_MIN -20.0
#define LOG_STD_MAX 2.0

/* ------------------------------------------------------------------ random numbers */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform on the open interval (0, 1). */
static double rng_uniform(uint64_t *s)
{
    return ((double)(rng_next(s) >> 12) + 0.5) * (1.0 / 4503599627370496.0);
}

/* Standard normal, Marsaglia's polar method (one value per accepted pair). */
static double rng_normal(uint64_t *s)
{
    double u, v, q;
    do {
        u = 2.0 * rng_uniform(s) - 1.0;
        v = 2.0 * rng_uniform(s) - 1.0;
        q = u * u + v * v;
    } while (q >= 1.0 || q == 0.0);
    return u * sqrt(-2.0 * log(q) / q);
}

/* Gamma(alpha, 1), Marsaglia and Tsang; alpha < 1 through the alpha + 1 boost. The constants
 * depend on alpha only, so a batch of draws sets them up once (gamma_setup). */
typedef struct {
    double alpha, d, c, inv_alpha;
} gamma_params;

static gamma_params gamma_setup(double alpha)
{
    gamma_params p;
    double a = alpha < 1.0 ? alpha + 1.0 : alpha;
    p.alpha = alpha;
    p.d = a - 1.0 / 3.0;
    p.c = 1.0 / sqrt(9.0 * p.d);
    p.inv_alpha = 1.0 / alpha;
    return p;
}

static double rng_gamma(uint64_t *s, const gamma_params *p)
{
    double d = p->d, c = p->c;
    for (;;) {
        double x, v, u, x2;
        do {
            x = rng_normal(s);
            v = 1.0 + c * x;
        } while (v <= 0.0);
        v = v * v * v;
        u = rng_uniform(s);
        x2 = x * x;
        if (u < 1.0 - 0.0331 * x2 * x2 || log(u) < 0.5 * x2 + d * (1.0 - v + log(v)))
            return p->alpha < 1.0 ? d * v * pow(rng_uniform(s), p->inv_alpha) : d * v;
    }
}

/* ------------------------------------------------------------------ small helpers */

static int fail(szm_tree *t, int code, int32_t root, int32_t index)
{
    t->err_root = root;
    t->err_index = index;
    return code;
}

static ptrdiff_t node_at(const szm_tree *t, int32_t b, int32_t node)
{
    return (ptrdiff_t)b * t->capacity + node;
}

static ptrdiff_t edge_at(const szm_tree *t, int32_t b, int32_t node)
{
    return node_at(t, b, node) * t->num_actions;
}

static double node_value(const szm_tree *t, ptrdiff_t n)
{
    return t->nodes[n].value_sum / (double)t->nodes[n].visit;
}

/* The largest x[a] over the slots with child[a] == code (`equal`) or child[a] != code (not
 * `equal`); -inf if none. Masked-out slots may hold anything, NaN included. Max is exact in any
 * order for the values used here (never NaN; a +-0 tie does not matter to the callers), so the
 * SSE2 path (two slots per step, no compare-and-branch chain) returns what the C loop returns. */
static double max_where(const int32_t *child, const double *x, int32_t n, int32_t code, int equal)
{
    double top = -INFINITY;
    int32_t a = 0;
#ifdef SZM_SSE2
    const __m128d ninf = _mm_set1_pd(-INFINITY);
    const __m128i want = _mm_set1_epi32(code), flip = _mm_set1_epi32(equal ? 0 : -1);
    __m128d m = ninf;
    for (; a + 2 <= n; a += 2) {
        __m128i c = _mm_loadl_epi64((const __m128i *)(const void *)(child + a));
        __m128i hit = _mm_xor_si128(_mm_cmpeq_epi32(c, want), flip);
        __m128d keep = _mm_castsi128_pd(_mm_unpacklo_epi32(hit, hit)); /* 32-bit masks to 64 */
        __m128d v = _mm_or_pd(_mm_and_pd(keep, _mm_loadu_pd(x + a)), _mm_andnot_pd(keep, ninf));
        m = _mm_max_pd(m, v);
    }
    top = _mm_cvtsd_f64(_mm_max_sd(m, _mm_unpackhi_pd(m, m)));
#endif
    for (; a < n; ++a)
        if ((child[a] == code) == (equal != 0) && x[a] > top)
            top = x[a];
    return top;
}

/* In-place softmax over the legal slots of one node's `prior` row; illegal slots get 0. */
static void softmax_legal(double *p, const int32_t *child, int32_t count)
{
    double m = max_where(child, p, count, SZM_ILLEGAL, 0), total = 0.0;
    int32_t a;
    for (a = 0; a < count; ++a) {
        if (child[a] == SZM_ILLEGAL) {
            p[a] = 0.0;
        } else {
            p[a] = exp(p[a] - m);
            total += p[a];
        }
    }
    for (a = 0; a < count; ++a)
        p[a] = p[a] / total;
}

#ifdef SZM_SSE2
/* Index of the lowest set bit of a nonzero mask. */
static int32_t lowest_bit(uint32_t mask)
{
#ifdef __GNUC__
    return (int32_t)__builtin_ctz(mask);
#else
    int32_t i = 0;
    while (!(mask & 1u)) {
        mask >>= 1;
        ++i;
    }
    return i;
#endif
}
#endif

/* The first slot with child[a] == code and x[a] == top, or n if none. With SSE2 the slots are
 * tested two at a time into a bit mask (up to 32 slots per mask) whose lowest set bit is the
 * answer: no data-dependent branch per slot. A scan that stops at the hit mispredicts its exit on
 * most calls, and refresh_next_kid runs about once per simulation and root: measured 4-9% of a
 * B = 256 search (in-process A/B). */
static int32_t first_at(const int32_t *child, const double *x, int32_t n, int32_t code, double top)
{
    int32_t base = 0;
#ifdef SZM_SSE2
    const __m128i want = _mm_set1_epi32(code);
    const __m128d value = _mm_set1_pd(top);
    while (n - base >= 2) {
        int32_t a, end = n - base < 32 ? (n - base) & ~1 : 32;
        uint32_t mask = 0;
        for (a = 0; a < end; a += 2) {
            __m128i c = _mm_loadl_epi64((const __m128i *)(const void *)(child + base + a));
            __m128i hit = _mm_cmpeq_epi32(c, want);
            __m128d keep = _mm_castsi128_pd(_mm_unpacklo_epi32(hit, hit)); /* 32-bit masks to 64 */
            __m128d eq = _mm_and_pd(keep, _mm_cmpeq_pd(_mm_loadu_pd(x + base + a), value));
            mask |= (uint32_t)_mm_movemask_pd(eq) << a;
        }
        if (mask)
            return base + lowest_bit(mask);
        base += end;
    }
#endif
    for (; base < n; ++base)
        if (child[base] == code && x[base] == top)
            return base;
    return n;
}

/* The unvisited legal child with the highest prior (lowest index on ties), or SZM_NEXT_NONE. */
static void refresh_next_kid(szm_tree *t, ptrdiff_t n)
{
    const int32_t *child = t->child + n * t->num_actions;
    const double *prior = t->prior + n * t->num_actions;
    double top = max_where(child, prior, t->num_actions, SZM_UNVISITED, 1);
    t->nodes[n].next_kid = top > -INFINITY /* legal priors are >= 0 */
                               ? first_at(child, prior, t->num_actions, SZM_UNVISITED, top)
                               : SZM_NEXT_NONE;
    t->nodes[n].next_prior = top;
}

/* Mark a sampled node's K children as ready to select, with uniform priors 1/K. */
static void samples_ready(szm_tree *t, ptrdiff_t n)
{
    int32_t k, K = t->num_actions;
    for (k = 0; k < K; ++k) {
        t->child[n * K + k] = SZM_UNVISITED;
        t->prior[n * K + k] = 1.0 / (double)K;
    }
    t->nodes[n].next_kid = 0; /* uniform priors: the lowest index */
    t->nodes[n].next_prior = 1.0 / (double)K;
}

/* Draw a node's K tanh-squashed Gaussian actions from its stored mu / log_std (root b's stream). */
static void draw_samples(szm_tree *t, int32_t b, ptrdiff_t n)
{
    int32_t k, j, K = t->num_actions, d = t->action_dim;
    const double *mu = t->gauss + n * 2 * d, *log_std = mu + d;
    for (k = 0; k < K; ++k) {
        double *out = t->sampled_action + (n * K + k) * d, lp = 0.0;
        for (j = 0; j < d; ++j) {
            double ls = log_std[j], eps, x;
            ls = ls < LOG_STD_MIN ? LOG_STD_MIN : (ls > LOG_STD_MAX ? LOG_STD_MAX : ls);
            eps = rng_normal(&t->rng[b]);
            x = tanh(mu[j] + exp(ls) * eps);
            out[j] = x;
            lp += -0.5 * eps * eps - ls - LOG_SQRT_2PI - log(1.0 - x * x + TANH_EPS);
        }
        t->sampled_logp[n * K + k] = lp;
    }
}

/* Before selecting from a node: its priors (softmax or sampled actions on the first selection) and
 * its next_kid (found lazily: most nodes are never selected from again after a child is added). */
static void ensure_prior(szm_tree *t, int32_t b, int32_t node)
{
    ptrdiff_t n = node_at(t, b, node);
    if (t->nodes[n].next_kid >= SZM_NEXT_NONE)
        return;
    if (t->nodes[n].next_kid == SZM_NEXT_STALE) {
        refresh_next_kid(t, n);
        return;
    }
    if (t->mode == SZM_MODE_SAMPLED) {
        draw_samples(t, b, n);
        samples_ready(t, n);
    } else {
        ptrdiff_t e = n * t->num_actions;
        softmax_legal(t->prior + e, t->child + e, t->num_actions);
        refresh_next_kid(t, n);
    }
}

/* Mix Dirichlet(alpha) noise over the legal children into the root priors. `scratch` has A slots. */
static void add_dirichlet(szm_tree *t, int32_t b, double *scratch)
{
    ptrdiff_t e = edge_at(t, b, 0);
    double total = 0.0, frac = t->dirichlet_fraction;
    int32_t a, legal = 0;
    gamma_params params = gamma_setup(t->dirichlet_alpha);
    for (a = 0; a < t->num_actions; ++a) {
        if (t->child[e + a] == SZM_ILLEGAL)
            continue;
        scratch[a] = rng_gamma(&t->rng[b], &params);
        total += scratch[a];
        ++legal;
    }
    for (a = 0; a < t->num_actions; ++a) {
        double noise;
        if (t->child[e + a] == SZM_ILLEGAL)
            continue;
        /* all gammas can underflow to 0 for a tiny alpha: fall back to uniform noise */
        noise = total > 0.0 ? scratch[a] / total : 1.0 / (double)legal;
        t->prior[e + a] = t->prior[e + a] * (1.0 - frac) + frac * noise;
    }
}

static void update_minmax(szm_tree *t, int32_t b, double q)
{
    if (q < t->mm_min[b])
        t->mm_min[b] = q;
    if (q > t->mm_max[b])
        t->mm_max[b] = q;
}

/* Sequential-halving schedule: out[i] = the visit count a considered root action must have for
 * simulation i to pick it (Danihelka et al. 2022, "Policy improvement by planning with Gumbel"). */
static void halving_schedule(int32_t m, int32_t n, int32_t *out)
{
    int32_t i = 0, rounds = 0, considered = m, visits = 0;
    if (m <= 1) {
        for (i = 0; i < n; ++i)
            out[i] = i;
        return;
    }
    while (((int32_t)1 << rounds) < m)
        ++rounds;
    while (i < n) {
        int32_t extra = n / (rounds * considered), e, c;
        if (extra < 1)
            extra = 1;
        for (e = 0; e < extra; ++e) {
            for (c = 0; c < considered && i < n; ++c)
                out[i++] = visits;
            ++visits;
        }
        considered = considered / 2 < 2 ? 2 : considered / 2;
    }
}

/* ------------------------------------------------------------------ configuration */

static int check_config(const szm_tree *t)
{
    if (t == NULL)
        return SZM_ERR_CONFIG;
    if (t->batch < 1 || t->capacity < 1 || t->num_actions < 1)
        return SZM_ERR_CONFIG;
    if (t->mode != SZM_MODE_PUCT && t->mode != SZM_MODE_SAMPLED && t->mode != SZM_MODE_GUMBEL)
        return SZM_ERR_CONFIG;
    if (!(t->c2 > 0.0) || !(t->c1 >= 0.0) || !(t->discount >= 0.0 && t->discount <= 1.0))
        return SZM_ERR_CONFIG;
    if (!(t->value_floor > 0.0) || !(t->dirichlet_alpha > 0.0))
        return SZM_ERR_CONFIG;
    if (!(t->dirichlet_fraction >= 0.0 && t->dirichlet_fraction <= 1.0))
        return SZM_ERR_CONFIG;
    if (!t->nodes || !t->child || !t->prior || !t->valid || !t->num_nodes || !t->mm_min ||
        !t->mm_max || !t->rng || !t->scratch || !t->max_depth || !t->kids || !t->pbc_table ||
        !t->recip_table || !t->out_parent || !t->out_action || !t->out_parent_slot || !t->out_node_slot ||
        !t->out_node || !t->out_depth || !t->res_visits || !t->res_policy || !t->res_value ||
        !t->res_action)
        return SZM_ERR_CONFIG;
    if (t->mode == SZM_MODE_SAMPLED &&
        (t->action_dim < 1 || !t->sampled_action || !t->sampled_logp || !t->gauss || !t->out_action_vec ||
         !t->res_action_vec))
        return SZM_ERR_CONFIG;
    if (t->mode == SZM_MODE_GUMBEL &&
        (t->max_considered < 1 || !t->logit || !t->raw_value || !t->gumbel || !t->sh_visits || !t->num_considered ||
         !(t->c_visit >= 0.0) || !(t->c_scale >= 0.0) ||
         (t->interior != SZM_INTERIOR_PUCT && t->interior != SZM_INTERIOR_DETERMINISTIC)))
        return SZM_ERR_CONFIG;
    return SZM_OK;
}

int szm_init(szm_tree *t)
{
    int32_t n;
    int rc = check_config(t);
    if (rc != SZM_OK)
        return rc;
    for (n = 0; n <= t->capacity; ++n) {
        t->pbc_table[n] = (log(((double)n + t->c2 + 1.0) / t->c2) + t->c1) * sqrt((double)n);
        t->recip_table[n] = 1.0 / (1.0 + (double)n);
    }
    t->is_reset = 0;
    t->pending = 0;
    return SZM_OK;
}

/* ------------------------------------------------------------------ reset */

static void init_root(szm_tree *t, int32_t b, double value)
{
    ptrdiff_t n = node_at(t, b, 0);
    t->nodes[n].visit = 1;
    t->nodes[n].value_sum = value;
    if (t->raw_value)
        t->raw_value[n] = value;
    t->nodes[n].reward = 0.0;
    t->nodes[n].parent = -1;
    t->nodes[n].action = -1;
    t->nodes[n].nkids = 0;
    t->nodes[n].kid_index = -1;
    t->num_nodes[b] = 1;
    t->max_depth[b] = 0;
    t->mm_min[b] = INFINITY;
    t->mm_max[b] = -INFINITY;
}

static void reset_gumbel_root(szm_tree *t, int32_t b, int32_t legal, int32_t noise)
{
    ptrdiff_t e = edge_at(t, b, 0);
    int32_t a, m = legal < t->max_considered ? legal : t->max_considered;
    for (a = 0; a < t->num_actions; ++a) {
        double g = 0.0;
        if (noise && t->child[e + a] != SZM_ILLEGAL)
            g = -log(-log(rng_uniform(&t->rng[b])));
        t->gumbel[(ptrdiff_t)b * t->num_actions + a] = g;
    }
    t->num_considered[b] = m;
    halving_schedule(m, t->capacity - 1, t->sh_visits + (ptrdiff_t)b * (t->capacity - 1));
}

int szm_reset(szm_tree *t, const double *root_value, const double *root_logits,
              const uint8_t *legal, int32_t noise)
{
    int32_t b, a, A;
    if (t == NULL || t->mode == SZM_MODE_SAMPLED)
        return SZM_ERR_CONFIG;
    A = t->num_actions;
    for (b = 0; b < t->batch; ++b) { /* validate everything before touching the tree */
        int32_t nlegal = 0, nvalid = 0;
        if (!isfinite(root_value[b]))
            return fail(t, SZM_ERR_NONFINITE_VALUE, b, -1);
        for (a = 0; a < A; ++a) {
            ptrdiff_t i = (ptrdiff_t)b * A + a;
            nlegal += legal[i] != 0;
            nvalid += t->valid[i] != 0;
            if (legal[i] && !isfinite(root_logits[i]))
                return fail(t, SZM_ERR_NONFINITE_LOGIT, b, a);
        }
        if (nlegal == 0)
            return fail(t, SZM_ERR_NO_LEGAL_ACTION, b, -1);
        if (nvalid == 0)
            return fail(t, SZM_ERR_NO_LEGAL_ACTION, b, -2);
    }
    for (b = 0; b < t->batch; ++b) {
        ptrdiff_t e = edge_at(t, b, 0);
        int32_t nlegal = 0;
        init_root(t, b, root_value[b]);
        for (a = 0; a < A; ++a) {
            int ok = legal[(ptrdiff_t)b * A + a] != 0;
            nlegal += ok;
            t->child[e + a] = ok ? SZM_UNVISITED : SZM_ILLEGAL;
            t->prior[e + a] = root_logits[(ptrdiff_t)b * A + a];
            if (t->logit)
                t->logit[e + a] = root_logits[(ptrdiff_t)b * A + a];
        }
        softmax_legal(t->prior + e, t->child + e, A);
        if (t->mode == SZM_MODE_GUMBEL)
            reset_gumbel_root(t, b, nlegal, noise);
        else if (noise && t->dirichlet_fraction > 0.0)
            add_dirichlet(t, b, t->scratch + (ptrdiff_t)b * 2 * A);
        refresh_next_kid(t, node_at(t, b, 0));
    }
    t->is_reset = 1;
    t->pending = 0;
    return SZM_OK;
}

/* ------------------------------------------------------------------ sampled actions */

static int check_gaussian(szm_tree *t, int32_t b, const double *mu, const double *log_std)
{
    int32_t j;
    for (j = 0; j < t->action_dim; ++j) {
        ptrdiff_t i = (ptrdiff_t)b * t->action_dim + j;
        if (!isfinite(mu[i]))
            return fail(t, SZM_ERR_NONFINITE_ACTION, b, j);
        if (!isfinite(log_std[i]))
            return fail(t, SZM_ERR_NONFINITE_STD, b, j);
    }
    return SZM_OK;
}

static int check_samples(szm_tree *t, int32_t b, const double *actions, const double *logp)
{
    int32_t k, K = t->num_actions, d = t->action_dim;
    for (k = 0; k < K; ++k) {
        int32_t j;
        if (!isfinite(logp[(ptrdiff_t)b * K + k]))
            return fail(t, SZM_ERR_NONFINITE_LOGP, b, k);
        for (j = 0; j < d; ++j) {
            double x = actions[((ptrdiff_t)b * K + k) * d + j];
            if (!isfinite(x))
                return fail(t, SZM_ERR_NONFINITE_ACTION, b, k);
            if (x < -1.0 || x > 1.0)
                return fail(t, SZM_ERR_ACTION_RANGE, b, k);
        }
    }
    return SZM_OK;
}

static int check_sampled_inputs(szm_tree *t, const double *mu, const double *log_std,
                                const double *actions, const double *logp)
{
    int32_t b;
    for (b = 0; b < t->batch; ++b) {
        int rc = actions ? check_samples(t, b, actions, logp) : check_gaussian(t, b, mu, log_std);
        if (rc != SZM_OK)
            return rc;
    }
    return SZM_OK;
}

/* A new sampled node: copy given samples now, or keep its Gaussian and draw on first selection
 * (most new nodes are leaves that are never selected from, so their samples are never drawn). */
static void fill_samples(szm_tree *t, int32_t b, int32_t node, const double *mu,
                         const double *log_std, const double *actions, const double *logp)
{
    int32_t k, j, K = t->num_actions, d = t->action_dim;
    ptrdiff_t n = node_at(t, b, node);
    if (actions) {
        for (k = 0; k < K; ++k) {
            for (j = 0; j < d; ++j)
                t->sampled_action[(n * K + k) * d + j] = actions[((ptrdiff_t)b * K + k) * d + j];
            t->sampled_logp[n * K + k] = logp[(ptrdiff_t)b * K + k];
        }
        samples_ready(t, n);
        return;
    }
    for (j = 0; j < d; ++j) {
        t->gauss[n * 2 * d + j] = mu[(ptrdiff_t)b * d + j];
        t->gauss[n * 2 * d + d + j] = log_std[(ptrdiff_t)b * d + j];
    }
    for (k = 0; k < K; ++k)
        t->child[n * K + k] = SZM_UNVISITED;
    t->nodes[n].next_kid = SZM_NEXT_PENDING;
}

int szm_reset_sampled(szm_tree *t, const double *root_value, const double *mu,
                      const double *log_std, const double *actions, const double *logp,
                      int32_t noise)
{
    int32_t b;
    int rc;
    if (t == NULL || t->mode != SZM_MODE_SAMPLED)
        return SZM_ERR_CONFIG;
    for (b = 0; b < t->batch; ++b)
        if (!isfinite(root_value[b]))
            return fail(t, SZM_ERR_NONFINITE_VALUE, b, -1);
    rc = check_sampled_inputs(t, mu, log_std, actions, logp);
    if (rc != SZM_OK)
        return rc;
    for (b = 0; b < t->batch; ++b) {
        init_root(t, b, root_value[b]);
        fill_samples(t, b, 0, mu, log_std, actions, logp);
        ensure_prior(t, b, 0); /* the root's samples are drawn now */
        if (noise && t->dirichlet_fraction > 0.0)
            add_dirichlet(t, b, t->scratch + (ptrdiff_t)b * 2 * t->num_actions);
        refresh_next_kid(t, node_at(t, b, 0));
    }
    t->is_reset = 1;
    t->pending = 0;
    return SZM_OK;
}

/* ------------------------------------------------------------------ selection */

/* pUCT at `node` of root b: returns the child slot and stores its node id in *child (SZM_UNVISITED
 * for the unvisited candidate next_kid). Scores come from the node's own `kids` row. */
static int32_t select_puct(szm_tree *t, int32_t b, int32_t node, double lo, double inv, int32_t *child)
{
    ptrdiff_t n = node_at(t, b, node);
    const szm_kid *kid = t->kids + n * t->num_actions;
    double pbc, best_score;
    int32_t i, best, best_node = SZM_UNVISITED, nkids;
    if (t->nodes[n].next_kid < SZM_NEXT_NONE) /* first selection, or next_kid was taken */
        ensure_prior(t, b, node);
    pbc = t->pbc_table[t->nodes[n].visit];
    nkids = t->nodes[n].nkids;
    best = t->nodes[n].next_kid;
    if (best >= 0) {
        double qn = 0.0;
        if (t->unvisited_parent && t->mm_max[b] >= lo) {
            qn = (node_value(t, n) - lo) * inv;
            qn = qn < 0.0 ? 0.0 : (qn > 1.0 ? 1.0 : qn);
        }
        best_score = t->nodes[n].next_prior * pbc + qn; /* 1 / (1 + 0 visits) = 1 */
    } else {
        best_score = -INFINITY;
    }
    for (i = 0; i < nkids; ++i) {
        double qn = (kid[i].q - lo) * inv, score;
        qn = qn < 0.0 ? 0.0 : (qn > 1.0 ? 1.0 : qn);
        score = kid[i].prior * pbc * t->recip_table[kid[i].visit] + qn;
        if (score > best_score || (score == best_score && kid[i].action < best)) {
            best_score = score;
            best = kid[i].action;
            best_node = kid[i].node;
        }
    }
    *child = best_node;
    return best;
}

/* Completed Q-values of a node's legal children, rescaled to [0, 1] and multiplied by the
 * gumbel sigma scale. Writes sigma(q_completed) into `sigma` (A slots); returns the children's
 * total visit count. */
static int32_t completed_sigma(const szm_tree *t, int32_t b, int32_t node, double *sigma)
{
    ptrdiff_t nb = node_at(t, b, 0), e = edge_at(t, b, node);
    int32_t a, total = 0, most = 0, A = t->num_actions;
    double sum_p = 0.0, sum_pq = 0.0, vmix, lo = INFINITY, hi = -INFINITY, scale;
    for (a = 0; a < A; ++a) {
        int32_t c = t->child[e + a];
        if (c < 0)
            continue;
        sigma[a] = t->nodes[nb + c].q;
        total += t->nodes[nb + c].visit;
        most = t->nodes[nb + c].visit > most ? t->nodes[nb + c].visit : most;
        sum_p += t->prior[e + a];
        sum_pq += t->prior[e + a] * sigma[a];
    }
    vmix = t->raw_value[nb + node];
    if (total > 0 && sum_p > 0.0)
        vmix = (vmix + (double)total * (sum_pq / sum_p)) / (1.0 + (double)total);
    for (a = 0; a < A; ++a) {
        int32_t c = t->child[e + a];
        if (c == SZM_ILLEGAL)
            continue;
        if (c == SZM_UNVISITED)
            sigma[a] = vmix;
        lo = sigma[a] < lo ? sigma[a] : lo;
        hi = sigma[a] > hi ? sigma[a] : hi;
    }
    scale = (t->c_visit + (double)most) * t->c_scale;
    for (a = 0; a < A; ++a) {
        if (t->child[e + a] == SZM_ILLEGAL)
            continue;
        sigma[a] = scale * ((sigma[a] - lo) / (hi - lo > GUMBEL_EPS ? hi - lo : GUMBEL_EPS));
    }
    return total;
}

/* softmax(logit + sigma) over the legal slots, written into `out`. */
static void improved_policy(const szm_tree *t, int32_t b, int32_t node, const double *sigma,
                            double *out)
{
    ptrdiff_t e = edge_at(t, b, node);
    int32_t a;
    for (a = 0; a < t->num_actions; ++a)
        out[a] = t->logit[e + a] + sigma[a];
    softmax_legal(out, t->child + e, t->num_actions);
}

static int32_t select_gumbel_root(szm_tree *t, int32_t b, double *scratch)
{
    ptrdiff_t nb = node_at(t, b, 0), e = edge_at(t, b, 0);
    int32_t a, best = -1, any = -1, A = t->num_actions;
    int32_t sim = t->nodes[nb].visit - 1;
    int32_t target = t->sh_visits[(ptrdiff_t)b * (t->capacity - 1) + sim];
    double best_score = -INFINITY, any_score = -INFINITY;
    const double *g = t->gumbel + (ptrdiff_t)b * A;
    completed_sigma(t, b, 0, scratch);
    for (a = 0; a < A; ++a) {
        int32_t c = t->child[e + a];
        double score;
        if (c == SZM_ILLEGAL)
            continue;
        score = g[a] + t->logit[e + a] + scratch[a];
        if (score > any_score) {
            any_score = score;
            any = a;
        }
        if ((c >= 0 ? t->nodes[nb + c].visit : 0) == target && score > best_score) {
            best_score = score;
            best = a;
        }
    }
    return best >= 0 ? best : any; /* the schedule always has a candidate; `any` is a guard */
}

static int32_t select_deterministic(szm_tree *t, int32_t b, int32_t node, double *scratch,
                                    double *policy)
{
    ptrdiff_t nb = node_at(t, b, 0), e = edge_at(t, b, node);
    int32_t a, best = -1, total;
    double best_score = -INFINITY;
    ensure_prior(t, b, node);
    total = completed_sigma(t, b, node, scratch);
    improved_policy(t, b, node, scratch, policy);
    for (a = 0; a < t->num_actions; ++a) {
        int32_t c = t->child[e + a];
        double score;
        if (c == SZM_ILLEGAL)
            continue;
        score = policy[a] - (double)(c >= 0 ? t->nodes[nb + c].visit : 0) / (1.0 + (double)total);
        if (score > best_score) {
            best_score = score;
            best = a;
        }
    }
    return best;
}

static double *scratch_of(const szm_tree *t, int32_t b)
{
    return t->scratch + (ptrdiff_t)b * 2 * t->num_actions;
}

/* The child slot to follow from `node`; its node id (or SZM_UNVISITED) goes to *child. `lo` and
 * `inv` are the min-max normaliser of root b's Q values (fixed during a selection). */
static int32_t select_child(szm_tree *t, int32_t b, int32_t node, double lo, double inv, int32_t *child)
{
    double *scratch = scratch_of(t, b);
    if (t->mode == SZM_MODE_GUMBEL && (node == 0 || t->interior == SZM_INTERIOR_DETERMINISTIC)) {
        int32_t a = node == 0 ? select_gumbel_root(t, b, scratch)
                              : select_deterministic(t, b, node, scratch, scratch + t->num_actions);
        *child = t->child[edge_at(t, b, node) + a];
        return a;
    }
    return select_puct(t, b, node, lo, inv, child);
}

/* Walk root b from its root to an unexpanded edge and write its selection outputs. */
static void select_root(szm_tree *t, int32_t b)
{
    ptrdiff_t nb = node_at(t, b, 0);
    int32_t node = 0, depth = 0, a;
    double lo = t->mm_min[b], delta = t->mm_max[b] - t->mm_min[b];
    double inv = 1.0 / (delta < t->value_floor ? t->value_floor : delta);
    for (;;) {
        int32_t c;
        a = select_child(t, b, node, lo, inv, &c);
        if (c < 0)
            break;
        { /* the next node's rows, fetched alongside its record */
            ptrdiff_t e = (nb + c) * t->num_actions;
            PREFETCH_R(&t->nodes[nb + c]);
            PREFETCH_R(t->kids + e);
            PREFETCH_R(t->child + e);
            PREFETCH_R(t->prior + e);
            PREFETCH_R(t->prior + e + t->num_actions - 1);
        }
        node = c;
        ++depth;
    }
    t->out_parent[b] = node;
    t->out_action[b] = a;
    t->out_node[b] = t->num_nodes[b];
    t->out_depth[b] = depth + 1;
    t->out_parent_slot[b] = (int32_t)(nb + node);
    t->out_node_slot[b] = (int32_t)(nb + t->num_nodes[b]);
    if (t->mode == SZM_MODE_SAMPLED) {
        int32_t j, d = t->action_dim;
        const double *src = t->sampled_action + ((nb + node) * t->num_actions + a) * d;
        for (j = 0; j < d; ++j)
            t->out_action_vec[(ptrdiff_t)b * d + j] = src[j];
    }
}

/* The first root whose tree is full (it cannot take another simulation), or -1. `extra` counts
 * nodes about to be added. */
static int32_t full_root(const szm_tree *t, int32_t extra)
{
    int32_t b;
    for (b = 0; b < t->batch; ++b)
        if (t->num_nodes[b] + extra >= t->capacity)
            return b;
    return -1;
}

int szm_select(szm_tree *t)
{
    int32_t b, full;
    if (t == NULL)
        return SZM_ERR_CONFIG;
    if (!t->is_reset)
        return SZM_ERR_NOT_RESET;
    full = full_root(t, 0);
    if (full >= 0)
        return fail(t, SZM_ERR_CAPACITY, full, t->capacity);
    for (b = 0; b < t->batch; ++b)
        select_root(t, b);
    t->pending = 1;
    return SZM_OK;
}

/* ------------------------------------------------------------------ expansion and backup */

/* Link the selected new node under its parent and back its value up to the root. */
static void link_and_backup(szm_tree *t, int32_t b, double r, double v)
{
    ptrdiff_t nb = node_at(t, b, 0), A = t->num_actions, ep = (nb + t->out_parent[b]) * A;
    int32_t id = t->out_node[b], p = t->out_parent[b], n = id, a = t->out_action[b];
    int32_t i = t->nodes[nb + p].nkids++;
    szm_node *node = &t->nodes[nb + id];
    szm_kid *kid = &t->kids[ep + i];
    double g = v;
    t->child[ep + a] = id;
    if (t->nodes[nb + p].next_kid == a) { /* pUCT always takes next_kid: its prior is at hand */
        kid->prior = t->nodes[nb + p].next_prior;
        t->nodes[nb + p].next_kid = SZM_NEXT_STALE;
    } else {
        kid->prior = t->prior[ep + a];
    }
    kid->action = a;
    kid->node = id;
    kid->pad = 0;
    node->edge_prior = kid->prior;
    node->nkids = 0;
    node->parent = p;
    node->action = a;
    node->kid_index = i;
    node->reward = r;
    if (t->raw_value)
        t->raw_value[nb + id] = v;
    node->visit = 0;
    node->value_sum = 0.0;
    t->num_nodes[b] = id + 1;
    if (t->out_depth[b] > t->max_depth[b])
        t->max_depth[b] = t->out_depth[b];
    for (;;) {
        szm_node *x = &t->nodes[nb + n];
        double q;
        x->value_sum += g;
        x->visit += 1;
        if (n == 0)
            break;
        q = x->reward + t->discount * (x->value_sum / (double)x->visit);
        x->q = q;
        kid = &t->kids[(nb + x->parent) * A + x->kid_index];
        kid->q = q;
        kid->visit = x->visit;
        update_minmax(t, b, q);
        g = x->reward + t->discount * g;
        n = x->parent;
    }
}

/* Nonzero if some x[i] is NaN or infinite: x * 0 is 0 for finite x and NaN otherwise. The loop
 * has no exit; with SSE2 it tests two values per step (compilers leave the plain loop scalar). */
static int any_nonfinite(const double *x, ptrdiff_t n)
{
    ptrdiff_t i = 0;
    int bad = 0;
#ifdef SZM_SSE2
    const __m128d zero = _mm_setzero_pd();
    __m128d acc0 = zero, acc1 = zero;
    for (; i + 4 <= n; i += 4) { /* unordered-or-unequal compares: NaN products count */
        acc0 = _mm_or_pd(acc0, _mm_cmpneq_pd(_mm_mul_pd(_mm_loadu_pd(x + i), zero), zero));
        acc1 = _mm_or_pd(acc1, _mm_cmpneq_pd(_mm_mul_pd(_mm_loadu_pd(x + i + 2), zero), zero));
    }
    bad = _mm_movemask_pd(_mm_or_pd(acc0, acc1)) != 0;
#endif
    for (; i < n; ++i)
        bad |= x[i] * 0.0 != 0.0;
    return bad;
}

static int check_reward_value(szm_tree *t, const double *reward, const double *value)
{
    int32_t b;
    if (t == NULL)
        return SZM_ERR_CONFIG;
    if (!t->is_reset)
        return SZM_ERR_NOT_RESET;
    if (!t->pending)
        return SZM_ERR_NOT_SELECTED;
    if (!any_nonfinite(reward, t->batch) && !any_nonfinite(value, t->batch))
        return SZM_OK; /* the common case, without a branch per root; else find the first bad one */
    for (b = 0; b < t->batch; ++b) {
        if (!isfinite(reward[b]))
            return fail(t, SZM_ERR_NONFINITE_REWARD, b, -1);
        if (!isfinite(value[b]))
            return fail(t, SZM_ERR_NONFINITE_VALUE, b, -1);
    }
    return SZM_OK;
}

/* Fetch the cache lines that root b's expansion will write (and its parent's record) ahead of use. */
static void prefetch_expand(const szm_tree *t, int32_t b)
{
    ptrdiff_t nb = node_at(t, b, 0), n = nb + t->out_node[b], e = n * t->num_actions;
    PREFETCH_W(&t->nodes[n]);
    PREFETCH_W(&t->nodes[nb + t->out_parent[b]]);
    PREFETCH_W(t->child + e);
    PREFETCH_W(t->child + e + t->num_actions - 1);
    PREFETCH_W(t->prior + e);
    PREFETCH_W(t->prior + e + t->num_actions / 2);
    PREFETCH_W(t->prior + e + t->num_actions - 1);
    PREFETCH_R(&t->nodes[nb]);
}

/* One simulation step for every root: expand (`expand`, per root) and back up, then, when
 * `select_next`, select root b's next leaf right after its backup, while its path is in cache. The
 * selection of each root depends on its own tree only, so this equals a separate szm_select(). */
static int step_all(szm_tree *t, void (*expand)(szm_tree *, int32_t, const void *), const void *ctx,
                    const double *reward, const double *value, int32_t select_next)
{
    int32_t b, full = select_next ? full_root(t, 1) : -1;
    int32_t fused = select_next && full < 0;
    for (b = 0; b < t->batch; ++b) {
        if (b + 1 < t->batch)
            prefetch_expand(t, b + 1);
        expand(t, b, ctx);
        link_and_backup(t, b, reward[b], value[b]);
        if (fused)
            select_root(t, b);
    }
    t->pending = fused;
    if (select_next && !fused)
        return fail(t, SZM_ERR_CAPACITY, full, t->capacity);
    return SZM_OK;
}

static void expand_discrete(szm_tree *t, int32_t b, const void *ctx)
{
    int32_t a, A = t->num_actions, id = t->out_node[b];
    ptrdiff_t n = node_at(t, b, id), e = n * A;
    const double *row = (const double *)ctx + (ptrdiff_t)b * A;
    const uint8_t *ok = t->valid + (ptrdiff_t)b * A;
    int32_t *child = t->child + e;
    double *prior = t->prior + e;
    for (a = 0; a < A; ++a) {
        child[a] = ok[a] ? SZM_UNVISITED : SZM_ILLEGAL;
        prior[a] = row[a]; /* softmax happens lazily, on first selection */
    }
    if (t->logit)
        for (a = 0; a < A; ++a)
            t->logit[e + a] = row[a];
    t->nodes[n].next_kid = SZM_NEXT_PENDING; /* softmax and next_kid on first selection */
}

int szm_expand_backup(szm_tree *t, const double *reward, const double *value,
                      const double *logits, int32_t select_next)
{
    ptrdiff_t i, total;
    int rc = check_reward_value(t, reward, value);
    if (rc != SZM_OK)
        return rc;
    if (t->mode == SZM_MODE_SAMPLED)
        return SZM_ERR_CONFIG;
    total = (ptrdiff_t)t->batch * t->num_actions;
    if (any_nonfinite(logits, total)) /* rare: is it a valid slot's (invalid ones may hold anything)? */
        for (i = 0; i < total; ++i)
            if (t->valid[i] && !isfinite(logits[i]))
                return fail(t, SZM_ERR_NONFINITE_LOGIT, (int32_t)(i / t->num_actions),
                            (int32_t)(i % t->num_actions));
    return step_all(t, expand_discrete, logits, reward, value, select_next);
}

typedef struct {
    const double *mu, *log_std, *actions, *logp;
} sampled_inputs;

static void expand_sampled(szm_tree *t, int32_t b, const void *ctx)
{
    const sampled_inputs *in = (const sampled_inputs *)ctx;
    fill_samples(t, b, t->out_node[b], in->mu, in->log_std, in->actions, in->logp);
}

int szm_expand_backup_sampled(szm_tree *t, const double *reward, const double *value,
                              const double *mu, const double *log_std,
                              const double *actions, const double *logp, int32_t select_next)
{
    sampled_inputs in;
    int rc = check_reward_value(t, reward, value);
    if (rc != SZM_OK)
        return rc;
    if (t->mode != SZM_MODE_SAMPLED)
        return SZM_ERR_CONFIG;
    rc = check_sampled_inputs(t, mu, log_std, actions, logp);
    if (rc != SZM_OK)
        return rc;
    in.mu = mu;
    in.log_std = log_std;
    in.actions = actions;
    in.logp = logp;
    return step_all(t, expand_sampled, &in, reward, value, select_next);
}

/* ------------------------------------------------------------------ results */

/* Index of the largest count (lowest index on ties), or of the largest prior if nothing was
 * visited; illegal slots are skipped. */
static int32_t argmax_visits(const szm_tree *t, int32_t b, const int32_t *visits)
{
    ptrdiff_t e = edge_at(t, b, 0);
    int32_t a, best = -1;
    for (a = 0; a < t->num_actions; ++a) {
        if (t->child[e + a] == SZM_ILLEGAL)
            continue;
        if (best < 0 || visits[a] > visits[best] ||
            (visits[best] == 0 && visits[a] == 0 && t->prior[e + a] > t->prior[e + best]))
            best = a;
    }
    return best;
}

/* Sample a child slot with probability proportional to visits^(1 / temperature). */
static int32_t sample_visits(szm_tree *t, int32_t b, const int32_t *visits, double temperature)
{
    ptrdiff_t e = edge_at(t, b, 0);
    int32_t a, best = argmax_visits(t, b, visits), last = best;
    double *w = scratch_of(t, b), total = 0.0, u, acc = 0.0, most = (double)visits[best];
    if (temperature == 0.0 || visits[best] == 0)
        return best;
    for (a = 0; a < t->num_actions; ++a) {
        w[a] = 0.0;
        if (t->child[e + a] == SZM_ILLEGAL || visits[a] == 0)
            continue;
        w[a] = (double)visits[a] / most;
        if (temperature != 1.0) /* pow(x, 1) is x: skip the call in the common case */
            w[a] = pow(w[a], 1.0 / temperature);
        total += w[a];
    }
    u = rng_uniform(&t->rng[b]) * total;
    for (a = 0; a < t->num_actions; ++a) {
        if (w[a] <= 0.0)
            continue;
        acc += w[a];
        last = a;
        if (u < acc)
            return a;
    }
    return last; /* rounding: u can land on the total */
}

static int32_t gumbel_action(szm_tree *t, int32_t b, const int32_t *visits, const double *sigma)
{
    ptrdiff_t e = edge_at(t, b, 0);
    int32_t a, best = -1, most = visits[argmax_visits(t, b, visits)];
    double best_score = -INFINITY;
    for (a = 0; a < t->num_actions; ++a) {
        double score;
        if (t->child[e + a] == SZM_ILLEGAL || visits[a] != most)
            continue;
        score = t->gumbel[(ptrdiff_t)b * t->num_actions + a] + t->logit[e + a] + sigma[a];
        if (score > best_score) {
            best_score = score;
            best = a;
        }
    }
    return best;
}

static void result_root(szm_tree *t, int32_t b, double temperature)
{
    ptrdiff_t nb = node_at(t, b, 0), e = edge_at(t, b, 0);
    int32_t a, A = t->num_actions, total = 0;
    int32_t *visits = t->res_visits + (ptrdiff_t)b * A;
    double *policy = t->res_policy + (ptrdiff_t)b * A;
    for (a = 0; a < A; ++a) {
        int32_t c = t->child[e + a];
        visits[a] = c >= 0 ? t->nodes[nb + c].visit : 0;
        total += visits[a];
    }
    t->res_value[b] = node_value(t, nb);
    if (t->mode == SZM_MODE_GUMBEL) {
        double *sigma = scratch_of(t, b);
        completed_sigma(t, b, 0, sigma);
        improved_policy(t, b, 0, sigma, policy);
        t->res_action[b] = gumbel_action(t, b, visits, sigma);
    } else {
        for (a = 0; a < A; ++a) /* no simulation yet: fall back to the prior */
            policy[a] = total > 0 ? (double)visits[a] / (double)total : t->prior[e + a];
        t->res_action[b] = sample_visits(t, b, visits, temperature);
    }
    if (t->mode == SZM_MODE_SAMPLED) {
        int32_t j, d = t->action_dim;
        const double *src = t->sampled_action + (e + t->res_action[b]) * d;
        for (j = 0; j < d; ++j)
            t->res_action_vec[(ptrdiff_t)b * d + j] = src[j];
    }
}

int szm_result(szm_tree *t, double temperature)
{
    int32_t b;
    if (t == NULL)
        return SZM_ERR_CONFIG;
    if (!t->is_reset)
        return SZM_ERR_NOT_RESET;
    if (!(temperature >= 0.0) || !isfinite(temperature))
        return SZM_ERR_TEMPERATURE;
    for (b = 0; b < t->batch; ++b)
        result_root(t, b, temperature);
    return SZM_OK;
}
