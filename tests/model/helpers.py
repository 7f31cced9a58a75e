"""Task-spec factories and helpers shared by the model tests (no environments needed)."""

from __future__ import annotations

import torch
from scalezero_adapters import TaskSpec

from scalezero_agents.model import WorldModel


def vector_spec(name: str, obs_dim: int, *, actions: int | None = None, action_dim: int | None = None) -> TaskSpec:
    """A gym vector task: discrete with ``actions`` or continuous with ``action_dim``."""
    bounds = {} if actions is not None else {"action_low": -1.0, "action_high": 1.0}
    return TaskSpec(
        name=f"gym/{name}",
        family="gym",
        modality="vector",
        obs_shape=(obs_dim,),
        obs_dtype="float32",
        action_kind="discrete" if actions is not None else "continuous",
        num_actions=actions,
        action_dim=action_dim,
        discount=0.99,
        max_episode_steps=100,
        eval_protocol="test",
        **bounds,
    )


def image_spec(name: str, shape: tuple[int, int, int], actions: int = 18) -> TaskSpec:
    """An Atari-like image task."""
    return TaskSpec(
        name=f"atari/{name}",
        family="atari",
        modality="image",
        obs_shape=shape,
        obs_dtype="uint8",
        action_kind="discrete",
        num_actions=actions,
        discount=0.997,
        max_episode_steps=100,
        eval_protocol="test",
    )


def text_spec(name: str = "zork", actions: int = 10) -> TaskSpec:
    """A Jericho-like text task with an action mask."""
    return TaskSpec(
        name=f"jericho/{name}",
        family="jericho",
        modality="text",
        obs_shape=(512,),
        obs_dtype="str",
        action_kind="discrete",
        num_actions=actions,
        has_action_mask=True,
        discount=0.99,
        max_episode_steps=100,
        eval_protocol="test",
    )


#: A discrete and a continuous vector task of each of two sizes (different A_k, d_k and obs dims).
MIXED_SPECS = (
    vector_spec("d3", 5, actions=3),
    vector_spec("c2", 7, action_dim=2),
    vector_spec("d5", 4, actions=5),
    vector_spec("c3", 6, action_dim=3),
)


def random_actions(model: WorldModel, task_ids: torch.Tensor, steps: int, generator: torch.Generator) -> torch.Tensor:
    """Valid unified actions ``[n, steps, P]`` for each row's task."""
    n = task_ids.shape[0]
    out = torch.zeros(n, steps, model.action_width)
    for i, task in enumerate(task_ids.tolist()):
        spec = model.specs[task]
        if spec.is_discrete:
            out[i, :, 0] = torch.randint(0, spec.action_size, (steps,), generator=generator).float()
        else:
            out[i, :, : spec.action_size] = torch.rand(steps, spec.action_size, generator=generator) * 2 - 1
    return out


def perturb(model: torch.nn.Module, scale: float = 0.1, seed: int = 1) -> None:
    """Add noise to every parameter so that zero-initialised heads produce non-trivial outputs."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * scale)
