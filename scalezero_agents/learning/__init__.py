"""Learning: replay of trajectory windows, n-step targets, losses and the learner step."""

from scalezero_agents.learning.learner import Learner, LearnerConfig
from scalezero_agents.learning.losses import CONTINUOUS_WEIGHTS, DISCRETE_WEIGHTS, LossWeights
from scalezero_agents.learning.replay import ReplayConfig, TaskReplay, WindowBatch
from scalezero_agents.learning.targets import NStepPlan, nstep_plan

__all__ = [
    "CONTINUOUS_WEIGHTS",
    "DISCRETE_WEIGHTS",
    "Learner",
    "LearnerConfig",
    "LossWeights",
    "NStepPlan",
    "ReplayConfig",
    "TaskReplay",
    "WindowBatch",
    "nstep_plan",
]
