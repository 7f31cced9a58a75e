"""Search behaviour on problems whose answer is known (bandits), masks, noise and seeding."""

from __future__ import annotations

import numpy as np
import pytest

from scalezero_agents.search import (
    ILLEGAL,
    RecurrentOutput,
    ReferenceTree,
    RootOutput,
    SearchConfig,
    SearchTree,
    Selection,
    search,
)
from scalezero_agents.search.reference import halving_schedule
from scalezero_agents.search.testing import HashModel

ARMS = np.array([0.1, 0.5, 0.9, 0.3, 0.2])  # arm 2 is best


def bandit_fn(payoff: np.ndarray):
    """A one-step bandit as a model: the root edge pays ``payoff[a]``, everything below pays 0."""
    batch, actions = 1, len(payoff)

    def fn(sel):
        reward = np.where(sel.parent == 0, payoff[sel.action], 0.0)
        return RecurrentOutput(reward=reward, value=np.zeros(batch), prior_logits=np.zeros((batch, actions)))

    return fn


@pytest.mark.parametrize("cls", [SearchTree, ReferenceTree])
def test_puct_finds_best_arm_with_uniform_prior(cls) -> None:
    tree = cls(1, SearchConfig(num_simulations=60), num_actions=5)
    out = search(tree, RootOutput(np.zeros(1), np.zeros((1, 5))), bandit_fn(ARMS))
    assert out.action[0] == 2
    assert out.visit_counts[0].argmax() == 2
    assert out.visit_counts.sum() == 60


@pytest.mark.parametrize("cls", [SearchTree, ReferenceTree])
def test_unvisited_value_parent_explores_where_zero_does_not(cls) -> None:
    """The measured reason for the default (see mcts.c): with the pseudocode's Qn = 0 for unvisited
    children, a best arm with prior 0.1 is not even tried in 60 simulations."""
    prior = np.log(np.array([[0.3, 0.2, 0.1, 0.25, 0.15]]))
    runs = {}
    for rule in ("zero", "parent"):
        tree = cls(1, SearchConfig(num_simulations=60, unvisited_value=rule), num_actions=5)
        runs[rule] = search(tree, RootOutput(np.zeros(1), prior), bandit_fn(ARMS))
    assert runs["zero"].visit_counts[0, 2] == 0
    assert runs["parent"].action[0] == 2


@pytest.mark.parametrize("cls", [SearchTree, ReferenceTree])
def test_puct_visits_follow_the_prior_when_payoffs_are_equal(cls) -> None:
    prior = np.array([0.1, 0.4, 0.2, 0.3])
    tree = cls(1, SearchConfig(num_simulations=100), num_actions=4)
    out = search(tree, RootOutput(np.zeros(1), np.log(prior)[None]), bandit_fn(np.full(4, 0.5)))
    assert list(np.argsort(-out.visit_counts[0])) == [1, 3, 2, 0]


@pytest.mark.parametrize("cls", [SearchTree, ReferenceTree])
def test_gumbel_improved_policy_moves_mass_to_best_arm(cls) -> None:
    prior = np.array([0.4, 0.3, 0.1, 0.1, 0.1])
    tree = cls(1, SearchConfig(mode="gumbel", num_simulations=16, max_considered=5), num_actions=5, seed=3)
    out = search(tree, RootOutput(np.zeros(1), np.log(prior)[None]), bandit_fn(ARMS), noise=True)
    assert out.policy[0, 2] > prior[2] + 0.2
    assert out.policy[0].argmax() == 2
    assert out.action[0] == 2
    np.testing.assert_allclose(out.policy.sum(), 1.0)


