"""Search-core benchmark: the C core and the NumPy reference, side by side, on one CPU core.

The model is :class:`~scalezero_agents.search.testing.HashModel`: child id = hash(parent id, action),
reward / value / logits are table look-ups at the id, so the tree dominates the cost. The time per
search covers everything a caller pays: root outputs, every simulation's fake-model call, and the
result. Root-simulations per second = B * N / (median seconds per search).

Usage::

    python benchmarks/mcts.py                 # full grid
    python benchmarks/mcts.py --quick         # B in {8, 256}, A = 18, N = 50 only
    python benchmarks/mcts.py --json out.json # also write the rows as JSON
    python benchmarks/mcts.py --rounds 5      # 5 interleaved passes; median and spread per case

The machine this was written on is shared and its speed drifts by up to +-50% over minutes, so
compare backends within one run and prefer ``--rounds`` for absolute numbers.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy is imported:
    os.environ.setdefault(_var, "1")  # idle BLAS threads spin and steal the benchmark's core

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402

import numpy as np  # noqa: E402

from scalezero_agents.search import ReferenceTree, SearchConfig, SearchTree, search  # noqa: E402
from scalezero_agents.search.testing import HashModel  # noqa: E402

BACKENDS = {"c": SearchTree, "numpy": ReferenceTree}


@dataclass(frozen=True)
class Row:
    mode: str
    B: int
    A: int
    N: int
    backend: str
    ms_per_search: float
    sims_per_s: float
    mean_max_depth: float
    d: int = 0
    sims_per_s_min: float = 0.0
    sims_per_s_max: float = 0.0


def grid(quick: bool) -> list[tuple[str, int, int, int, int]]:
    """(mode, B, A, N, d) cases; A is K in sampled mode."""
    batches = (8, 256) if quick else (1, 8, 64, 256)
    actions = (18,) if quick else (6, 18)
    sims = (50,) if quick else (16, 50)
    cases = [(mode, b, a, n, 0) for mode in ("puct", "gumbel") for b in batches for a in actions for n in sims]
    cases += [("sampled", b, 20, n, 2) for b in batches for n in sims]
    return cases


def bench(backend: str, mode: str, B: int, A: int, N: int, d: int, *, min_time: float, max_reps: int) -> Row:
    config = SearchConfig(mode=mode, num_simulations=N, num_samples=A)
    shape = {"action_dim": d} if mode == "sampled" else {"num_actions": A}
    tree = BACKENDS[backend](B, config, seed=0, **shape)
    model = HashModel(B, N, A, action_dim=d, seed=0)
    warmup = 3 if backend == "c" else 1
    times, depths, rep = [], [], 0
    while rep < warmup or (rep < warmup + max_reps and (sum(times) < min_time or len(times) < 3)):
        root = model.root(np.arange(B) + rep * B)
        start = time.perf_counter()
        out = search(tree, root, model, noise=True, temperature=1.0)
        elapsed = time.perf_counter() - start
        if rep >= warmup:
            times.append(elapsed)
            depths.append(float(out.max_depth.mean()))
        rep += 1
    median = statistics.median(times)
    return Row(mode, B, A, N, backend, median * 1e3, B * N / median, statistics.mean(depths), d)


def median_row(runs: list[Row]) -> Row:
    """One row per case: median time over the rounds, with the spread of root-sims/s."""
    ms = statistics.median(r.ms_per_search for r in runs)
    first = runs[0]
    return Row(first.mode, first.B, first.A, first.N, first.backend, ms, first.B * first.N / (ms / 1e3),
               statistics.mean(r.mean_max_depth for r in runs), first.d,
               min(r.sims_per_s for r in runs), max(r.sims_per_s for r in runs))


def pin_to_one_core() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return f"pinned to core {core}"


def markdown(rows: list[Row]) -> str:
    lines = [
        "| mode | B | A (K) | N | C ms/search | C root-sims/s (min-max) | NumPy ms/search | NumPy root-sims/s "
        "| C/NumPy | depth |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    by_key: dict[tuple, dict[str, Row]] = {}
    for row in rows:
        by_key.setdefault((row.mode, row.B, row.A, row.N, row.d), {})[row.backend] = row
    for (mode, B, A, N, d), pair in by_key.items():
        c, ref = pair.get("c"), pair.get("numpy")
        cells = [f"{mode}" + (f" d={d}" if d else ""), str(B), str(A), str(N)]
        for r in (c, ref):
            spread = f" ({r.sims_per_s_min / 1e3:,.0f}k-{r.sims_per_s_max / 1e3:,.0f}k)" if r and r is c else ""
            cells += [f"{r.ms_per_search:.2f}", f"{r.sims_per_s:,.0f}{spread}"] if r else ["-", "-"]
        cells.append(f"{c.sims_per_s / ref.sims_per_s:.0f}x" if c and ref else "-")
        cells.append(f"{c.mean_max_depth:.1f}" if c else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="B in {8, 256}, A = 18, N = 50 only")
    parser.add_argument("--json", metavar="PATH", help="write the rows to this JSON file")
    parser.add_argument("--backend", choices=["both", "c", "numpy"], default="both")
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds of timed searches per C case")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to one core")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved passes over the grid (median per case)")
    args = parser.parse_args(argv)

    pinned = "not pinned" if args.no_pin else pin_to_one_core()
    print(f"# search-core benchmark: {platform.processor() or platform.machine()}, Python "
          f"{platform.python_version()}, numpy {np.__version__}, {pinned}")
    backends = ["c", "numpy"] if args.backend == "both" else [args.backend]
    passes: dict[tuple, list[Row]] = {}
    for rnd in range(args.rounds):
        for mode, B, A, N, d in grid(args.quick):
            for backend in backends:
                min_time = args.min_time if backend == "c" else 0.0
                row = bench(backend, mode, B, A, N, d, min_time=min_time, max_reps=50 if backend == "c" else 3)
                passes.setdefault((mode, B, A, N, d, backend), []).append(row)
                print(f"[{rnd + 1}/{args.rounds}] {mode:8s} B={B:<4d} A={A:<3d} N={N:<3d} {backend:6s} "
                      f"{row.ms_per_search:9.2f} ms {row.sims_per_s:12,.0f} root-sims/s depth {row.mean_max_depth:.1f}",
                      flush=True)
    rows = [median_row(runs) for runs in passes.values()]
    print()
    print(markdown(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": platform.platform(), "pinned": pinned, "rows": [asdict(r) for r in rows]}, f,
                      indent=1)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
