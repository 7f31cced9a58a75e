"""The C core equals the NumPy reference: identical trees, visit counts, policies and random draws."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalezero_agents.search import ReferenceTree, SearchConfig, SearchTree, search
from scalezero_agents.search.testing import HashModel

TREE_FIELDS = ["visit", "value_sum", "reward", "q", "child", "prior", "kids", "nkids", "num_nodes", "max_depth"]


def run_both(config: SearchConfig, batch: int, actions: int, *, action_dim: int = 0, seed: int = 0,
             noise: bool = True, temperature: float = 1.0, legal: np.ndarray | None = None,
             valid: np.ndarray | None = None, searches: int = 2, table_seed: int = 0):
    """Run the same searches on both backends; return (outputs, trees) per backend."""
    results = []
    for cls in (SearchTree, ReferenceTree):
        kwargs = {"action_dim": action_dim} if config.mode == "sampled" else {"num_actions": actions}
        tree = cls(batch, config, seed=seed, **kwargs)
        model = HashModel(batch, config.num_simulations, actions, action_dim=action_dim, seed=table_seed)
        outs = []
        for i in range(searches):
            root = model.root(np.arange(batch) * 7 + 31 * i)
            if legal is not None:
                root = root._replace(legal_mask=legal, valid_mask=valid)
            outs.append(search(tree, root, model, noise=noise, temperature=temperature))
        results.append((outs, tree))
    return results


def assert_same(results) -> None:
    (c_outs, c_tree), (r_outs, r_tree) = results
    for c, r in zip(c_outs, r_outs, strict=True):
        np.testing.assert_array_equal(c.visit_counts, r.visit_counts)
        np.testing.assert_array_equal(c.policy, r.policy)
        np.testing.assert_array_equal(c.value, r.value)
        np.testing.assert_array_equal(c.action, r.action)
        np.testing.assert_array_equal(c.max_depth, r.max_depth)
        for field in ("action_vec", "sampled_actions", "sampled_logp"):
            if getattr(c, field) is not None:
                np.testing.assert_array_equal(getattr(c, field), getattr(r, field))
    for field in TREE_FIELDS:
        np.testing.assert_array_equal(getattr(c_tree, field), getattr(r_tree, field), err_msg=field)
    np.testing.assert_array_equal(c_tree.rng, r_tree.rng_state)


@pytest.mark.parametrize("mode,interior", [("puct", "puct"), ("gumbel", "deterministic"), ("gumbel", "puct")])
@pytest.mark.parametrize("noise", [False, True])
def test_discrete_modes_match_reference(mode: str, interior: str, noise: bool) -> None:
    config = SearchConfig(mode=mode, interior=interior, num_simulations=40, max_considered=8)
    assert_same(run_both(config, 5, 12, noise=noise, searches=3))


@pytest.mark.parametrize("noise", [False, True])
def test_sampled_mode_matches_reference(noise: bool) -> None:
    config = SearchConfig(mode="sampled", num_simulations=30, num_samples=6)
    assert_same(run_both(config, 3, 6, action_dim=2, noise=noise, searches=3))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mode=st.sampled_from(["puct", "gumbel"]),
    batch=st.integers(1, 4),
    actions=st.integers(1, 9),
    sims=st.integers(1, 24),
    seed=st.integers(0, 2**63 - 1),
    noise=st.booleans(),
    temperature=st.sampled_from([0.0, 0.25, 1.0]),
    data=st.data(),
)
def test_property_discrete(mode, batch, actions, sims, seed, noise, temperature, data) -> None:
    masks = st.lists(st.booleans(), min_size=batch * actions, max_size=batch * actions)
    legal = np.array(data.draw(masks), dtype=bool).reshape(batch, actions)
    valid = np.array(data.draw(masks), dtype=bool).reshape(batch, actions)
    legal[:, 0] = True  # every root needs a legal action; the error path is tested elsewhere
    valid[:, -1] = True
    config = SearchConfig(mode=mode, num_simulations=sims, max_considered=data.draw(st.integers(1, 9)),
                          dirichlet_alpha=data.draw(st.sampled_from([0.03, 0.3, 2.5])))
    results = run_both(config, batch, actions, seed=seed, noise=noise, temperature=temperature,
                       legal=legal, valid=valid, table_seed=seed % 1000)
    assert_same(results)
    for out in results[0][0]:
        assert not out.visit_counts[~legal].any(), "an illegal root action was visited"
        assert legal[np.arange(batch), out.action].all(), "an illegal action was chosen"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.integers(1, 3), samples=st.integers(1, 8), dim=st.integers(1, 3), sims=st.integers(1, 20),
       seed=st.integers(0, 2**63 - 1), noise=st.booleans())
def test_property_sampled(batch, samples, dim, sims, seed, noise) -> None:
    config = SearchConfig(mode="sampled", num_simulations=sims, num_samples=samples)
    assert_same(run_both(config, batch, samples, action_dim=dim, seed=seed, noise=noise,
                         table_seed=seed % 1000))


def test_supplied_samples_match_reference() -> None:
    rng = np.random.default_rng(0)
    config = SearchConfig(mode="sampled", num_simulations=12, num_samples=5)
    outs = []
    for cls in (SearchTree, ReferenceTree):
        tree = cls(2, config, action_dim=3, seed=1)
        tree.reset_sampled(np.zeros(2), actions=np.tanh(rng.normal(size=(2, 5, 3))), logp=rng.normal(size=(2, 5)))
        for _ in range(12):
            sel = tree.select()
            tree.expand_and_backup_sampled(sel.action_vec.sum(1).copy(), np.zeros(2),
                                           actions=np.tanh(rng.normal(size=(2, 5, 3))),
                                           logp=rng.normal(size=(2, 5)))
        outs.append(tree.result())
        rng = np.random.default_rng(0)
    np.testing.assert_array_equal(outs[0].visit_counts, outs[1].visit_counts)
    np.testing.assert_array_equal(outs[0].action_vec, outs[1].action_vec)


@pytest.mark.parametrize("mode,interior", [("puct", "puct"), ("gumbel", "deterministic"), ("gumbel", "puct"),
                                           ("sampled", "puct")])
def test_kid_records_mirror_the_node_records(mode: str, interior: str) -> None:
    """pUCT scores children from their parent's `kids` row (szm_kid records); the backup keeps each
    record equal to the child's own node record."""
    config = SearchConfig(mode=mode, interior=interior, num_simulations=40, max_considered=8, num_samples=6)
    (_, tree), _ = run_both(config, 4, 6 if mode == "sampled" else 12, action_dim=2 if mode == "sampled" else 0)
    for b in range(tree.batch_size):
        for n in range(tree.num_nodes[b]):
            k = int(tree.nkids[b, n])
            rec = tree.kid_stats[b, n, :k]
            kids = rec["node"]
            np.testing.assert_array_equal(kids, tree.kids[b, n, :k])
            assert (np.diff(kids) > 0).all(), "children are listed in creation (= first visit) order"
            np.testing.assert_array_equal(rec["q"], tree.q[b, kids])
            np.testing.assert_array_equal(rec["visit"], tree.visit[b, kids])
            np.testing.assert_array_equal(rec["prior"], tree.edge_prior[b, kids])
            np.testing.assert_array_equal(rec["action"], tree.action[b, kids])
            np.testing.assert_array_equal(tree.kid_index[b, kids], np.arange(k))
            np.testing.assert_array_equal(tree.parent[b, kids], n)
            np.testing.assert_array_equal(tree.child[b, n, rec["action"]], kids)


@pytest.mark.parametrize("mode,interior,actions", [("puct", "puct", 33), ("puct", "puct", 71),
                                                   ("gumbel", "puct", 71), ("sampled", "puct", 41)])
def test_wide_rows_match_reference(mode: str, interior: str, actions: int) -> None:
    """Rows wider than the C core's 32-slot scan masks (finding next_kid), with odd tails."""
    config = SearchConfig(mode=mode, interior=interior, num_simulations=60, max_considered=16,
                          num_samples=actions)
    if mode == "sampled":
        assert_same(run_both(config, 3, actions, action_dim=1, searches=2))
        return
    rng = np.random.default_rng(actions)
    legal = rng.random((3, actions)) < 0.8
    valid = rng.random((3, actions)) < 0.8
    legal[:, -1] = valid[:, -1] = True
    assert_same(run_both(config, 3, actions, legal=legal, valid=valid, searches=2))
