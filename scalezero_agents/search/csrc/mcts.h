/*
 * scalezero-agents batched MCTS core (plain C99).
 *
 * A `szm_tree` holds B independent search trees ("roots") as structure-of-arrays buffers with a
 * fixed node capacity N per root. Every buffer is allocated by the caller (Python/NumPy) once and
 * reused across searches: this file never allocates memory. Node 0 of every root is the root;
 * simulation s creates node s + 1, so node ids are dense and can index model-side state (latents,
 * KV-cache slots) directly.
 *
 * One call per simulation for the whole batch:
 *   szm_select()          -> per root: parent node, action (child slot), new node id, depth;
 *   szm_expand_backup()   <- per root: reward, value and prior logits of the new node;
 *                            with select_next = 1 it also runs the next szm_select() (one call;
 *                            root by root: expand, back up, select, while the path is in cache).
 *
 * Everything between the CDEF markers is parsed by cffi (see ../_build.py); keep it free of
 * preprocessor conditionals.
 */
#ifndef SZM_MCTS_H
#define SZM_MCTS_H

#include <stdint.h>

/* CDEF BEGIN */
#define SZM_MODE_PUCT 0
#define SZM_MODE_SAMPLED 1
#define SZM_MODE_GUMBEL 2

#define SZM_INTERIOR_PUCT 0
#define SZM_INTERIOR_DETERMINISTIC 1

#define SZM_UNVISITED -1
#define SZM_ILLEGAL -2

#define SZM_OK 0
#define SZM_ERR_CONFIG -1
#define SZM_ERR_NOT_RESET -2
#define SZM_ERR_NOT_SELECTED -3
#define SZM_ERR_CAPACITY -4
#define SZM_ERR_NONFINITE_VALUE -5
#define SZM_ERR_NONFINITE_REWARD -6
#define SZM_ERR_NONFINITE_LOGIT -7
#define SZM_ERR_NO_LEGAL_ACTION -8
#define SZM_ERR_NONFINITE_ACTION -9
#define SZM_ERR_ACTION_RANGE -10
#define SZM_ERR_NONFINITE_STD -11
#define SZM_ERR_NONFINITE_LOGP -12
#define SZM_ERR_TEMPERATURE -13

#define SZM_NEXT_NONE -1      /* next_kid: no unvisited legal child left */
#define SZM_NEXT_PENDING -2   /* next_kid: the node's priors are not computed yet (first selection) */
#define SZM_NEXT_STALE -3     /* next_kid: was visited; the next one is found on the next selection */

typedef struct {
    double value_sum;       /* sum of backed-up returns */
    double q;               /* Q of the edge parent -> node, r + discount * v (once visited) */
    double edge_prior;      /* P(parent, action) of the edge parent -> node */
    double reward;          /* reward on the edge parent -> node */
    double next_prior;      /* prior of next_kid (valid when next_kid >= 0) */
    int32_t visit;
    int32_t nkids;          /* number of visited children */
    int32_t next_kid;       /* unvisited legal child slot with the highest prior, or SZM_NEXT_*:
                               NONE (no unvisited child), PENDING (priors not computed yet) or
                               STALE (it was just visited: the next one is found on demand) */
    int32_t parent;
    int32_t action;         /* child slot taken from the parent */
    int32_t kid_index;      /* position of this node in its parent's `kids` row */
} szm_node;

/* A visited child as its parent sees it: the statistics that pUCT scores, copied from the child's
 * node record (kept equal by the backup), so that scoring a node's children reads its own `kids`
 * row (two children per cache line) instead of one cache line per child. */
typedef struct {
    double q;               /* = nodes[node].q */
    double prior;           /* = nodes[node].edge_prior */
    int32_t visit;          /* = nodes[node].visit */
    int32_t action;         /* = nodes[node].action */
    int32_t node;           /* the child's node id */
    int32_t pad;
} szm_kid;

