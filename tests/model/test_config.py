"""ModelConfig validation and presets."""

from __future__ import annotations

import dataclasses

import pytest

from scalezero_agents.model import PRESET_NAMES, ModelConfig, model_preset


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"embed_dim": 0}, "embed_dim"),
        ({"embed_dim": 64.0}, "embed_dim"),
        ({"num_layers": True}, "num_layers"),
        ({"num_heads": 3}, "divide embed_dim"),
        ({"context_steps": 0}, "context_steps"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"ffn": "sparse"}, "ffn"),
        ({"router": "learned"}, "router"),
        ({"experts_per_token": 9}, "experts_per_token"),
        ({"latent_norm": "batchnorm"}, "latent_norm"),
        ({"latent_norm": "simnorm", "simnorm_group": 7}, "simnorm_group"),
        ({"support_scale": 0}, "support_scale"),
        ({"conv_channels": 15}, "even"),
        ({"conv_res_blocks": -1}, "conv_res_blocks"),
        ({"text_encoder": "bert"}, "text_encoder"),
        ({"head_hidden": 0}, "head_hidden"),
        ({"task_embedding": 1}, "task_embedding"),
    ],
)
def test_bad_values_raise_value_error(overrides: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ModelConfig(**overrides)


def test_unknown_keys_and_positional_arguments_are_errors() -> None:
    with pytest.raises(TypeError):
        ModelConfig(embed_dims=64)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        ModelConfig(64)  # type: ignore[misc]


def test_config_is_frozen_and_derives_sizes() -> None:
    config = ModelConfig(context_steps=4, train_steps=10, support_scale=50, embed_dim=64, num_heads=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.embed_dim = 8  # type: ignore[misc]
    assert config.num_atoms == 101
    assert config.max_tokens == 20
    assert config.head_width == 64 and config.head_dim == 32
    assert ModelConfig(head_hidden=16).head_width == 16


def test_presets() -> None:
    assert set(PRESET_NAMES) == {"tiny", "small", "paper"}
    tiny, small, paper = (model_preset(name) for name in ("tiny", "small", "paper"))
    assert (tiny.embed_dim, tiny.num_layers, tiny.num_heads, tiny.conv_channels) == (64, 2, 2, 16)
    assert (small.embed_dim, small.num_layers, small.num_heads, small.conv_channels) == (128, 2, 4, 32)
    assert (paper.embed_dim, paper.num_layers, paper.num_heads, paper.ffn) == (768, 4, 24, "moe")
    assert (paper.num_experts, paper.experts_per_token, paper.shared_expert) == (8, 1, True)
    assert (paper.support_scale, paper.context_steps, paper.train_steps) == (50, 4, 10)
    assert model_preset("tiny", dropout=0.1).dropout == 0.1


def test_preset_errors() -> None:
    with pytest.raises(ValueError, match="unknown model preset"):
        model_preset("huge")
    with pytest.raises(ValueError, match="unknown ModelConfig field"):
        model_preset("tiny", embed_dims=3)
    with pytest.raises(ValueError, match="num_heads"):
        model_preset("tiny", num_heads=5)
