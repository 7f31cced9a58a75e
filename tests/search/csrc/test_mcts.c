/*
 * C-level test of the search core, built with -fsanitize=address,undefined by
 * tests/search/test_sanitizers.py. It drives every mode through many searches with pseudo-random
 * inputs, exercises every error path, and checks basic invariants. Exit status 0 = pass.
 */
#include "mcts.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                             \
        }                                                                        \
    } while (0)

static uint64_t lcg = 12345;
static double urand(void)
{
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(lcg >> 11) * (1.0 / 9007199254740992.0);
}

typedef struct {
    szm_tree t;
    void *blocks[64];
    int nblocks;
} harness;

static void *take(harness *h, size_t count, size_t size)
{
    void *p = calloc(count, size);
    CHECK(p != NULL && h->nblocks < 64);
    h->blocks[h->nblocks++] = p;
    return p;
}

static void setup(harness *h, int32_t B, int32_t sims, int32_t A, int32_t d, int32_t mode)
{
    szm_tree *t = &h->t;
    size_t N = (size_t)sims + 1, nodes = (size_t)B * N, edges = nodes * (size_t)A;
    memset(h, 0, sizeof *h);
    t->batch = B;
    t->capacity = (int32_t)N;
    t->num_actions = A;
    t->action_dim = mode == SZM_MODE_SAMPLED ? d : 0;
    t->mode = mode;
    t->interior = SZM_INTERIOR_DETERMINISTIC;
    t->max_considered = 4;
    t->c1 = 1.25;
    t->c2 = 19652.0;
    t->discount = 0.997;
    t->value_floor = 0.01;
    t->dirichlet_alpha = 0.3;
    t->dirichlet_fraction = 0.25;
    t->c_visit = 50.0;
    t->c_scale = 0.1;
    t->nodes = take(h, nodes, sizeof(szm_node));
    t->child = take(h, edges, sizeof(int32_t));
    t->prior = take(h, edges, sizeof(double));
    t->kids = take(h, edges, sizeof(szm_kid));
    if (mode == SZM_MODE_GUMBEL) {
        t->logit = take(h, edges, sizeof(double));
        t->raw_value = take(h, nodes, sizeof(double));
        t->gumbel = take(h, (size_t)B * (size_t)A, sizeof(double));
        t->sh_visits = take(h, (size_t)B * (size_t)sims, sizeof(int32_t));
        t->num_considered = take(h, (size_t)B, sizeof(int32_t));
    }
    if (mode == SZM_MODE_SAMPLED) {
        t->sampled_action = take(h, edges * (size_t)d, sizeof(double));
        t->sampled_logp = take(h, edges, sizeof(double));
        t->gauss = take(h, nodes * 2 * (size_t)d, sizeof(double));
        t->out_action_vec = take(h, (size_t)B * (size_t)d, sizeof(double));
        t->res_action_vec = take(h, (size_t)B * (size_t)d, sizeof(double));
    }
    t->valid = take(h, (size_t)B * (size_t)A, sizeof(uint8_t));
    memset(t->valid, 1, (size_t)B * (size_t)A);
    t->num_nodes = take(h, (size_t)B, sizeof(int32_t));
    t->mm_min = take(h, (size_t)B, sizeof(double));
    t->mm_max = take(h, (size_t)B, sizeof(double));
    t->rng = take(h, (size_t)B, sizeof(uint64_t));
    t->max_depth = take(h, (size_t)B, sizeof(int32_t));
    t->scratch = take(h, (size_t)B * 2 * (size_t)A, sizeof(double));
    t->pbc_table = take(h, N + 1, sizeof(double));
    t->recip_table = take(h, N + 1, sizeof(double));
    t->out_parent = take(h, (size_t)B, sizeof(int32_t));
    t->out_action = take(h, (size_t)B, sizeof(int32_t));
    t->out_node = take(h, (size_t)B, sizeof(int32_t));
    t->out_depth = take(h, (size_t)B, sizeof(int32_t));
    t->out_parent_slot = take(h, (size_t)B, sizeof(int32_t));
    t->out_node_slot = take(h, (size_t)B, sizeof(int32_t));
    t->res_visits = take(h, (size_t)B * (size_t)A, sizeof(int32_t));
    t->res_policy = take(h, (size_t)B * (size_t)A, sizeof(double));
    t->res_value = take(h, (size_t)B, sizeof(double));
    t->res_action = take(h, (size_t)B, sizeof(int32_t));
    CHECK(szm_init(t) == SZM_OK);
}

