"""LoRA adapters on a real agent: structure, forward, optimiser membership, gradients, freezing, EMA."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from scalezero_agents.agent import Agent
from scalezero_agents.dps import AdapterSpec, DPSConfig, DynamicParameterScaling, add_adapter, find_targets
from scalezero_agents.dps.lora import ScaledLoRAB
from tests.dps.helpers import filled_agent, tiny_config, vector_spec


def _probe(model: nn.Module, seed: int = 1) -> torch.Tensor:
    """Every output of a teacher-forced forward over fixed random inputs (eval mode: no dropout)."""
    g = torch.Generator().manual_seed(seed)
    D = model.config.embed_dim
    latents = torch.randn(3, 4, D, generator=g)
    actions = torch.randint(0, 2, (3, 4, model.action_width), generator=g).float()
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model.forward_sequence(latents, actions, torch.zeros(3, dtype=torch.long))
    model.train(was_training)
    return torch.cat([out.value_logits.flatten(), out.policy_logits.flatten(), out.reward_logits.flatten(),
                      out.next_latent.flatten()])


def _per_stage(cfg, r: int, groups=("attention", "feed_forward")) -> int:
    """Parameters one stage adds, from the model's dimensions: r * (in + out) + 1 scale per adapted Linear."""
    D, H, L = cfg.embed_dim, cfg.ffn_mult * cfg.embed_dim, cfg.num_layers
    per_layer = 0
    if "attention" in groups:
        per_layer += 4 * (r * (D + D) + 1)  # q, k, v, o: D -> D
    if "feed_forward" in groups:
        if cfg.ffn == "moe":
            per_layer += cfg.num_experts * (2 * (r * (D + H) + 1) + (r * (H + D) + 1))  # w1, w3: D -> H; w2: H -> D
        else:
            per_layer += 2 * (r * (D + H) + 1)  # fc1: D -> H, fc2: H -> D
    return L * per_layer


@pytest.mark.parametrize(("variant", "groups"), [("scalezero", ("attention", "feed_forward")),
                                                 ("unizero", ("attention", "feed_forward")),
                                                 ("scalezero", ("feed_forward",))])
def test_parameter_count_grows_by_hand_computed_amount(variant, groups):
    agent = Agent([vector_spec(0)], tiny_config(variant), seed=0)
    dps = DynamicParameterScaling(agent, DPSConfig(num_stages=4, rank=3, target_groups=groups))
    expected = _per_stage(agent.model.config, 3, groups)
    counts = [dps.num_parameters()]
    for _ in range(3):
        dps.advance()
        counts.append(dps.num_parameters())
    assert [b.total - a.total for a, b in itertools.pairwise(counts)] == [expected] * 3
    assert [c.adapters for c in counts] == [0, expected, 2 * expected, 3 * expected]
    # the EMA target grew identically
    target_total = sum(p.numel() for p in agent.learner.target.parameters())
    assert target_total == counts[-1].total


def test_targets_exclude_router_shared_expert_encoders_and_heads():
    agent = Agent([vector_spec(0)], tiny_config("scalezero"), seed=0)
    dps = DynamicParameterScaling(agent, DPSConfig(rank=2))
    dps.advance()
    assert len(dps.targets) == 2 * (4 + 4 * 3)  # 2 layers x (q, k, v, o + 4 experts x w1, w2, w3)
    assert not [t for t in dps.targets if "router" in t or "shared" in t]
    adapted = {n.rsplit(".lora_A", 1)[0] for n, _ in agent.model.named_parameters() if ".lora_A." in n}
    assert adapted == {f"transformer.{t}" for t in dps.targets}
    block = agent.model.transformer.blocks[0]
    assert type(block.ffn.router) is nn.Linear and type(block.ffn.shared.fc1) is nn.Linear
    assert type(block.ffn.experts[0].w2).__name__ == "Linear" and hasattr(block.ffn.experts[0].w2, "lora_A")


