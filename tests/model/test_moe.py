"""Mixture-of-experts feed-forward: dispatch, router gradients, balance loss."""

from __future__ import annotations

import pytest
import torch

from scalezero_agents.model import ModelConfig, WorldModel
from scalezero_agents.model.moe import MoEFeedForward
from tests.model.helpers import MIXED_SPECS, random_actions


def make(router: str = "trained", k: int = 1, shared: bool = True, experts: int = 4) -> MoEFeedForward:
    torch.manual_seed(0)
    return MoEFeedForward(16, 32, num_experts=experts, experts_per_token=k, shared_expert=shared, router=router)


def naive(moe: MoEFeedForward, x: torch.Tensor) -> torch.Tensor:
    """Per-token loop reference of the MoE forward."""
    out = []
    for token in x.reshape(-1, x.shape[-1]):
        logits = moe.router(token)
        if moe.rule == "trained":
            gates, experts = torch.softmax(logits, -1).topk(moe.k)
        else:
            top, experts = logits.topk(moe.k)
            gates = torch.softmax(top, -1)
        y = sum(g * moe.experts[int(e)](token[None])[0] for g, e in zip(gates, experts, strict=True))
        if moe.shared is not None:
            y = y + moe.shared(token)
        out.append(y)
    return torch.stack(out).reshape(x.shape)


@pytest.mark.parametrize("router", ["trained", "faithful"])
@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("shared", [True, False])
def test_dispatch_matches_a_per_token_loop(router: str, k: int, shared: bool) -> None:
    moe = make(router, k, shared)
    x = torch.randn(3, 5, 16)
    out = moe(x, stats=True)
    torch.testing.assert_close(out.out, naive(moe, x), atol=1e-5, rtol=1e-5)
    assert out.load.shape == (4,)
    torch.testing.assert_close(out.load.sum(), torch.tensor(1.0))
    assert (out.aux_loss is not None) == (router == "trained")
    if router == "trained":  # the balance loss is rebuilt from its parts (distributed training combines them)
        torch.testing.assert_close(out.aux_loss, 4 * (out.load * out.router_prob).sum())
        assert out.router_prob.requires_grad
    else:
        assert out.router_prob is None


def test_trained_router_gets_gradient_and_faithful_top1_router_gets_exactly_zero() -> None:
    x = torch.randn(64, 16)
    trained = make("trained")
    (trained(x).out ** 2).mean().backward()
    assert trained.router.weight.grad is not None and trained.router.weight.grad.abs().sum() > 0
    faithful = make("faithful")
    out = faithful(x)
    (out.out**2).mean().backward()
    grad = faithful.router.weight.grad
    assert grad is None or torch.count_nonzero(grad) == 0
    assert faithful.experts[0].w1.weight.grad is not None  # the experts themselves do learn
    assert out.aux_loss is None


def test_faithful_top2_router_does_get_gradient() -> None:
    moe = make("faithful", k=2)
    (moe(torch.randn(32, 16)).out ** 2).mean().backward()
    assert moe.router.weight.grad.abs().sum() > 0


def test_balance_loss_falls_when_training_a_skewed_router() -> None:
    moe = make("trained", experts=4)
    with torch.no_grad():  # route almost every token to expert 0
        moe.router.weight.zero_()
        moe.router.weight[0, 0] = 4.0
    x = torch.randn(256, 16)
    x[:, 0] = x[:, 0].abs() + 1.0
    target = torch.randn(256, 16)
    optimiser = torch.optim.Adam(moe.parameters(), lr=2e-2)
    losses, max_loads = [], []
    for _ in range(60):
        out = moe(x, stats=True)
        losses.append(out.aux_loss.item())
        max_loads.append(out.load.max().item())
        loss = ((out.out - target) ** 2).mean() + out.aux_loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert losses[0] > 2.0 and max_loads[0] > 0.9
    assert losses[-1] < 0.6 * losses[0]
    assert max_loads[-1] < 0.75


@pytest.mark.parametrize("router", ["trained", "faithful"])
def test_world_model_reports_aux_loss_and_expert_load(router: str) -> None:
    torch.manual_seed(0)
    config = ModelConfig(embed_dim=32, num_heads=2, num_layers=3, ffn="moe", num_experts=4, router=router)
    model = WorldModel(MIXED_SPECS, config)
    ids = torch.tensor([0, 1, 2, 3])
    out = model.forward_sequence(
        torch.randn(4, 5, 32), random_actions(model, ids, 5, torch.Generator().manual_seed(0)), ids
    )
    assert out.expert_load.shape == (3, 4)
    torch.testing.assert_close(out.expert_load.sum(-1), torch.ones(3))
    assert out.aux_loss.dim() == 0
    if router == "trained":
        assert out.aux_loss.item() >= 3.0 - 1e-4  # E * sum f P >= 1 per layer, 3 layers
        out.aux_loss.backward()
        assert model.transformer.blocks[0].ffn.router.weight.grad.abs().sum() > 0
    else:
        assert out.aux_loss.item() == 0.0


def test_dense_world_model_has_zero_aux_loss_and_no_load() -> None:
    model = WorldModel(MIXED_SPECS, ModelConfig(embed_dim=32, num_heads=2))
    ids = torch.tensor([0])
    out = model.forward_sequence(torch.randn(1, 2, 32), torch.zeros(1, 2, 3), ids)
    assert out.aux_loss.item() == 0.0 and out.expert_load is None