@pytest.mark.parametrize("cls", [SearchTree, ReferenceTree])
def test_sampled_search_finds_continuous_optimum(cls) -> None:
    target = 0.3

    def fn(sel):
        reward = np.where(sel.parent == 0, -((sel.action_vec[:, 0] - target) ** 2), 0.0)
        return RecurrentOutput(reward=reward, value=np.zeros(1), mu=np.zeros((1, 1)), log_std=np.zeros((1, 1)))

    tree = cls(1, SearchConfig(mode="sampled", num_simulations=50, num_samples=20), action_dim=1, seed=5)
    out = search(tree, RootOutput(np.zeros(1), mu=np.zeros((1, 1)), log_std=np.zeros((1, 1))), fn)
    samples = out.sampled_actions[0, :, 0]
    best = samples[np.argmin((samples - target) ** 2)]
    assert abs(out.action_vec[0, 0] - target) <= abs(best - target) + 0.05
    assert abs(out.action_vec[0, 0] - target) < 0.15
    assert np.all(np.abs(samples) <= 1.0)
    assert (out.visit_counts[0] > 0).sum() == 20  # every sample was tried


def test_masked_actions_never_selected_at_any_depth() -> None:
    B, A = 4, 6
    legal = np.ones((B, A), bool)
    legal[:, [1, 4]] = False
    valid = np.ones((B, A), bool)
    valid[:, 5] = False
    tree = SearchTree(B, SearchConfig(num_simulations=80), num_actions=A)
    model = HashModel(B, 80, A)
    root = model.root(np.arange(B))._replace(legal_mask=legal, valid_mask=valid)
    out = search(tree, root, model, noise=True, temperature=1.0)
    assert not out.visit_counts[:, [1, 4]].any()
    assert legal[np.arange(B), out.action].all()
    # below the root, only `valid` actions exist
    assert (tree.child[:, 1:, 5] == ILLEGAL).all()
    assert not (tree.child[:, 0, [1, 4]] >= 0).any()


def test_single_legal_action_gets_every_visit() -> None:
    legal = np.zeros((2, 4), bool)
    legal[:, 2] = True
    for mode in ("puct", "gumbel"):
        tree = SearchTree(2, SearchConfig(mode=mode, num_simulations=10), num_actions=4)
        model = HashModel(2, 10, 4)
        out = search(tree, model.root(np.arange(2))._replace(legal_mask=legal), model, noise=True)
        assert (out.visit_counts[:, 2] == 10).all() and (out.action == 2).all()
        assert (out.policy[:, 2] == 1.0).all()


def test_same_seed_same_search_and_different_seed_differs() -> None:
    def run(seed: int):
        tree = SearchTree(8, SearchConfig(num_simulations=30), num_actions=6, seed=seed)
        model = HashModel(8, 30, 6)
        return [search(tree, model.root(np.arange(8) + i), model, noise=True, temperature=1.0) for i in range(3)]

    a, b, c = run(0), run(0), run(1)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.visit_counts, y.visit_counts)
        np.testing.assert_array_equal(x.action, y.action)
    assert any((x.visit_counts != z.visit_counts).any() for x, z in zip(a, c, strict=True))


def test_rng_state_round_trip_resumes_the_stream() -> None:
    tree = SearchTree(3, SearchConfig(num_simulations=10), num_actions=4, seed=9)
    model = HashModel(3, 10, 4)
    search(tree, model.root(np.arange(3)), model, noise=True)
    state = tree.rng_state
    first = search(tree, model.root(np.arange(3)), model, noise=True, temperature=1.0)
    tree.rng_state = state
    again = search(tree, model.root(np.arange(3)), model, noise=True, temperature=1.0)
    np.testing.assert_array_equal(first.visit_counts, again.visit_counts)


def test_no_noise_root_is_deterministic_and_noise_changes_priors() -> None:
    tree = SearchTree(1, SearchConfig(num_simulations=1), num_actions=5, seed=0)
    logits = np.zeros((1, 5))
    tree.reset(np.zeros(1), logits)
    np.testing.assert_array_equal(tree.prior[0, 0], np.full(5, 0.2))
    tree.reset(np.zeros(1), logits, noise=True)
    assert not np.allclose(tree.prior[0, 0], 0.2)
    np.testing.assert_allclose(tree.prior[0, 0].sum(), 1.0)