typedef struct {
    /* ---- sizes and parameters (set once) ---- */
    int32_t batch;          /* B: number of roots */
    int32_t capacity;       /* N: nodes per root, root included (= simulations + 1) */
    int32_t num_actions;    /* A: child slots per node (K sampled actions in sampled mode) */
    int32_t action_dim;     /* d: continuous action dimension (sampled mode), else 0 */
    int32_t mode;           /* SZM_MODE_* */
    int32_t interior;       /* SZM_INTERIOR_* (gumbel mode, below the root) */
    int32_t max_considered; /* gumbel: actions considered at the root */
    int32_t unvisited_parent; /* 1: unvisited children take the parent's value; 0: Qn = 0 */
    double c1, c2;          /* pUCT constants (1.25, 19652) */
    double discount;        /* gamma inside the search */
    double value_floor;     /* min-max normaliser: denominator floor (0.01) */
    double dirichlet_alpha, dirichlet_fraction;
    double c_visit, c_scale; /* gumbel: sigma(q) = (c_visit + max N) * c_scale * q */

    /* ---- per node, [B * N]: one 64-byte record (one cache line) per node ---- */
    szm_node *nodes;
    double *raw_value;      /* gumbel only: network value at expansion (NULL otherwise) */

    /* ---- per edge, [B * N * A] ---- */
    int32_t *child;         /* node id, SZM_UNVISITED or SZM_ILLEGAL */
    double *prior;          /* logits at expansion, probabilities once next_kid != SZM_NEXT_PENDING */
    double *logit;          /* gumbel only: masked logits (NULL otherwise) */
    szm_kid *kids;          /* a node's visited children, in the order of their first visit:
                               row n holds nodes[n].nkids records (64-byte aligned rows help) */

    /* ---- sampled mode, [B * N * A * d] and [B * N * A] (NULL otherwise) ---- */
    double *sampled_action;
    double *sampled_logp;
    double *gauss;          /* [B * N * 2 * d]: a node's mu and log_std, kept for the lazy draw */

    /* ---- per root, [B] ---- */
    uint8_t *valid;         /* [B * A] action-space mask for interior nodes */
    int32_t *num_nodes;
    double *mm_min, *mm_max; /* min-max statistics of Q over the tree */
    uint64_t *rng;          /* splitmix64 state per root */
    int32_t *max_depth;
    int32_t *num_considered; /* gumbel */
    double *gumbel;         /* gumbel: [B * A] scaled Gumbel noise at the root */
    int32_t *sh_visits;     /* gumbel: [B * (N - 1)] sequential-halving visit schedule */
    double *scratch;        /* [B * 2 * A] work space */

    /* ---- tables, [N + 1] (filled by szm_init) ---- */
    double *pbc_table;      /* (log((n + c2 + 1) / c2) + c1) * sqrt(n) */
    double *recip_table;    /* 1 / (1 + n) */

    /* ---- select outputs, [B] (and [B * d]) ---- */
    int32_t *out_parent, *out_action, *out_node, *out_depth;
    int32_t *out_parent_slot, *out_node_slot; /* b * N + node: flat indices for model-side state */
    double *out_action_vec; /* sampled: chosen action vector */

    /* ---- result outputs ---- */
    int32_t *res_visits;    /* [B * A] root child visit counts */
    double *res_policy;     /* [B * A] policy target */
    double *res_value;      /* [B] root value */
    int32_t *res_action;    /* [B] chosen child slot */
    double *res_action_vec; /* [B * d] sampled: chosen action vector */

    /* ---- state and error report ---- */
    int32_t is_reset, pending;
    int32_t err_root, err_index;
} szm_tree;

int szm_init(szm_tree *t);
int szm_reset(szm_tree *t, const double *root_value, const double *root_logits,
              const uint8_t *legal, int32_t noise);
int szm_reset_sampled(szm_tree *t, const double *root_value, const double *mu,
                      const double *log_std, const double *actions, const double *logp,
                      int32_t noise);
int szm_select(szm_tree *t);
int szm_expand_backup(szm_tree *t, const double *reward, const double *value,
                      const double *logits, int32_t select_next);
int szm_expand_backup_sampled(szm_tree *t, const double *reward, const double *value,
                              const double *mu, const double *log_std,
                              const double *actions, const double *logp, int32_t select_next);
int szm_result(szm_tree *t, double temperature);
/* CDEF END */

#endif /* SZM_MCTS_H */
