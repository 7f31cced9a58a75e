"""Batched MCTS: a C99 core built with cffi, its NumPy reference, and the search driver.

Modes: MuZero pUCT (discrete, legal masks, Dirichlet noise), Sampled MuZero (continuous, K sampled
actions per node) and Gumbel MuZero (Gumbel-top-k + sequential halving at the root).
"""

from scalezero_agents.search.config import SearchConfig
from scalezero_agents.search.driver import RecurrentFn, RecurrentOutput, RootOutput, search
from scalezero_agents.search.reference import ReferenceTree
from scalezero_agents.search.tree import (
    ILLEGAL,
    ROOT,
    UNVISITED,
    SearchInputError,
    SearchOutput,
    SearchStateError,
    SearchTree,
    Selection,
)

__all__ = [
    "ILLEGAL",
    "ROOT",
    "UNVISITED",
    "RecurrentFn",
    "RecurrentOutput",
    "ReferenceTree",
    "RootOutput",
    "SearchConfig",
    "SearchInputError",
    "SearchOutput",
    "SearchStateError",
    "SearchTree",
    "Selection",
    "search",
]
