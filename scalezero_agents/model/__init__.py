"""The pure-torch world model: encoders, causal transformer with an explicit KV cache, dense or MoE FFN,
per-task heads and categorical value/reward supports.

Build a :class:`WorldModel` from a list of :class:`scalezero_adapters.TaskSpec` and a :class:`ModelConfig`
(see :func:`model_preset`). Training calls :meth:`WorldModel.encode` and :meth:`WorldModel.forward_sequence`;
search calls :meth:`WorldModel.initial_inference` and :meth:`WorldModel.recurrent_inference` with an
:class:`InferenceCache` from :meth:`WorldModel.new_cache`.
"""

from scalezero_agents.model.cache import InferenceCache, Prediction, SequenceOutput
from scalezero_agents.model.config import PRESET_NAMES, ModelConfig, model_preset
from scalezero_agents.model.heads import LOG_STD_MAX, LOG_STD_MIN, PAD_LOGIT
from scalezero_agents.model.layers import SimNorm
from scalezero_agents.model.support import decode, h, h_inv, support, two_hot
from scalezero_agents.model.text import tokenize
from scalezero_agents.model.world_model import WorldModel

__all__ = [
    "LOG_STD_MAX",
    "LOG_STD_MIN",
    "PAD_LOGIT",
    "PRESET_NAMES",
    "InferenceCache",
    "ModelConfig",
    "Prediction",
    "SequenceOutput",
    "SimNorm",
    "WorldModel",
    "decode",
    "h",
    "h_inv",
    "model_preset",
    "support",
    "tokenize",
    "two_hot",
]
