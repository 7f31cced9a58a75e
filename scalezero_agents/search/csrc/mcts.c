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
 * This file never allocates: every buffer belongs to the caller.
 */
#include "mcts.h"

#include <math.h>
#include <stddef.h>

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

/* Gamma(alpha, 1), Marsaglia and Tsang; alpha < 1 through the alpha + 1 boost. */
static double rng_gamma(uint64_t *s, double alpha)
{
    double d, c;
    if (alpha < 1.0) {
        double g = rng_gamma(s, alpha + 1.0);
        return g * pow(rng_uniform(s), 1.0 / alpha);
    }
    d = alpha - 1.0 / 3.0;
    c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v, u, x2;
        do {
            x = rng_normal(s);
            v = 1.0 + c * x;
        } while (v <= 0.0);
        v = v * v * v;
        u = rng_uniform(s);
        x2 = x * x;
        if (u < 1.0 - 0.0331 * x2 * x2)
            return d * v;
        if (log(u) < 0.5 * x2 + d * (1.0 - v + log(v)))
            return d * v;
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

/* In-place softmax over the legal slots of one node's `prior` row; illegal slots get 0. */
static void softmax_legal(double *p, const int32_t *child, int32_t count)
{
    double m = -INFINITY, total = 0.0;
    int32_t a;
    for (a = 0; a < count; ++a)
        if (child[a] != SZM_ILLEGAL && p[a] > m)
            m = p[a];
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

/* The unvisited legal child with the highest prior (lowest index on ties), or -1. */
static void refresh_next_kid(szm_tree *t, ptrdiff_t n)
{
    const int32_t *child = t->child + n * t->num_actions;
    const double *prior = t->prior + n * t->num_actions;
    int32_t a, best = -1;
    double top = -INFINITY; /* legal priors are >= 0; the strict > keeps the lowest index */
    for (a = 0; a < t->num_actions; ++a) {
        double p = child[a] == SZM_UNVISITED ? prior[a] : -INFINITY;
        best = p > top ? a : best;
        top = p > top ? p : top;
    }
    t->nodes[n].next_kid = best;
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
    t->nodes[n].prior_ready = 1;
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

static void ensure_prior(szm_tree *t, int32_t b, int32_t node)
{
    ptrdiff_t n = node_at(t, b, node);
    if (t->nodes[n].prior_ready)
        return;
    if (t->mode == SZM_MODE_SAMPLED) {
        draw_samples(t, b, n);
        samples_ready(t, n);
    } else {
        ptrdiff_t e = n * t->num_actions;
        softmax_legal(t->prior + e, t->child + e, t->num_actions);
        t->nodes[n].prior_ready = 1;
        refresh_next_kid(t, n);
    }
}

/* Mix Dirichlet(alpha) noise over the legal children into the root priors. `scratch` has A slots. */
static void add_dirichlet(szm_tree *t, int32_t b, double *scratch)
{
    ptrdiff_t e = edge_at(t, b, 0);
    double total = 0.0, frac = t->dirichlet_fraction;
    int32_t a, legal = 0;
    for (a = 0; a < t->num_actions; ++a) {
        if (t->child[e + a] == SZM_ILLEGAL)
            continue;
        scratch[a] = rng_gamma(&t->rng[b], t->dirichlet_alpha);
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
        t->nodes[node_at(t, b, 0)].prior_ready = 1;
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
    t->nodes[n].prior_ready = 0;
    t->nodes[n].next_kid = -1;
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

static int32_t select_puct(szm_tree *t, int32_t b, int32_t node)
{
    ptrdiff_t nb = node_at(t, b, 0), n = nb + node, e = n * t->num_actions;
    double lo = t->mm_min[b], delta = t->mm_max[b] - t->mm_min[b], inv, pbc, best_score;
    int32_t i, best;
    if (delta < t->value_floor)
        delta = t->value_floor;
    inv = 1.0 / delta;
    pbc = t->pbc_table[t->nodes[n].visit];
    ensure_prior(t, b, node);
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
    for (i = 0; i < t->nodes[n].nkids; ++i) {
        ptrdiff_t c = nb + t->kids[e + i];
        double qn = (t->nodes[c].q - lo) * inv, score;
        qn = qn < 0.0 ? 0.0 : (qn > 1.0 ? 1.0 : qn);
        score = t->nodes[c].edge_prior * pbc * t->recip_table[t->nodes[c].visit] + qn;
        if (score > best_score || (score == best_score && t->nodes[c].action < best)) {
            best_score = score;
            best = t->nodes[c].action;
        }
    }
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

static int32_t select_child(szm_tree *t, int32_t b, int32_t node)
{
    double *scratch = scratch_of(t, b);
    if (t->mode == SZM_MODE_GUMBEL) {
        if (node == 0)
            return select_gumbel_root(t, b, scratch);
        if (t->interior == SZM_INTERIOR_DETERMINISTIC)
            return select_deterministic(t, b, node, scratch, scratch + t->num_actions);
    }
    return select_puct(t, b, node);
}

int szm_select(szm_tree *t)
{
    int32_t b;
    if (t == NULL)
        return SZM_ERR_CONFIG;
    if (!t->is_reset)
        return SZM_ERR_NOT_RESET;
    for (b = 0; b < t->batch; ++b)
        if (t->num_nodes[b] >= t->capacity)
            return fail(t, SZM_ERR_CAPACITY, b, t->capacity);
    for (b = 0; b < t->batch; ++b) {
        ptrdiff_t nb = node_at(t, b, 0);
        int32_t node = 0, depth = 0, a;
        for (;;) {
            int32_t c;
            a = select_child(t, b, node);
            c = t->child[edge_at(t, b, node) + a];
            if (c < 0)
                break;
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
    t->pending = 1;
    return SZM_OK;
}

/* ------------------------------------------------------------------ expansion and backup */

/* Link the selected new node under its parent and back its value up to the root. */
static void link_and_backup(szm_tree *t, int32_t b, double r, double v)
{
    ptrdiff_t nb = node_at(t, b, 0), ep = edge_at(t, b, t->out_parent[b]);
    int32_t id = t->out_node[b], p = t->out_parent[b], n = id, a = t->out_action[b];
    double g = v;
    t->child[ep + a] = id;
    t->kids[ep + t->nodes[nb + p].nkids++] = id;
    t->nodes[nb + id].edge_prior = t->prior[ep + a];
    if (t->nodes[nb + p].next_kid == a)
        refresh_next_kid(t, nb + p);
    t->nodes[nb + id].nkids = 0;
    t->nodes[nb + id].parent = p;
    t->nodes[nb + id].action = t->out_action[b];
    t->nodes[nb + id].reward = r;
    if (t->raw_value)
        t->raw_value[nb + id] = v;
    t->nodes[nb + id].visit = 0;
    t->nodes[nb + id].value_sum = 0.0;
    t->num_nodes[b] = id + 1;
    if (t->out_depth[b] > t->max_depth[b])
        t->max_depth[b] = t->out_depth[b];
    for (;;) {
        t->nodes[nb + n].value_sum += g;
        t->nodes[nb + n].visit += 1;
        if (n == 0)
            break;
        t->nodes[nb + n].q = t->nodes[nb + n].reward + t->discount * node_value(t, nb + n);
        update_minmax(t, b, t->nodes[nb + n].q);
        g = t->nodes[nb + n].reward + t->discount * g;
        n = t->nodes[nb + n].parent;
    }
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
    for (b = 0; b < t->batch; ++b) {
        if (!isfinite(reward[b]))
            return fail(t, SZM_ERR_NONFINITE_REWARD, b, -1);
        if (!isfinite(value[b]))
            return fail(t, SZM_ERR_NONFINITE_VALUE, b, -1);
    }
    return SZM_OK;
}

int szm_expand_backup(szm_tree *t, const double *reward, const double *value,
                      const double *logits, int32_t select_next)
{
    int32_t b, a, A;
    int rc = check_reward_value(t, reward, value);
    if (rc != SZM_OK)
        return rc;
    if (t->mode == SZM_MODE_SAMPLED)
        return SZM_ERR_CONFIG;
    A = t->num_actions;
    {
        ptrdiff_t i, total = (ptrdiff_t)t->batch * A;
        int bad = 0;
        for (i = 0; i < total; ++i) /* one pass without early exit; locate the culprit only if any */
            bad |= t->valid[i] & !isfinite(logits[i]);
        for (i = 0; bad && i < total; ++i)
            if (t->valid[i] && !isfinite(logits[i]))
                return fail(t, SZM_ERR_NONFINITE_LOGIT, (int32_t)(i / A), (int32_t)(i % A));
    }
    for (b = 0; b < t->batch; ++b) {
        int32_t id = t->out_node[b];
        ptrdiff_t e = edge_at(t, b, id);
        const double *row = logits + (ptrdiff_t)b * A;
        const uint8_t *ok = t->valid + (ptrdiff_t)b * A;
        for (a = 0; a < A; ++a) {
            t->child[e + a] = ok[a] ? SZM_UNVISITED : SZM_ILLEGAL;
            t->prior[e + a] = row[a]; /* softmax happens lazily, on first selection */
            if (t->logit)
                t->logit[e + a] = row[a];
        }
        t->nodes[node_at(t, b, id)].prior_ready = 0; /* next_kid too is set on first selection */
        t->nodes[node_at(t, b, id)].next_kid = -1;
        link_and_backup(t, b, reward[b], value[b]);
    }
    t->pending = 0;
    return select_next ? szm_select(t) : SZM_OK;
}

int szm_expand_backup_sampled(szm_tree *t, const double *reward, const double *value,
                              const double *mu, const double *log_std,
                              const double *actions, const double *logp, int32_t select_next)
{
    int32_t b;
    int rc = check_reward_value(t, reward, value);
    if (rc != SZM_OK)
        return rc;
    if (t->mode != SZM_MODE_SAMPLED)
        return SZM_ERR_CONFIG;
    rc = check_sampled_inputs(t, mu, log_std, actions, logp);
    if (rc != SZM_OK)
        return rc;
    for (b = 0; b < t->batch; ++b) {
        fill_samples(t, b, t->out_node[b], mu, log_std, actions, logp);
        link_and_backup(t, b, reward[b], value[b]);
    }
    t->pending = 0;
    return select_next ? szm_select(t) : SZM_OK;
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
        w[a] = pow((double)visits[a] / most, 1.0 / temperature);
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
