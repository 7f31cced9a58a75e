"""``python -m scalezero_agents.demo``: a short multi-task training run, and a tour of the search core.

The default is the main job in miniature: one ScaleZero model (MoE, ``tiny`` preset) trained on the
``classic`` suite — CartPole and Acrobot (discrete) with DMC cartpole-balance and cartpole-swingup
(continuous) at once — for a few thousand steps per task, then evaluated. It runs ``scalezero train`` (a
progress bar, then a summary table) and writes ``runs/demo/checkpoint.pt`` and ``runs/demo/summary.json``
(an earlier demo run there is replaced). ``--search`` shows the three search modes of the C core on problems
with a known answer and its speed against the NumPy reference.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from rich.console import Console
from rich.progress import track
from rich.table import Table

from scalezero_agents.search import (
    RecurrentOutput,
    ReferenceTree,
    RootOutput,
    SearchConfig,
    SearchTree,
    search,
)
from scalezero_agents.search.testing import HashModel


def bandit_demo(console: Console) -> None:
    payoff = np.array([0.1, 0.5, 0.9, 0.3, 0.2])
    table = Table(title="Known 5-arm bandit (best arm: 2)")
    for col in ("mode", "visit counts", "policy target", "chosen"):
        table.add_column(col)

    def fn(sel):
        reward = np.where(sel.parent == 0, payoff[sel.action], 0.0)
        return RecurrentOutput(reward=reward, value=np.zeros(1), prior_logits=np.zeros((1, 5)))

    for mode in ("puct", "gumbel"):
        tree = SearchTree(1, SearchConfig(mode=mode, num_simulations=32), num_actions=5, seed=0)
        out = search(tree, RootOutput(np.zeros(1), np.zeros((1, 5))), fn, noise=True)
        table.add_row(mode, str(out.visit_counts[0].tolist()), np.array2string(out.policy[0], precision=2),
                      str(out.action[0]))

    def cont(sel):
        reward = np.where(sel.parent == 0, -((sel.action_vec[:, 0] - 0.3) ** 2), 0.0)
        return RecurrentOutput(reward=reward, value=np.zeros(1), mu=np.zeros((1, 1)), log_std=np.zeros((1, 1)))

    tree = SearchTree(1, SearchConfig(mode="sampled", num_simulations=50), action_dim=1, seed=0)
    out = search(tree, RootOutput(np.zeros(1), mu=np.zeros((1, 1)), log_std=np.zeros((1, 1))), cont)
    table.add_row("sampled (K=20)", f"max {out.visit_counts[0].max()} of 50", "-",
                  f"a = {out.action_vec[0, 0]:+.3f} (optimum +0.300)")
    console.print(table)


def speed_demo(console: Console, batch: int = 64, sims: int = 50, actions: int = 18) -> None:
    rows = {}
    for name, cls, reps in (("C core", SearchTree, 20), ("NumPy reference", ReferenceTree, 2)):
        tree = cls(batch, SearchConfig(num_simulations=sims), num_actions=actions, seed=0)
        model = HashModel(batch, sims, actions)
        times = []
        for rep in track(range(reps + 1), description=f"{name:16s}", console=console, transient=True):
            root = model.root(np.arange(batch) + rep * batch)
            start = time.perf_counter()
            search(tree, root, model, noise=True)
            if rep:
                times.append(time.perf_counter() - start)
        rows[name] = float(np.median(times))
    table = Table(title=f"Search speed, B={batch} roots x {sims} simulations, A={actions} (fake model included)")
    for col in ("backend", "ms / search", "root-simulations / s"):
        table.add_column(col, justify="right")
    for name, t in rows.items():
        table.add_row(name, f"{t * 1e3:.2f}", f"{batch * sims / t:,.0f}")
    console.print(table)
    console.print(f"C core speed-up: {rows['NumPy reference'] / rows['C core']:.0f}x (identical trees)")


DEMO_OUT = "runs/demo"


def demo_train_args(steps: int, seed: int, out: str) -> list[str]:
    """The ``scalezero train`` arguments of the training demo (the classic suite, tiny preset, MoE)."""
    return ["train", "--suite", "classic", "--preset", "tiny", "--variant", "scalezero", "--steps", str(steps),
            "--seed", str(seed), "--out", out, "--overwrite", "--num-envs", "4", "--eval-interval", "0",
            "--eval-episodes", "3", "--set", "trainer.learning_starts=500"]


def training_demo(console: Console, steps: int, seed: int, out: str = DEMO_OUT) -> int:
    """Train through the ``scalezero train`` code path; returns its exit status."""
    from scalezero_agents.cli import main as cli_main

    args = demo_train_args(steps, seed, out)
    console.print(
        f"One ScaleZero model (Mixture-of-Experts, tiny preset) learns 4 tasks at once for {steps:,} env steps "
        "each:\nCartPole-v1 and Acrobot-v1 (discrete actions), DMC cartpole-balance and cartpole-swingup "
        "(continuous).\nEvery action comes from a batched MCTS search over the learned world model. This is "
        f"`scalezero {' '.join(args)}`;\nabout 5 minutes on one free CPU core, far too short to solve the tasks.",
        markup=False, highlight=False)
    code = cli_main(args)
    if code == 0:
        console.print(
            f"\nNext:\n  scalezero eval {out} --episodes 10            # greedy returns per task (--video DIR)"
            f"\n  scalezero train --out {out} --resume --steps {2 * steps}   # continue this run"
            "\n  scalezero train --suite classic --preset small --steps 50000   # a real run"
            "\n  python -m scalezero_agents.demo --search        # the search core's tour",
            markup=False, highlight=False)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit status."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--search", action="store_true", help="the search-core tour instead of training")
    parser.add_argument("--steps", type=int, default=2_000, help="env steps per task (training demo)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=DEMO_OUT, help=f"output directory, replaced if it exists (default {DEMO_OUT})")
    args = parser.parse_args(argv)
    from scalezero_agents.cli import make_console

    console = make_console()
    if args.search:
        console.rule("scalezero-agents: search demo")
        bandit_demo(console)
        speed_demo(console)
        return 0
    console.rule("scalezero-agents: multi-task training demo")
    return training_demo(console, args.steps, args.seed, args.out)


if __name__ == "__main__":
    sys.exit(main())
