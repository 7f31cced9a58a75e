"""WorldModel construction, output shapes, determinism, input validation and the paper preset."""

from __future__ import annotations

import time

import pytest
import torch

from scalezero_agents.model import ModelConfig, WorldModel, model_preset
from tests.model.helpers import MIXED_SPECS, image_spec, perturb, random_actions, vector_spec

CONFIG = ModelConfig(embed_dim=32, num_heads=2, context_steps=3, train_steps=4)


def build(specs=MIXED_SPECS, config: ModelConfig = CONFIG) -> WorldModel:
    torch.manual_seed(0)
    return WorldModel(specs, config)


def test_action_sizes_and_output_shapes() -> None:
    model = build()
    assert (model.action_width, model.num_actions, model.action_dim) == (3, 5, 3)
    ids = torch.tensor([0, 1, 2])
    out = model.forward_sequence(torch.randn(3, 4, 32), random_actions(model, ids, 4, torch.Generator()), ids)
    assert out.value_logits.shape == out.reward_logits.shape == (3, 4, 101)
    assert out.policy_logits.shape == (3, 4, 5)
    assert out.mu.shape == out.log_std.shape == (3, 4, 3)
    assert out.next_latent.shape == (3, 4, 32)


def test_discrete_only_and_continuous_only_models() -> None:
    disc = build([vector_spec("a", 3, actions=4)])
    assert (disc.action_width, disc.num_actions, disc.action_dim) == (1, 4, 0)
    out = disc.forward_sequence(torch.randn(2, 2, 32), torch.zeros(2, 2, 1), torch.tensor([0, 0]))
    assert out.mu is None and out.log_std is None and out.policy_logits.shape == (2, 2, 4)
    cont = build([vector_spec("b", 3, action_dim=6)])
    assert (cont.action_width, cont.num_actions, cont.action_dim) == (6, 0, 6)
    out = cont.forward_sequence(torch.randn(2, 2, 32), torch.zeros(2, 2, 6), torch.tensor([0, 0]))
    assert out.policy_logits is None and out.mu.shape == (2, 2, 6)


def test_same_seed_same_model_and_outputs() -> None:
    a, b = build(), build()
    perturb(a)
    perturb(b)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    ids = torch.tensor([3, 0])
    x, act = torch.randn(2, 3, 32), random_actions(a, ids, 3, torch.Generator().manual_seed(0))
    for u, v in zip(a.forward_sequence(x, act, ids)[:6], b.forward_sequence(x, act, ids)[:6], strict=True):
        assert torch.equal(u, v)


def test_outputs_of_a_row_do_not_depend_on_the_rest_of_the_batch() -> None:
    model = build()
    perturb(model)
    ids = torch.tensor([0, 1, 2, 3])
    x, act = torch.randn(4, 3, 32), random_actions(model, ids, 3, torch.Generator().manual_seed(0))
    batch = model.forward_sequence(x, act, ids)
    alone = model.forward_sequence(x[2:3], act[2:3], ids[2:3])
    assert batch.value_logits.abs().sum() > 0
    for u, v in zip(batch[:6], alone[:6], strict=True):
        torch.testing.assert_close(u[2:3], v, atol=1e-5, rtol=1e-5)


def test_dropout_applies_in_training_forward_only() -> None:
    model = build(config=ModelConfig(embed_dim=32, num_heads=2, dropout=0.5))
    perturb(model)
    ids = torch.tensor([0])
    x, act = torch.randn(1, 3, 32), torch.zeros(1, 3, 3)
    model.eval()
    first, second = model.forward_sequence(x, act, ids), model.forward_sequence(x, act, ids)
    assert torch.equal(first.next_latent, second.next_latent)
    model.train()
    assert not torch.equal(model.forward_sequence(x, act, ids).next_latent, first.next_latent)


def test_task_embedding_changes_observation_tokens() -> None:
    specs = [vector_spec("a", 3, actions=2), vector_spec("b", 3, actions=2)]
    plain = build(specs, ModelConfig(embed_dim=32, num_heads=2, task_embedding=False))
    assert plain.task_embed is None
    model = build(specs, ModelConfig(embed_dim=32, num_heads=2, task_embedding=True))
    assert model.task_embed.weight.shape == (2, 32)
    with torch.no_grad():
        model.heads.value.w2.normal_()
        model.heads.value.w2[1] = model.heads.value.w2[0]  # identical heads: only the embedding differs
    x, act = torch.randn(1, 2, 32).expand(2, -1, -1), torch.zeros(2, 2, 1)
    out = model.forward_sequence(x, act, torch.tensor([0, 1]))
    assert not torch.allclose(out.value_logits[0], out.value_logits[1])