static void teardown(harness *h)
{
    int i;
    for (i = 0; i < h->nblocks; ++i)
        free(h->blocks[i]);
}

static void fill(double *x, size_t n, double lo, double hi)
{
    size_t i;
    for (i = 0; i < n; ++i)
        x[i] = lo + (hi - lo) * urand();
}

static void run_discrete(int32_t mode, int32_t B, int32_t sims, int32_t A, int searches)
{
    harness h;
    szm_tree *t = &h.t;
    double *value = malloc(sizeof(double) * (size_t)B), *reward = malloc(sizeof(double) * (size_t)B);
    double *logits = malloc(sizeof(double) * (size_t)B * (size_t)A);
    uint8_t *legal = malloc((size_t)B * (size_t)A);
    int s, i, b, a;
    CHECK(value && reward && logits && legal);
    setup(&h, B, sims, A, 0, mode);
    for (s = 0; s < searches; ++s) {
        for (i = 0; i < B * A; ++i)
            legal[i] = (uint8_t)(urand() < 0.7 || i % A == 0);
        fill(value, (size_t)B, -1, 1);
        fill(logits, (size_t)B * (size_t)A, -3, 3);
        CHECK(szm_reset(t, value, logits, legal, s % 2) == SZM_OK);
        for (i = 0; i < sims; ++i) {
            CHECK(szm_select(t) == SZM_OK);
            for (b = 0; b < B; ++b) {
                CHECK(legal[b * A + t->out_action[b]] || t->out_parent[b] != 0);
                CHECK(t->out_node[b] == i + 1);
                CHECK(t->out_node_slot[b] == b * (sims + 1) + i + 1);
                CHECK(t->out_parent_slot[b] == b * (sims + 1) + t->out_parent[b]);
            }
            fill(reward, (size_t)B, -1, 1);
            fill(value, (size_t)B, -1, 1);
            fill(logits, (size_t)B * (size_t)A, -3, 3);
            CHECK(szm_expand_backup(t, reward, value, logits, i % 3 == 0 && i + 1 < sims) == SZM_OK);
            if (i % 3 == 0 && i + 1 < sims) { /* fused select ran: expand the same selection */
                CHECK(szm_expand_backup(t, reward, value, logits, 0) == SZM_OK);
                ++i;
            }
        }
        CHECK(szm_select(t) == SZM_ERR_CAPACITY); /* the tree is full */
        CHECK(szm_result(t, s % 3 == 0 ? 0.0 : 1.0) == SZM_OK);
        for (b = 0; b < B; ++b) {
            int32_t total = 0;
            double mass = 0.0;
            for (a = 0; a < A; ++a) {
                total += t->res_visits[b * A + a];
                mass += t->res_policy[b * A + a];
                if (!legal[b * A + a])
                    CHECK(t->res_visits[b * A + a] == 0 && t->res_policy[b * A + a] == 0.0);
            }
            CHECK(total == sims);
            CHECK(fabs(mass - 1.0) < 1e-9);
            CHECK(legal[b * A + t->res_action[b]]);
        }
    }
    /* error paths leave the process alive */
    value[0] = NAN;
    CHECK(szm_reset(t, value, logits, legal, 0) == SZM_ERR_NONFINITE_VALUE);
    value[0] = 0.0;
    memset(legal, 0, (size_t)A);
    CHECK(szm_reset(t, value, logits, legal, 0) == SZM_ERR_NO_LEGAL_ACTION);
    memset(legal, 1, (size_t)B * (size_t)A);
    logits[1] = INFINITY;
    CHECK(szm_reset(t, value, logits, legal, 0) == SZM_ERR_NONFINITE_LOGIT);
    logits[1] = 0.0;
    CHECK(szm_reset(t, value, logits, legal, 0) == SZM_OK);
    CHECK(szm_expand_backup(t, reward, value, logits, 0) == SZM_ERR_NOT_SELECTED);
    CHECK(szm_select(t) == SZM_OK);
    reward[B - 1] = NAN;
    CHECK(szm_expand_backup(t, reward, value, logits, 0) == SZM_ERR_NONFINITE_REWARD);
    CHECK(szm_result(t, -1.0) == SZM_ERR_TEMPERATURE);
    CHECK(szm_reset_sampled(t, value, logits, logits, NULL, NULL, 0) == SZM_ERR_CONFIG);
    teardown(&h);
    free(value);
    free(reward);
    free(logits);
    free(legal);
}

