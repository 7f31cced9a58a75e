"""Incremental KV-cache inference equals the full teacher-forced forward over the same window tokens."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import torch

from scalezero_agents.model import ModelConfig, WorldModel
from tests.model.helpers import MIXED_SPECS, perturb, random_actions

C = 3
CONFIGS = {
    "dense": {},
    "moe-top2-taskemb-simnorm-dropout": {
        "ffn": "moe",
        "num_experts": 4,
        "experts_per_token": 2,
        "task_embedding": True,
        "latent_norm": "simnorm",
        "dropout": 0.2,
    },
    "moe-faithful": {"ffn": "moe", "num_experts": 4, "router": "faithful"},
}
# (task ids, initial steps): mixed kinds with some rows overflowing at the first expansion; one
# discrete task growing from 1 step (no overflow, then all rows overflow); one continuous task.
BATCHES = {
    "mixed": ([0, 1, 2, 3, 1, 0], [1, 3, 2, 3, 1, 2]),
    "one-discrete-task": ([2, 2, 2], [1, 1, 1]),
    "one-continuous-task": ([3, 3], [2, 1]),
}
TOL = {"atol": 2e-5, "rtol": 1e-5}


def build(context: int = C, **overrides: object) -> WorldModel:
    torch.manual_seed(0)
    config = ModelConfig(embed_dim=32, num_layers=2, num_heads=2, context_steps=context, train_steps=4, **overrides)
    model = WorldModel(MIXED_SPECS, config)
    perturb(model)
    return model


@contextlib.contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[None]:
    mode = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(mode)


def reference_obs(model: WorldModel, task: int, latents: torch.Tensor, actions: torch.Tensor) -> list:
    """Value, policy logits, mu, log_std at the last latent of a window (``m`` latents, ``m - 1`` actions)."""
    padded = torch.cat((actions, torch.zeros(1, model.action_width)))
    with evaluating(model), torch.no_grad():
        out = model.forward_sequence(latents[None], padded[None], torch.tensor([task]))
    return [None if x is None else x[0, -1] for x in (out.value_logits, out.policy_logits, out.mu, out.log_std)]


def reference_action(model: WorldModel, task: int, latents: torch.Tensor, actions: torch.Tensor) -> list:
    """Reward logits and next latent after the last action of a window (``m`` latents, ``m`` actions)."""
    with evaluating(model), torch.no_grad():
        out = model.forward_sequence(latents[None], actions[None], torch.tensor([task]))
    return [out.reward_logits[0, -1], out.next_latent[0, -1]]


def reference_keys(model: WorldModel, task: int, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Keys of a fresh full forward over a window's tokens, ``[L, heads, 2m - 1, dh]``."""
    route = model.table.route([task], torch.tensor([task]))
    with evaluating(model), torch.no_grad():
        return model.transformer(model._window_tokens(latents[None], actions[None], route)).keys[:, 0]


def assert_obs_outputs(pred, row: int, ref: list) -> None:
    value, logits, mu, log_std = ref
    torch.testing.assert_close(pred.value_logits[row], value, **TOL)
    torch.testing.assert_close(pred.policy_logits[row], logits, **TOL)
    torch.testing.assert_close(pred.mu[row], mu, **TOL)
    torch.testing.assert_close(pred.log_std[row], log_std, **TOL)


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("batch", list(BATCHES))
def test_incremental_inference_equals_full_forward(config: str, batch: str) -> None:
    check_against_full_forward(build(**CONFIGS[config]), *BATCHES[batch])


@pytest.mark.parametrize("context", [1, 2])
def test_incremental_inference_equals_full_forward_with_short_windows(context: int) -> None:
    ids, steps = BATCHES["mixed"]
    check_against_full_forward(build(context), ids, [min(s, context) for s in steps])


def check_against_full_forward(model: WorldModel, ids_list: list[int], steps_list: list[int]) -> None:
    """Run a root and 2 * context + 1 expansions per row; compare every output and K/V with full forwards."""
    context = model.config.context_steps
    model.train()  # inference must ignore dropout whatever the mode
    ids, steps = torch.tensor(ids_list), torch.tensor(steps_list)
    n = len(ids_list)
    gen = torch.Generator().manual_seed(3)
    latents = torch.randn(n, context, model.config.embed_dim, generator=gen)
    actions = random_actions(model, ids, context, gen)
    cache = model.new_cache(n * (2 * context + 3))
    pred = model.initial_inference(cache, torch.arange(n), latents, actions[:, : max(context - 1, 0)], steps, ids)
    assert pred.reward_logits is None and pred.next_latent is None
    windows = []
    for i in range(n):
        m = steps_list[i]
        windows.append((latents[i, :m], actions[i, : m - 1]))
        assert_obs_outputs(pred, i, reference_obs(model, ids_list[i], *windows[i]))
    parents = torch.arange(n)
    overflowed = set()
    for step in range(2 * context + 1):
        new_actions = random_actions(model, ids, 1, gen)[:, 0]
        children = torch.arange(n * (step + 1), n * (step + 2))
        pred = model.recurrent_inference(cache, parents, children, new_actions, ids)
        for i, task in enumerate(ids_list):
            lat, act = windows[i]
            act = torch.cat((act, new_actions[i : i + 1]))
            reward, next_latent = reference_action(model, task, lat, act)
            torch.testing.assert_close(pred.reward_logits[i], reward, **TOL)
            torch.testing.assert_close(pred.next_latent[i], next_latent, **TOL)
            lat = torch.cat((lat, pred.next_latent[i : i + 1]))
            if lat.shape[0] > context:
                lat, act = lat[1:], act[1:]
                overflowed.add(step)
            windows[i] = (lat, act)
            assert_obs_outputs(pred, i, reference_obs(model, task, lat, act))
            m = lat.shape[0]
            assert int(cache.steps[children[i]]) == m
            torch.testing.assert_close(
                cache.keys[:, children[i], :, : 2 * m - 1], reference_keys(model, task, lat, act), **TOL
            )
        parents = children
    assert overflowed, "the test must run past the window"


