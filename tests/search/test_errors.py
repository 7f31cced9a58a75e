"""Every bad input raises a Python exception that says what was wrong; the tree stays usable."""

from __future__ import annotations

import numpy as np
import pytest

from scalezero_agents.search import (
    ReferenceTree,
    SearchConfig,
    SearchInputError,
    SearchStateError,
    SearchTree,
)

B, A = 3, 4
BACKENDS = [SearchTree, ReferenceTree]


def fresh(cls, **config):
    tree = cls(B, SearchConfig(num_simulations=3, **config), num_actions=A)
    tree.reset(np.zeros(B), np.zeros((B, A)))
    return tree


@pytest.mark.parametrize("cls", BACKENDS)
@pytest.mark.parametrize(
    "value,logits,match",
    [
        (np.zeros(B, np.float32), np.zeros((B, A)), "float64|dtype"),
        (np.zeros(B + 1), np.zeros((B, A)), "shape"),
        (np.zeros(B), np.zeros((B, A + 1)), "shape"),
        (np.zeros(B).tolist(), np.zeros((B, A)), "numpy|float64"),
        (np.array([0.0, np.nan, 0.0]), np.zeros((B, A)), "root 1|NaN"),
        (np.zeros(B), np.full((B, A), np.inf), "NaN or infinite"),
    ],
)
def test_bad_reset_inputs(cls, value, logits, match) -> None:
    tree = cls(B, SearchConfig(num_simulations=3), num_actions=A)
    with pytest.raises(SearchInputError, match=match):
        tree.reset(value, logits)


@pytest.mark.parametrize("cls", BACKENDS)
def test_no_legal_action_and_bad_masks(cls) -> None:
    tree = cls(B, SearchConfig(num_simulations=3), num_actions=A)
    legal = np.ones((B, A), bool)
    legal[2] = False
    with pytest.raises(SearchInputError, match="root 2 has no legal action"):
        tree.reset(np.zeros(B), np.zeros((B, A)), legal_mask=legal)
    with pytest.raises(SearchInputError, match="shape"):
        tree.reset(np.zeros(B), np.zeros((B, A)), legal_mask=np.ones((B, A + 1), bool))
    # a NaN logit of an illegal action is fine: it is never used
    logits = np.zeros((B, A))
    logits[:, 3] = np.nan
    legal[2] = True
    legal[:, 3] = False
    tree.reset(np.zeros(B), logits, legal_mask=legal)


@pytest.mark.parametrize("cls", BACKENDS)
def test_bad_expand_inputs_and_recovery(cls) -> None:
    tree = fresh(cls)
    tree.select()
    with pytest.raises(SearchInputError, match="reward"):
        tree.expand_and_backup(np.array([0.0, 0.0, np.inf]), np.zeros(B), np.zeros((B, A)))
    with pytest.raises(SearchInputError):
        tree.expand_and_backup(np.zeros(B), np.zeros(B), np.full((B, A), np.nan))
    with pytest.raises(SearchInputError, match="shape"):
        tree.expand_and_backup(np.zeros(B), np.zeros((B, 1)), np.zeros((B, A)))
    # nothing was changed by the failed calls: the same expansion now succeeds
    assert (tree.num_nodes == 1).all()
    tree.expand_and_backup(np.zeros(B), np.ones(B), np.zeros((B, A)))
    assert (tree.num_nodes == 2).all()


@pytest.mark.parametrize("cls", BACKENDS)
def test_call_order_errors(cls) -> None:
    tree = cls(B, SearchConfig(num_simulations=2), num_actions=A)
    with pytest.raises(SearchStateError, match="reset"):
        tree.select()
    with pytest.raises(SearchStateError, match="reset"):
        tree.result()
    tree.reset(np.zeros(B), np.zeros((B, A)))
    with pytest.raises(SearchStateError, match="select"):
        tree.expand_and_backup(np.zeros(B), np.zeros(B), np.zeros((B, A)))
    with pytest.raises(SearchStateError):
        tree.reset_sampled(np.zeros(B), mu=np.zeros((B, 1)), log_std=np.zeros((B, 1)))