def test_images_and_vectors_in_one_model() -> None:
    specs = [image_spec("Pong", (3, 64, 64), 6), vector_spec("cont", 4, action_dim=2)]
    model = build(specs, ModelConfig(embed_dim=32, num_heads=2, conv_channels=8))
    frames = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    z = torch.stack((model.encode(0, frames), model.encode(1, torch.randn(2, 4))))  # [task, time, D]
    ids = torch.tensor([0, 1])
    out = model.forward_sequence(z, random_actions(model, ids, 2, torch.Generator()), ids)
    assert out.policy_logits.shape == (2, 2, 6) and out.mu.shape == (2, 2, 2)


def test_bad_specs_and_configs() -> None:
    with pytest.raises(ValueError, match="at least one"):
        WorldModel([], CONFIG)
    with pytest.raises(ValueError, match="not a TaskSpec"):
        WorldModel([{"name": "x"}], CONFIG)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="ModelConfig"):
        WorldModel(MIXED_SPECS, {"embed_dim": 32})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="multiple of 8"):
        WorldModel([vector_spec("c", 2, action_dim=1)], ModelConfig(embed_dim=36, num_heads=2))


@pytest.mark.parametrize(
    "latents,actions,ids,match",
    [
        (torch.randn(2, 3, 32), torch.zeros(2, 3, 3), torch.tensor([0, 4]), "unknown task id 4"),
        (torch.randn(2, 3, 32), torch.zeros(2, 3, 3), torch.tensor([0.0, 1.0]), "int64"),
        (torch.randn(2, 3, 32), torch.zeros(2, 3, 3), torch.tensor([[0, 1]]), "task_ids must have shape"),
        (torch.randn(2, 3, 31), torch.zeros(2, 3, 3), torch.tensor([0, 1]), r"latents must have shape \[2, \*, 32\]"),
        (torch.randn(3, 3, 32), torch.zeros(2, 3, 3), torch.tensor([0, 1]), "latents must have shape"),
        (torch.randn(2, 5, 32), torch.zeros(2, 5, 3), torch.tensor([0, 1]), "1..4 steps"),
        (torch.randn(2, 3, 32), torch.zeros(2, 3, 2), torch.tensor([0, 1]), r"actions must have shape \[2, 3, 3\]"),
        (torch.randn(2, 3, 32), torch.zeros(2, 2, 3), torch.tensor([0, 1]), "actions must have shape"),
        (torch.randn(2, 3, 32), torch.zeros(2, 3, 3, dtype=torch.long), torch.tensor([0, 1]), "floating"),
        (torch.randn(2, 3, 32).long(), torch.zeros(2, 3, 3), torch.tensor([0, 1]), "floating"),
    ],
)
def test_forward_sequence_rejects_bad_inputs(latents, actions, ids, match) -> None:
    with pytest.raises(ValueError, match=match):
        build().forward_sequence(latents, actions, ids)