def test_expanding_a_parent_leaves_it_untouched_and_children_are_independent() -> None:
    model = build()
    ids = torch.tensor([0, 1])
    gen = torch.Generator().manual_seed(5)
    latents = torch.randn(2, C, model.config.embed_dim, generator=gen)
    actions = random_actions(model, ids, C, gen)
    cache = model.new_cache(8)
    model.initial_inference(cache, torch.tensor([0, 1]), latents, actions, torch.tensor([C, 2]), ids)
    before = [t.clone() for t in (cache.keys[:, :2], cache.values[:, :2], cache.latents[:2], cache.steps[:2])]
    a1, a2 = random_actions(model, ids, 2, gen).unbind(1)
    first = model.recurrent_inference(cache, torch.tensor([0, 1]), torch.tensor([2, 3]), a1, ids)
    second = model.recurrent_inference(cache, torch.tensor([0, 1]), torch.tensor([4, 5]), a2, ids)
    after = [cache.keys[:, :2], cache.values[:, :2], cache.latents[:2], cache.steps[:2]]
    for old, new in zip(before, after, strict=True):
        assert torch.equal(old, new)
    again = model.recurrent_inference(cache, torch.tensor([0, 1]), torch.tensor([6, 7]), a1, ids)
    for x, y in zip(first, again, strict=True):
        assert torch.equal(x, y)
    assert not torch.allclose(first.next_latent, second.next_latent)


def test_child_slot_may_be_another_rows_parent() -> None:
    model = build()
    ids = torch.tensor([2, 2])
    gen = torch.Generator().manual_seed(6)
    latents = torch.randn(2, 2, model.config.embed_dim, generator=gen)
    actions = random_actions(model, ids, 2, gen)
    cache = model.new_cache(4)
    model.initial_inference(cache, torch.tensor([0, 1]), latents, actions, torch.tensor([2, 2]), ids)
    reference = model.new_cache(4)
    reference.copy_slots(torch.arange(4), torch.arange(4))  # no-op on an empty cache
    model.initial_inference(reference, torch.tensor([0, 1]), latents, actions, torch.tensor([2, 2]), ids)
    new_actions = torch.tensor([[1.0, 0.0, 0.0], [3.0, 0.0, 0.0]])
    swapped = model.recurrent_inference(cache, torch.tensor([0, 1]), torch.tensor([1, 0]), new_actions, ids)
    plain = model.recurrent_inference(reference, torch.tensor([0, 1]), torch.tensor([2, 3]), new_actions, ids)
    for x, y in zip(swapped, plain, strict=True):
        if x is not None:
            torch.testing.assert_close(x, y)
    torch.testing.assert_close(cache.keys[:, [1, 0]], reference.keys[:, [2, 3]])


def test_initial_inference_accepts_a_trailing_action_column_and_ignores_padding() -> None:
    model = build()
    ids = torch.tensor([1, 2])
    gen = torch.Generator().manual_seed(7)
    latents = torch.randn(2, C, model.config.embed_dim, generator=gen)
    actions = random_actions(model, ids, C, gen)
    steps = torch.tensor([C, 1])
    short = model.initial_inference(model.new_cache(2), torch.arange(2), latents, actions[:, :-1], steps, ids)
    junk = actions.clone()
    junk[1] = 99.0  # row 1 has a single latent: all of its actions are padding
    long = model.initial_inference(model.new_cache(2), torch.arange(2), latents, junk, steps, ids)
    for x, y in zip(short, long, strict=True):
        if x is not None:
            torch.testing.assert_close(x, y)


def test_copy_slots_and_clear() -> None:
    model = build()
    ids = torch.tensor([0])
    cache = model.new_cache(3)
    latents = torch.randn(1, 2, model.config.embed_dim)
    model.initial_inference(cache, torch.tensor([0]), latents, torch.zeros(1, 1, 3), torch.tensor([2]), ids)
    cache.copy_slots(torch.tensor([0]), torch.tensor([2]))
    a = torch.tensor([[1.0, 0.0, 0.0]])
    p0 = model.recurrent_inference(cache, torch.tensor([0]), torch.tensor([1]), a, ids)
    p2 = model.recurrent_inference(cache, torch.tensor([2]), torch.tensor([1]), a, ids)
    assert torch.equal(p0.value_logits, p2.value_logits)
    cache.clear(torch.tensor([2]))
    assert cache.steps.tolist() == [2, 3, 0] and cache.task_ids.tolist() == [0, 0, -1]
    with pytest.raises(ValueError, match="empty slot"):
        model.recurrent_inference(cache, torch.tensor([2]), torch.tensor([1]), a, ids)
