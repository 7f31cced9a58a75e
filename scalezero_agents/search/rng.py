"""The search core's random numbers, in Python: the oracle's twin of the C generator.

One splitmix64 stream per root. ``uniform``, ``normal`` (Marsaglia polar) and ``gamma``
(Marsaglia-Tsang) perform the same floating-point operations in the same order as
``csrc/mcts.c``, so the C core and the NumPy reference draw identical numbers.
"""

from __future__ import annotations

import math

import numpy as np

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def _mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def root_seeds(seed: int, batch: int) -> np.ndarray:
    """Initial splitmix64 states of the ``batch`` per-root streams derived from ``seed``."""
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    base = int(seed) & MASK64
    return np.array([_mix((base + (b + 1) * GOLDEN) & MASK64) for b in range(batch)], dtype=np.uint64)


class Stream:
    """One root's generator (state is a Python int, advanced in place)."""

    def __init__(self, state: int) -> None:
        self.state = int(state) & MASK64

    def next(self) -> int:
        self.state = (self.state + GOLDEN) & MASK64
        return _mix(self.state)

    def uniform(self) -> float:
        """Uniform on the open interval (0, 1)."""
        return (float(self.next() >> 12) + 0.5) * (1.0 / 4503599627370496.0)

    def normal(self) -> float:
        while True:
            u = 2.0 * self.uniform() - 1.0
            v = 2.0 * self.uniform() - 1.0
            q = u * u + v * v
            if not (q >= 1.0 or q == 0.0):
                return u * math.sqrt(-2.0 * math.log(q) / q)

    def gamma(self, alpha: float) -> float:
        if alpha < 1.0:
            g = self.gamma(alpha + 1.0)
            return g * math.pow(self.uniform(), 1.0 / alpha)
        d = alpha - 1.0 / 3.0
        c = 1.0 / math.sqrt(9.0 * d)
        while True:
            while True:
                x = self.normal()
                v = 1.0 + c * x
                if not v <= 0.0:
                    break
            v = v * v * v
            u = self.uniform()
            x2 = x * x
            if u < 1.0 - 0.0331 * x2 * x2:
                return d * v
            if math.log(u) < 0.5 * x2 + d * (1.0 - v + math.log(v)):
                return d * v