def test_inference_rejects_bad_inputs() -> None:
    model = build()
    cache = model.new_cache(4)
    ids = torch.tensor([0, 1])
    lat, act, steps = torch.randn(2, 2, 32), torch.zeros(2, 1, 3), torch.tensor([2, 1])
    slots = torch.tensor([0, 1])
    with pytest.raises(ValueError, match="num_slots"):
        model.new_cache(0)
    with pytest.raises(ValueError, match="model's device"):
        model.new_cache(2, device="meta")
    assert model.new_cache(2, device="cpu").device == torch.device("cpu")
    with pytest.raises(ValueError, match="InferenceCache"):
        model.initial_inference("cache", slots, lat, act, steps, ids)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="new_cache"):
        model.initial_inference(
            build(config=ModelConfig(embed_dim=32, num_heads=4)).new_cache(4), slots, lat, act, steps, ids
        )
    with pytest.raises(ValueError, match=r"1\.\.context_steps=3"):
        model.initial_inference(cache, slots, torch.randn(2, 4, 32), torch.zeros(2, 3, 3), steps, ids)
    with pytest.raises(ValueError, match=r"steps must be in 1\.\.2"):
        model.initial_inference(cache, slots, lat, act, torch.tensor([3, 1]), ids)
    with pytest.raises(ValueError, match="steps must be in"):
        model.initial_inference(cache, slots, lat, act, torch.tensor([0, 1]), ids)
    with pytest.raises(ValueError, match=r"slots must be in 0\.\.3"):
        model.initial_inference(cache, torch.tensor([0, 4]), lat, act, steps, ids)
    with pytest.raises(ValueError, match="distinct"):
        model.initial_inference(cache, torch.tensor([1, 1]), lat, act, steps, ids)
    assert (cache.steps == 0).all(), "failed calls must not write"
    model.initial_inference(cache, slots, lat, act, steps, ids)
    a = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="do not match"):
        model.recurrent_inference(cache, slots, torch.tensor([2, 3]), a, torch.tensor([1, 0]))
    with pytest.raises(ValueError, match="empty slot"):
        model.recurrent_inference(cache, torch.tensor([2, 3]), slots, a, ids)
    with pytest.raises(ValueError, match="parent_slots must be in"):
        model.recurrent_inference(cache, torch.tensor([0, 7]), torch.tensor([2, 3]), a, ids)
    with pytest.raises(ValueError, match="child_slots must be in"):
        model.recurrent_inference(cache, slots, torch.tensor([2, -1]), a, ids)
    with pytest.raises(ValueError, match=r"actions must have shape \[2, 3\]"):
        model.recurrent_inference(cache, slots, torch.tensor([2, 3]), torch.zeros(2, 1), ids)
    with pytest.raises(ValueError, match="out of range"):
        model.recurrent_inference(cache, slots, torch.tensor([2, 3]), torch.tensor([[3.0, 0, 0], [0, 0, 0]]), ids)


def test_inference_ignores_training_mode_and_builds_no_graph() -> None:
    model = build(config=ModelConfig(embed_dim=32, num_heads=2, dropout=0.5, context_steps=3))
    perturb(model)
    ids = torch.tensor([0])
    lat, act, steps = torch.randn(1, 2, 32, requires_grad=True), torch.zeros(1, 1, 3), torch.tensor([2])
    preds = []
    for mode in (True, False):
        model.train(mode)
        cache = model.new_cache(2)
        first = model.initial_inference(cache, torch.tensor([0]), lat, act, steps, ids)
        second = model.recurrent_inference(cache, torch.tensor([0]), torch.tensor([1]), torch.ones(1, 3), ids)
        preds.append((first, second))
        assert first.value_logits.grad_fn is None and second.next_latent.grad_fn is None
    for u, v in zip(preds[0][0] + preds[0][1], preds[1][0] + preds[1][1], strict=True):
        assert (u is None and v is None) or torch.equal(u, v)
    assert preds[0][1].value_logits.abs().sum() > 0


@pytest.mark.slow
def test_paper_preset_builds_and_runs_on_cpu() -> None:
    torch.manual_seed(0)
    start = time.perf_counter()
    specs = [image_spec("Pong", (3, 64, 64)), vector_spec("walker", 24, action_dim=6)]
    model = WorldModel(specs, model_preset("paper"))
    params = sum(p.numel() for p in model.parameters())
    transformer = sum(p.numel() for p in model.transformer.parameters())
    print(f"paper preset: {params / 1e6:.1f} M parameters ({transformer / 1e6:.1f} M in the transformer)")
    assert 240e6 < transformer < 270e6  # ~255 M per algorithm.md §3.3
    ids = torch.tensor([0, 1])
    z = torch.stack(
        (model.encode(0, torch.zeros(2, 3, 64, 64, dtype=torch.uint8)), model.encode(1, torch.randn(2, 24)))
    )
    actions = random_actions(model, ids, 2, torch.Generator())
    with torch.no_grad():
        out = model.forward_sequence(z, actions, ids)
    assert out.value_logits.shape == (2, 2, 101) and out.expert_load.shape == (4, 8)
    cache = model.new_cache(4)
    model.initial_inference(cache, torch.tensor([0, 1]), z.detach(), actions, torch.tensor([2, 2]), ids)
    pred = model.recurrent_inference(cache, torch.tensor([0, 1]), torch.tensor([2, 3]), actions[:, 1], ids)
    assert pred.next_latent.shape == (2, 768) and pred.policy_logits.shape == (2, 18) and pred.mu.shape == (2, 6)
    print(f"paper preset: built and ran in {time.perf_counter() - start:.1f} s")
