"""Training: the native multi-task trainer, callbacks and checkpoints."""

from scalezero_agents.training.trainer import Callback, MultiTaskTrainer, TrainerConfig

__all__ = ["Callback", "MultiTaskTrainer", "TrainerConfig"]