def test_errors():
    with pytest.raises(ValueError, match="no layer"):
        find_targets(nn.Sequential(nn.Linear(4, 4)), ("attention",))
    with pytest.raises(ValueError, match="unknown"):
        find_targets(nn.Sequential(nn.Linear(4, 4)), ("router",))
    agent = Agent([vector_spec(0)], tiny_config("unizero"), seed=0)
    root = agent.model.transformer
    with pytest.raises(ValueError, match="not a module"):
        add_adapter(root, AdapterSpec(name="x", targets=("blocks.9.attn.q",), rank=1, alpha=1.0, dropout=0.0,
                                      scale_init=1.0))
    with pytest.raises(ValueError, match=r"not an nn\.Linear"):
        add_adapter(root, AdapterSpec(name="x", targets=("blocks.0.ln1",), rank=1, alpha=1.0, dropout=0.0,
                                      scale_init=1.0))
    with pytest.raises(ValueError, match="rank"):
        AdapterSpec(name="x", targets=("a",), rank=0, alpha=1.0, dropout=0.0, scale_init=1.0)
    dps = DynamicParameterScaling(agent, DPSConfig(rank=1, num_stages=3))
    dps.advance()
    with pytest.raises(ValueError, match="same layers"):
        add_adapter(agent.model.transformer, AdapterSpec(name="x", targets=dps.targets[:2], rank=1, alpha=1.0,
                                                         dropout=0.0, scale_init=1.0))
    with pytest.raises(ValueError, match="already has an adapter named"):
        add_adapter(agent.model.transformer, dps.adapters[0])
    with pytest.raises(ValueError, match="already has adapters"):
        DynamicParameterScaling(agent, DPSConfig(rank=1))
    with pytest.raises(ValueError, match="already in the optimiser"):
        agent.learner.add_params(dps.adapter_parameters(1)[:1])
    with pytest.raises(ValueError, match="not a parameter of the online model"):
        agent.learner.add_params([nn.Parameter(torch.zeros(2))])
    with pytest.raises(ValueError, match="stage must be"):
        dps.adapter_parameters(2)


def test_adding_an_adapter_leaves_model_and_target_outputs_unchanged():
    agent = filled_agent("scalezero")
    agent.update()  # target != online
    dps = DynamicParameterScaling(agent, DPSConfig(rank=2, alpha=4.0))
    model, target = agent.model, agent.learner.target
    for _ in range(2):
        before = _probe(model), _probe(target)
        assert not torch.equal(before[0], before[1])
        dps.advance()
        assert torch.equal(_probe(model), before[0]) and torch.equal(_probe(target), before[1])
        agent.update()  # B becomes non-zero before the next stage
    # ... and the adapters are live: perturbing the newest B changes the output
    with torch.no_grad():
        dps.adapter_parameters(2)[1].normal_()
    assert not torch.equal(_probe(model), before[0])