@pytest.mark.parametrize("cls", BACKENDS)
def test_capacity_overflow_raises(cls) -> None:
    tree = fresh(cls)
    for _ in range(3):
        tree.select()
        tree.expand_and_backup(np.zeros(B), np.zeros(B), np.zeros((B, A)))
    with pytest.raises(SearchStateError, match="capacity"):
        tree.select()
    assert tree.result().visit_counts.sum() == 3 * B


@pytest.mark.parametrize("cls", BACKENDS)
def test_fused_select_at_capacity_raises_after_the_expansion(cls) -> None:
    """expand_and_backup(select_next=True) on a full tree expands, then reports the capacity error of
    its select; the tree is complete and consistent (no pending selection)."""
    tree = fresh(cls)
    tree.select()
    for _ in range(2):
        tree.expand_and_backup(np.zeros(B), np.ones(B), np.zeros((B, A)), select_next=True)
    with pytest.raises(SearchStateError, match="capacity"):
        tree.expand_and_backup(np.zeros(B), np.ones(B), np.zeros((B, A)), select_next=True)
    assert (tree.num_nodes == 4).all()
    assert tree.result().visit_counts.sum() == 3 * B
    with pytest.raises(SearchStateError, match="select"):
        tree.expand_and_backup(np.zeros(B), np.ones(B), np.zeros((B, A)))


@pytest.mark.parametrize("cls", BACKENDS)
def test_sampled_bad_inputs(cls) -> None:
    tree = cls(2, SearchConfig(mode="sampled", num_simulations=2, num_samples=3), action_dim=2)
    with pytest.raises(SearchInputError, match="either"):
        tree.reset_sampled(np.zeros(2))
    with pytest.raises(SearchInputError, match="either"):
        tree.reset_sampled(np.zeros(2), mu=np.zeros((2, 2)), logp=np.zeros((2, 3)))
    with pytest.raises(SearchInputError, match=r"\[-1, 1\]"):
        tree.reset_sampled(np.zeros(2), actions=np.full((2, 3, 2), 1.5), logp=np.zeros((2, 3)))
    with pytest.raises(SearchInputError):
        tree.reset_sampled(np.zeros(2), actions=np.full((2, 3, 2), np.nan), logp=np.zeros((2, 3)))
    with pytest.raises(SearchInputError):
        tree.reset_sampled(np.zeros(2), mu=np.zeros((2, 2)), log_std=np.full((2, 2), np.inf))
    with pytest.raises(SearchInputError, match="shape"):
        tree.reset_sampled(np.zeros(2), mu=np.zeros((2, 3)), log_std=np.zeros((2, 3)))
    tree.reset_sampled(np.zeros(2), mu=np.zeros((2, 2)), log_std=np.zeros((2, 2)))
    tree.select()
    with pytest.raises(SearchInputError):
        tree.expand_and_backup_sampled(np.zeros(2), np.zeros(2), actions=np.full((2, 3, 2), -1.01),
                                       logp=np.zeros((2, 3)))
    with pytest.raises(SearchStateError):
        tree.expand_and_backup(np.zeros(2), np.zeros(2), np.zeros((2, 3)))


@pytest.mark.parametrize("cls", BACKENDS)
def test_bad_temperature(cls) -> None:
    tree = fresh(cls)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(SearchInputError, match="temperature"):
            tree.result(bad)


def test_non_contiguous_input_is_copied_not_misread() -> None:
    tree = fresh(SearchTree)
    logits = np.zeros((B, 2 * A))
    logits[:, ::2] = [0.0, 5.0, 0.0, 0.0]  # strided view: action 1 is clearly preferred
    tree.reset(np.zeros(B), np.ascontiguousarray(logits[:, ::2]))
    expected = tree.prior[:, 0].copy()
    tree.reset(np.zeros(B), logits[:, ::2])
    np.testing.assert_array_equal(tree.prior[:, 0], expected)
    assert (tree.prior[:, 0].argmax(1) == 1).all()


