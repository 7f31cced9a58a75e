"""scalezero-agents: the ScaleZero multi-task planning agent (arXiv 2509.07945).

One UniZero-style transformer world model, planned with a batched C MCTS core, for many
heterogeneous tasks (Atari, DeepMind Control, Jericho, Gymnasium), usable from
Stable-Baselines3, Tianshou 2.x or the native multi-task trainer.
"""

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