static void run_sampled(int32_t B, int32_t sims, int32_t K, int32_t d, int searches)
{
    harness h;
    szm_tree *t = &h.t;
    double *value = malloc(sizeof(double) * (size_t)B), *reward = malloc(sizeof(double) * (size_t)B);
    double *mu = malloc(sizeof(double) * (size_t)B * (size_t)d);
    double *ls = malloc(sizeof(double) * (size_t)B * (size_t)d);
    double *acts = malloc(sizeof(double) * (size_t)B * (size_t)K * (size_t)d);
    double *logp = malloc(sizeof(double) * (size_t)B * (size_t)K);
    int s, i, b, j;
    CHECK(value && reward && mu && ls && acts && logp);
    setup(&h, B, sims, K, d, SZM_MODE_SAMPLED);
    for (s = 0; s < searches; ++s) {
        fill(value, (size_t)B, -1, 1);
        fill(mu, (size_t)B * (size_t)d, -1, 1);
        fill(ls, (size_t)B * (size_t)d, -25, 5); /* beyond the clamp on both sides */
        CHECK(szm_reset_sampled(t, value, mu, ls, NULL, NULL, s % 2) == SZM_OK);
        for (i = 0; i < sims; ++i) {
            CHECK(szm_select(t) == SZM_OK);
            for (b = 0; b < B * d; ++b)
                CHECK(t->out_action_vec[b] >= -1.0 && t->out_action_vec[b] <= 1.0);
            fill(reward, (size_t)B, -1, 1);
            fill(value, (size_t)B, -1, 1);
            if (i % 2) {
                fill(acts, (size_t)B * (size_t)K * (size_t)d, -1, 1);
                fill(logp, (size_t)B * (size_t)K, -5, 0);
                CHECK(szm_expand_backup_sampled(t, reward, value, NULL, NULL, acts, logp, 0) == SZM_OK);
            } else {
                CHECK(szm_expand_backup_sampled(t, reward, value, mu, ls, NULL, NULL, 0) == SZM_OK);
            }
        }
        CHECK(szm_result(t, 1.0) == SZM_OK);
        for (b = 0; b < B; ++b)
            for (j = 0; j < d; ++j)
                CHECK(fabs(t->res_action_vec[b * d + j]) <= 1.0);
    }
    CHECK(szm_reset_sampled(t, value, mu, ls, NULL, NULL, 0) == SZM_OK);
    CHECK(szm_select(t) == SZM_OK);
    acts[0] = 1.5;
    CHECK(szm_expand_backup_sampled(t, reward, value, NULL, NULL, acts, logp, 0) == SZM_ERR_ACTION_RANGE);
    ls[0] = NAN;
    CHECK(szm_expand_backup_sampled(t, reward, value, mu, ls, NULL, NULL, 0) == SZM_ERR_NONFINITE_STD);
    CHECK(szm_expand_backup(t, reward, value, mu, 0) == SZM_ERR_CONFIG);
    teardown(&h);
    free(value);
    free(reward);
    free(mu);
    free(ls);
    free(acts);
    free(logp);
}

int main(void)
{
    harness h;
    setup(&h, 1, 1, 1, 0, SZM_MODE_PUCT);
    h.t.c2 = -1.0;
    CHECK(szm_init(&h.t) == SZM_ERR_CONFIG);
    h.t.c2 = 19652.0;
    h.t.nodes = NULL;
    CHECK(szm_init(&h.t) == SZM_ERR_CONFIG);
    CHECK(szm_init(NULL) == SZM_ERR_CONFIG);
    CHECK(szm_select(NULL) == SZM_ERR_CONFIG);
    teardown(&h);

    run_discrete(SZM_MODE_PUCT, 7, 30, 6, 200);
    run_discrete(SZM_MODE_PUCT, 3, 60, 18, 100);
    run_discrete(SZM_MODE_GUMBEL, 5, 40, 9, 200);
    run_discrete(SZM_MODE_PUCT, 4, 20, 1, 50);
    run_sampled(6, 30, 8, 3, 200);
    run_sampled(2, 50, 20, 1, 50);
    puts("test_mcts: all checks passed");
    return 0;
}