class _Subclass(np.ndarray):
    pass


def test_expand_inputs_as_views_or_subclasses_match_contiguous_arrays() -> None:
    """Strided views (e.g. a planner's ``logits[rows, :width]``) and ndarray subclasses take the
    checked path (copied, never misread); the result equals that of plain contiguous arrays."""
    rng = np.random.default_rng(3)
    steps = [(rng.normal(size=B), rng.normal(size=B), rng.normal(size=(B, 2 * A))) for _ in range(3)]
    trees = []
    for variant in ("contiguous", "views"):
        tree = fresh(SearchTree)
        tree.select()
        for i, (reward, value, wide) in enumerate(steps):
            logits = wide[:, 1::2]  # strided
            if variant == "contiguous":
                reward, value, logits = reward.copy(), value.copy(), np.ascontiguousarray(logits)
            else:
                reward = np.stack([reward, reward], axis=1)[:, 0]  # strided [B] view
                value = value.view(_Subclass)
            tree.expand_and_backup(reward, value, logits, select_next=i < 2)
        trees.append(tree)
    for field in ("visit", "value_sum", "q", "prior", "child"):
        np.testing.assert_array_equal(getattr(trees[0], field), getattr(trees[1], field), err_msg=field)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "alpha"},
        {"num_simulations": 0},
        {"num_simulations": 2.5},
        {"c2": 0.0},
        {"discount": 1.5},
        {"value_floor": 0.0},
        {"dirichlet_alpha": -1.0},
        {"dirichlet_fraction": 2.0},
        {"c1": float("nan")},
        {"interior": "random"},
        {"unvisited_value": "mean"},
    ],
)
def test_config_validation(kwargs) -> None:
    with pytest.raises(ValueError):
        SearchConfig(**kwargs)


def test_config_rejects_unknown_keys_and_is_frozen() -> None:
    with pytest.raises(TypeError):
        SearchConfig(num_simulation=5)  # typo
    config = SearchConfig()
    with pytest.raises(AttributeError):
        config.c1 = 2.0  # type: ignore[misc]


def test_tree_shape_validation() -> None:
    with pytest.raises(ValueError, match="num_actions"):
        SearchTree(2, SearchConfig())
    with pytest.raises(ValueError, match="action_dim"):
        SearchTree(2, SearchConfig(mode="sampled"))
    with pytest.raises(ValueError, match="batch_size"):
        SearchTree(0, SearchConfig(), num_actions=3)
    with pytest.raises(ValueError, match="sampled"):
        SearchTree(2, SearchConfig(), num_actions=3, action_dim=2)


@pytest.mark.parametrize("cls", BACKENDS)
@pytest.mark.parametrize(
    "bad_reward,bad_value,match",
    [
        ({6: np.inf}, {}, "reward of root 6 is NaN or infinite"),
        ({}, {5: np.nan}, "value of root 5 is NaN or infinite"),
        ({7: -np.inf}, {2: np.nan}, "value of root 2"),  # the first bad root is named, value before reward
        ({3: np.nan}, {3: np.inf}, "reward of root 3"),  # same root: reward first
    ],
)
def test_nonfinite_reward_or_value_names_the_first_bad_root(cls, bad_reward, bad_value, match) -> None:
    """A batch wide enough for the C core's vectorised NaN/inf scan (4 values per step, then a tail)."""
    batch = 9
    tree = cls(batch, SearchConfig(num_simulations=3), num_actions=A)
    tree.reset(np.zeros(batch), np.zeros((batch, A)))
    tree.select()
    reward, value = np.zeros(batch), np.zeros(batch)
    for b, x in bad_reward.items():
        reward[b] = x
    for b, x in bad_value.items():
        value[b] = x
    with pytest.raises(SearchInputError, match=match):
        tree.expand_and_backup(reward, value, np.zeros((batch, A)))
    tree.expand_and_backup(np.zeros(batch), np.zeros(batch), np.zeros((batch, A)))  # still usable
    assert (tree.num_nodes == 2).all()