def test_forward_sums_all_adapters_with_their_scales():
    agent = Agent([vector_spec(0)], tiny_config("unizero"), seed=0)
    dps = DynamicParameterScaling(agent, DPSConfig(rank=2, alpha=6.0, num_stages=3))
    dps.advance()
    dps.advance()
    layer = agent.model.transformer.blocks[1].ffn.fc1
    torch.manual_seed(3)
    with torch.no_grad():
        for name in ("stage1", "stage2"):
            layer.lora_B[name].weight.normal_()
            layer.lora_B[name].scale_logit.fill_(0.7 if name == "stage1" else -0.3)
    x = torch.randn(5, layer.in_features)
    expected = layer.base_layer(x)
    for name, theta in (("stage1", 0.7), ("stage2", -0.3)):
        s = 1.0 + 0.2 * torch.tanh(torch.tensor(theta))
        expected = expected + s * (6.0 / 2) * x @ layer.lora_A[name].weight.T @ layer.lora_B[name].weight.T
    torch.testing.assert_close(layer(x), expected)
    assert isinstance(layer.lora_B["stage2"], ScaledLoRAB)


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_stage_training_optimiser_membership_gradients_and_freezing():
    agent = filled_agent("scalezero", **{"learner.lr_schedule": "cosine", "learner.lr_decay_updates": 7})
    learner, model = agent.learner, agent.model
    dps = DynamicParameterScaling(agent, DPSConfig(rank=2, num_stages=3))
    agent.update()
    dps.advance()
    agent.update()
    agent.update()  # B_1 is now non-zero, so the scale of adapter 1 gets gradient in stage 2
    dps.advance()
    names = {id(p): n for n, p in model.named_parameters()}
    in_opt = {id(p) for g in learner.optimizer.param_groups for p in g["params"]}
    new = dps.adapter_parameters(2)
    assert all(id(p) in in_opt for p in new)  # all of A_2, B_2, s_2 (s_2 trains from stage 3 on)
    assert all(id(p) in in_opt for p in model.parameters() if p.requires_grad)
    for g in learner.optimizer.param_groups:  # decay on A / B, not on scales
        if any(id(p) in {id(q) for q in new} for p in g["params"]):
            assert g["weight_decay"] == (learner.config.weight_decay if g["params"][0].ndim == 2 else 0.0)

    trainable = {names[id(p)] for p in model.parameters() if p.requires_grad}
    a1, b1, s1 = dps.adapter_parameters(1)[:3]
    a2, b2, s2 = new[:3]
    assert {names[id(p)] for p in (a2, b2, s1)} <= trainable
    assert not {names[id(p)] for p in (a1, b1, s2)} & trainable
    before = _snapshot(model)
    metrics = agent.update()
    metrics = agent.update()  # A_2 gets gradient once B_2 != 0
    after = _snapshot(model)
    # every group runs at the scheduled learning rate (cosine: below the base rate by now)
    assert metrics["lr"] < learner.config.learning_rate
    assert {g["lr"] for g in learner.optimizer.param_groups} == {metrics["lr"]}
    for p in (a2, b2, s1):
        assert p.grad is not None and p.grad.abs().sum() > 0, names[id(p)]
        assert not torch.equal(before[names[id(p)]], after[names[id(p)]]), names[id(p)]
    for p in (a1, b1, s2):
        assert p.grad is None
    frozen = [n for n in before if n.startswith("transformer.") and "lora_" not in n and n != "transformer.pos.weight"]
    assert len(frozen) > 20
    for n in frozen + [names[id(p)] for p in (a1, b1, s2)]:
        assert torch.equal(before[n], after[n]), n
    scales = dps.scales()
    assert scales["stage2"] == [1.0] * len(dps.targets) and all(0.8 < v < 1.2 for v in scales["stage1"])
    assert any(v != 1.0 for v in scales["stage1"])
    for n in ("encoder", "heads", "action_embed", "transformer.pos.weight"):
        changed = [k for k in before if k.startswith(n) and not torch.equal(before[k], after[k])]
        assert changed, n


def test_ema_target_follows_the_adapters():
    agent = filled_agent("unizero", **{"learner.target_update": 0.25})
    agent.update()  # the heads start at zero: the transformer gets gradient from the second update on
    dps = DynamicParameterScaling(agent, DPSConfig(rank=2, num_stages=2))
    dps.advance()
    target = dict(agent.learner.target.named_parameters())
    online = dict(agent.model.named_parameters())
    assert target.keys() == online.keys()
    assert not any(p.requires_grad for p in target.values())
    assert all(torch.equal(target[n], online[n]) for n in online if ".lora_" in n)  # same initial adapter
    agent.update()
    b = "transformer.blocks.0.attn.q.lora_B.stage1.weight"
    assert online[b].abs().sum() > 0
    torch.testing.assert_close(target[b], 0.25 * online[b])  # EMA from 0 toward the updated B


def test_adapter_dropout_only_in_training_forwards():
    agent = Agent([vector_spec(0)], tiny_config("unizero"), seed=0)
    dps = DynamicParameterScaling(agent, DPSConfig(rank=2, num_stages=2, dropout=0.5))
    dps.advance()
    layer = agent.model.transformer.blocks[0].attn.v
    with torch.no_grad():
        layer.lora_B["stage1"].weight.normal_()
    x = torch.randn(64, layer.in_features)
    layer.eval()
    with torch.no_grad():
        clean = layer(x)
    layer.train()
    with torch.no_grad():  # searches run the training-mode model without autograd: no dropout
        assert torch.equal(layer(x), clean)
    assert not torch.equal(layer(x), clean)  # a training forward drops adapter inputs
