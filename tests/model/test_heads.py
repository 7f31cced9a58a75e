"""Per-task heads and action embeddings: isolation, padding, initialisation, batched routing."""

from __future__ import annotations

import pytest
import torch

from scalezero_agents.model import LOG_STD_MAX, LOG_STD_MIN, PAD_LOGIT, ModelConfig, WorldModel
from scalezero_agents.model.heads import StackedMLP
from scalezero_agents.model.routing import Segment
from tests.model.helpers import MIXED_SPECS, image_spec, perturb, random_actions, vector_spec

CONFIG = ModelConfig(embed_dim=32, num_heads=2, context_steps=3, train_steps=4)


def per_task_parameters(model: WorldModel, task: int) -> dict[str, torch.Tensor]:
    """Gradients of everything that belongs to ``task`` alone (its slices of the stacked heads, its stem)."""
    spec = model.specs[task]
    local = model.table.local[task]

    def grad(p: torch.Tensor) -> torch.Tensor:
        return p.grad if p.grad is not None else torch.zeros_like(p)

    grads = {}
    for name in ("value", "reward", "latent"):
        mlp = getattr(model.heads, name)
        for p in ("w1", "b1", "w2", "b2"):
            grads[f"{name}.{p}"] = grad(getattr(mlp, p))[task]
    policy = model.heads.policy if spec.is_discrete else model.heads.gaussian
    for p in ("w1", "b1", "w2", "b2"):
        grads[f"policy.{p}"] = grad(getattr(policy, p))[local]
    for name, p in model.encoder.vectors[str(task)].named_parameters():
        grads[f"stem.{name}"] = grad(p)
    if not spec.is_discrete:
        grads["action.weight"] = grad(model.action_embed.weight)[local]
    return grads


@pytest.mark.parametrize("mixed_batch", [False, True])
def test_a_loss_on_task_0_gives_zero_gradient_to_other_tasks_heads_and_stems(mixed_batch: bool) -> None:
    torch.manual_seed(0)
    model = WorldModel(MIXED_SPECS, CONFIG)
    perturb(model, 0.05)
    ids = torch.tensor([0, 1, 2, 3, 0] if mixed_batch else [0, 0])
    obs = [torch.randn(1, 2, model.specs[t].obs_shape[0]) for t in ids.tolist()]
    latents = torch.cat(
        [model.encode(t, o.flatten(0, 1)).view(1, 2, -1) for t, o in zip(ids.tolist(), obs, strict=True)]
    )
    actions = random_actions(model, ids, 2, torch.Generator().manual_seed(1))
    out = model.forward_sequence(latents, actions, ids)
    rows = ids == 0
    loss = sum(
        (x[rows] ** 2).mean()
        for x in (out.value_logits, out.reward_logits, out.next_latent, out.policy_logits.clamp(min=-10))
    )
    loss.backward()
    for name, grad in per_task_parameters(model, 0).items():
        if name.startswith(("value.w", "reward.w", "latent.w", "policy.w2", "stem.net.3")):
            assert grad.abs().sum() > 0, f"task 0's {name} should learn"
    for task in (1, 2, 3):
        for name, grad in per_task_parameters(model, task).items():
            assert torch.count_nonzero(grad) == 0, f"task {task}'s {name} got gradient from task 0's loss"


def test_padded_discrete_logits_are_effectively_minus_infinity() -> None:
    torch.manual_seed(0)
    model = WorldModel(MIXED_SPECS, CONFIG)
    perturb(model)
    ids = torch.tensor([0, 2, 1, 0])
    out = model.forward_sequence(torch.randn(4, 3, 32), random_actions(model, ids, 3, torch.Generator()), ids)
    logits = out.policy_logits
    assert logits.shape == (4, 3, 5) and model.num_actions == 5
    assert (logits[[0, 3], :, 3:] <= PAD_LOGIT / 2).all()  # task 0 has A = 3 of 5
    assert (logits[1] > PAD_LOGIT / 2).all()  # task 2 has all 5
    assert (logits[2] <= PAD_LOGIT / 2).all()  # a continuous row has no discrete policy
    assert torch.softmax(logits[0], -1)[:, 3:].max() == 0
    assert (logits[[0, 1, 3]][..., :3].abs() < 1e3).all()


def test_continuous_policy_outputs_are_padded_with_zeros_and_log_std_is_clamped() -> None:
    torch.manual_seed(0)
    model = WorldModel(MIXED_SPECS, CONFIG)
    perturb(model, 1.0)
    ids = torch.tensor([1, 3, 0])
    out = model.forward_sequence(torch.randn(3, 2, 32) * 10, random_actions(model, ids, 2, torch.Generator()), ids)
    assert out.mu.shape == (3, 2, 3) == out.log_std.shape
    assert (out.mu[0, :, 2:] == 0).all() and (out.log_std[0, :, 2:] == 0).all()  # task 1 has d = 2 of 3
    assert (out.mu[2] == 0).all() and (out.log_std[2] == 0).all()  # a discrete row
    assert (out.mu[1] != 0).all()
    assert (out.log_std >= LOG_STD_MIN).all() and (out.log_std <= LOG_STD_MAX).all()
    assert (out.log_std == LOG_STD_MIN).any() and (out.log_std == LOG_STD_MAX).any()  # large inputs saturate