def test_root_value_is_mean_of_backed_up_returns() -> None:
    def fn(sel):
        return RecurrentOutput(reward=np.ones(1), value=np.full(1, 2.0), prior_logits=np.zeros((1, 2)))

    config = SearchConfig(num_simulations=1, discount=0.5)
    tree = SearchTree(1, config, num_actions=2)
    out = search(tree, RootOutput(np.full(1, 4.0), np.zeros((1, 2))), fn)
    # root: initial visit with its own value 4, then one return 1 + 0.5 * 2 = 2
    assert out.value[0] == pytest.approx((4.0 + 2.0) / 2)
    assert tree.q[0, 1] == pytest.approx(2.0)


def test_halving_schedule_shape() -> None:
    assert halving_schedule(1, 5) == [0, 1, 2, 3, 4]
    # 4 actions, 8 sims, 2 rounds: 4 actions x 1 visit, then 2 actions x 2 visits
    assert halving_schedule(4, 8) == [0, 0, 0, 0, 1, 1, 2, 2]
    assert len(halving_schedule(16, 50)) == 50
    schedule = np.array(halving_schedule(16, 200))
    assert (schedule[:16] == 0).all() and (np.diff(schedule) >= 0).all()
    counts = np.bincount(schedule)  # actions considered at each visit level: halves, never grows
    assert (np.diff(counts) <= 0).all() and counts[0] == 16 and counts[-1] == 2


def test_gumbel_visits_follow_sequential_halving() -> None:
    tree = SearchTree(1, SearchConfig(mode="gumbel", num_simulations=8, max_considered=4), num_actions=6, seed=2)
    model = HashModel(1, 8, 6)
    out = search(tree, model.root(np.arange(1)), model, noise=True)
    counts = sorted(out.visit_counts[0].tolist(), reverse=True)
    assert counts == [3, 3, 1, 1, 0, 0]


def test_selection_slots_index_flat_model_state() -> None:
    for cls in (SearchTree, ReferenceTree):
        tree = cls(3, SearchConfig(num_simulations=5), num_actions=4)
        model = HashModel(3, 5, 4)
        root = model.root(np.arange(3))
        tree.reset(root.value, root.prior_logits)
        for _ in range(5):
            sel = tree.select()
            np.testing.assert_array_equal(sel.parent_slot, np.arange(3) * 6 + sel.parent)
            np.testing.assert_array_equal(sel.node_slot, np.arange(3) * 6 + sel.node)
            out = model(sel)
            tree.expand_and_backup(out.reward, out.value, out.prior_logits)


def test_hash_model_is_a_function_of_parent_state_and_action() -> None:
    """The fake model's outputs depend on (parent state, action) only, not on the root, the slot or
    the batch position: the same edge taken from two roots with the same state gives equal outputs."""
    model = HashModel(4, 3, 5, seed=1)
    model.root(np.array([7, 7, 9, 7]))
    sel = tree_selection(parent=[0, 0, 0, 0], action=[2, 2, 2, 3], node=[1, 1, 1, 1], capacity=4)
    out = model(sel)
    assert out.reward[0] == out.reward[1] and out.value[0] == out.value[1]
    np.testing.assert_array_equal(out.prior_logits[0], out.prior_logits[1])
    child = model.state[sel.node_slot]
    assert child[0] == child[1] == model.transition[7 * 5 + 2]
    np.testing.assert_array_equal(out.reward, model.reward_table[child])
    np.testing.assert_array_equal(out.value, model.value_table[child])
    np.testing.assert_array_equal(out.prior_logits, model.logit_table[child])
    sampled = HashModel(2, 3, 4, action_dim=2, seed=1)
    sampled.root(np.array([5, 5]))
    out = sampled(tree_selection(parent=[0, 0], action=[1, 1], node=[1, 1], capacity=4))
    np.testing.assert_array_equal(out.mu[0], out.mu[1])
    np.testing.assert_array_equal(out.log_std, sampled.log_std_table[sampled.state[[1, 5]]])


def tree_selection(*, parent: list[int], action: list[int], node: list[int], capacity: int) -> Selection:
    parent, action, node = (np.array(x, dtype=np.int32) for x in (parent, action, node))
    offset = np.arange(len(parent), dtype=np.int32) * capacity
    return Selection(parent, action, node, np.ones_like(node), None, offset + parent, offset + node)
