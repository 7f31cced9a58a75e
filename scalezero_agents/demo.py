"""``python -m scalezero_agents.demo``: a short multi-task training run, and a tour of the search core.

The default is the main job in miniature: one ScaleZero model (MoE, ``tiny`` preset) trained on the
``classic`` suite — CartPole and Acrobot (discrete) with DMC cartpole-balance and cartpole-swingup
(continuous) at once — for a few thousand steps per task, then evaluated. ``--search`` shows the three
search modes of the C core on problems with a known answer and its speed against the NumPy reference.
"""

from __future__ import annotations

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


def training_demo(console: Console, steps: int, seed: int) -> None:
    import torch
    from scalezero_adapters import make_suite

    from scalezero_agents.config import preset
    from scalezero_agents.training import MultiTaskTrainer, TrainerConfig

    torch.set_num_threads(1)
    tasks = make_suite("classic")
    trainer = MultiTaskTrainer(
        tasks, config=preset("tiny", "scalezero"), seed=seed,
        trainer=TrainerConfig(num_envs=4, learning_starts=500, eval_interval=0, eval_episodes=3))
    console.print(f"Training one model on {len(tasks)} tasks for {steps} env steps each (tiny preset, MoE)...")
    start = time.perf_counter()
    history = trainer.train(steps)
    elapsed = time.perf_counter() - start
    table = Table(title=f"classic suite after {steps} steps per task ({trainer.updates} updates, {elapsed:.0f} s)")
    for col in ("task", "actions", "random", "eval return (3 episodes)", "target"):
        table.add_column(col, justify="right")
    for spec in trainer.specs:
        res = history[-1]["tasks"][spec.name]
        kind = f"{spec.num_actions} discrete" if spec.is_discrete else f"{spec.action_dim}-d continuous"
        table.add_row(spec.name, kind, f"{spec.random_score:.1f}", f"{res['mean']:.1f}", f"{spec.target_return:.0f}")
    console.print(table)
    console.print("Full runs: `python benchmarks/learning.py multi --suite classic` (see README).")


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--search", action="store_true", help="the search-core tour instead of training")
    parser.add_argument("--steps", type=int, default=2_000, help="env steps per task (training demo)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    console = Console()
    if args.search:
        console.rule("scalezero-agents: search demo")
        bandit_demo(console)
        speed_demo(console)
        return
    console.rule("scalezero-agents: multi-task training demo")
    training_demo(console, args.steps, args.seed)


if __name__ == "__main__":
    main()
