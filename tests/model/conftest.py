"""Fixtures of the model tests."""

from __future__ import annotations

import pytest

from scalezero_agents.model import ModelConfig


@pytest.fixture
def tiny_config() -> ModelConfig:
    """A very small model with a 3-step context (so windows overflow quickly)."""
    return ModelConfig(embed_dim=32, num_layers=2, num_heads=2, context_steps=3, train_steps=4, conv_channels=8)