def test_every_continuous_task_gets_the_small_uniform_init() -> None:
    torch.manual_seed(0)
    specs = [vector_spec(f"c{k}", 4, action_dim=k + 1) for k in range(4)] + [vector_spec("d", 4, actions=2)]
    model = WorldModel(specs, CONFIG)
    gaussian = model.heads.gaussian
    for task in range(4):
        for p in (gaussian.w2[task], gaussian.b2[task]):
            assert p.abs().max() <= 3e-3
            assert p.std() > 5e-4, f"task {task}'s last layer must be initialised, not zero or Xavier"
        assert gaussian.w1[task].abs().max() > 3e-2  # first layer: Xavier
    for name in ("value", "reward", "latent", "policy"):
        mlp = getattr(model.heads, name)
        assert torch.count_nonzero(mlp.w2) == 0 and torch.count_nonzero(mlp.b2) == 0
    ids = torch.arange(4)
    out = model.forward_sequence(torch.randn(4, 2, 32), random_actions(model, ids, 2, torch.Generator()), ids)
    assert out.mu.abs().max() < 0.1 and out.log_std.abs().max() < 0.1


def test_stacked_mlp_runs_each_task_block_with_its_own_weights() -> None:
    torch.manual_seed(0)
    mlp = StackedMLP(3, 8, 16, 5, last_init="uniform")
    x = torch.randn(6, 4, 8)
    segments = (Segment(0, 0, 1), Segment(1, 1, 4), Segment(2, 4, 6))
    expected = torch.cat([mlp.one(x[i : i + 1], task) for i, task in enumerate([0, 1, 1, 1, 2, 2])])
    torch.testing.assert_close(mlp(x, segments), expected)
    torch.testing.assert_close(mlp(x, (Segment(2, 0, 6),)), mlp.one(x, 2))


def test_unsorted_mixed_batches_give_the_same_rows_as_single_task_batches() -> None:
    torch.manual_seed(0)
    model = WorldModel(MIXED_SPECS, CONFIG)
    perturb(model)
    ids = torch.tensor([3, 0, 1, 0, 2, 1])
    x, act = torch.randn(6, 2, 32), random_actions(model, ids, 2, torch.Generator().manual_seed(0))
    mixed = model.forward_sequence(x, act, ids)
    for row, task in enumerate(ids.tolist()):
        alone = model.forward_sequence(x[row : row + 1], act[row : row + 1], ids[row : row + 1])
        for u, v in zip(mixed[:6], alone[:6], strict=True):
            torch.testing.assert_close(u[row : row + 1], v, atol=1e-5, rtol=1e-5, msg=f"row {row} (task {task})")


def test_discrete_action_tables_are_shared_within_a_family_and_size() -> None:
    specs = [
        image_spec("Pong", (3, 64, 64), 18),
        image_spec("Breakout", (3, 64, 64), 18),
        image_spec("X", (3, 64, 64), 6),
    ]
    specs.append(vector_spec("d", 4, actions=18))
    model = WorldModel(specs, CONFIG)
    embed = model.action_embed
    assert embed._offset == [0, 0, 18, 24]
    assert embed.tables.num_embeddings == 18 + 6 + 18
    ids = torch.tensor([0, 1, 2, 3])
    actions = torch.full((4, 1, 1), 5.0)
    tokens = embed(actions, model.table.route(ids.tolist(), ids))
    assert torch.equal(tokens[0], tokens[1]) and not torch.equal(tokens[0], tokens[2])
    assert not torch.equal(tokens[0], tokens[3])


def test_continuous_action_tokens_are_simnormed_and_ignore_padding_columns() -> None:
    torch.manual_seed(0)
    model = WorldModel(MIXED_SPECS, CONFIG)
    ids = torch.tensor([1, 1])
    actions = torch.tensor([[[0.5, -0.5, 0.0]], [[0.5, -0.5, 9.0]]])
    tokens = model.action_embed(actions, model.table.route(ids.tolist(), ids))
    assert torch.equal(tokens[0], tokens[1])
    torch.testing.assert_close(tokens.view(2, 1, -1, 8).sum(-1), torch.ones(2, 1, 4))


def test_out_of_range_discrete_actions_raise() -> None:
    model = WorldModel(MIXED_SPECS, CONFIG)
    ids = torch.tensor([0, 2])
    actions = torch.zeros(2, 2, 3)
    actions[0, 1, 0] = 3.0  # task 0 has 3 actions
    with pytest.raises(ValueError, match="out of range"):
        model.forward_sequence(torch.randn(2, 2, 32), actions, ids)
    with pytest.raises(ValueError, match="out of range"):
        model.forward_sequence(torch.randn(1, 2, 32), -torch.ones(1, 2, 3), ids[:1])
