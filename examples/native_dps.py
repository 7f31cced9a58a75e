"""Dynamic Parameter Scaling with the native trainer on the ``classic`` suite (CartPole, Acrobot, DMC
cartpole-balance and cartpole-swingup): one MoE model, LoRA adapters added stage by stage.

    python examples/native_dps.py                      # tiny preset, 1,000 env steps per task (minutes)
    python examples/native_dps.py --steps 20000 --preset small --min-stage0 2000 --max-stage 1000

Stage 0 trains the whole model. After ``--min-stage0`` learner updates, each stage switch adds a rank
``--rank`` adapter to every attention projection and expert layer, freezes the transformer's base weights
and the earlier adapters, and trains the new adapter, the earlier adapters' scales, the encoders and the
heads. A stage ends when enough tasks reach their target return (they then stop training) or after
``--max-stage`` updates. The run is evaluated once at the end (Acrobot and DMC episodes are long), then
saved and reloaded to show that the adapters come back. Stage switches are logged.
The paper's settings are ``DPSConfig.paper("dmc")`` / ``DPSConfig.paper("atari")`` (GPU-sized runs).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
from scalezero_adapters import make_suite

from scalezero_agents import MultiTaskTrainer, preset
from scalezero_agents.dps import DPSCallback, DPSConfig
from scalezero_agents.training import TrainerConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1_000, help="env steps per task")
    parser.add_argument("--preset", default="tiny", choices=["tiny", "small", "paper"])
    parser.add_argument("--stages", type=int, default=5, help="stage 0 + (stages - 1) LoRA stages")
    parser.add_argument("--min-stage0", type=int, default=60, help="learner updates before the first switch")
    parser.add_argument("--max-stage", type=int, default=30, help="learner updates after which a stage ends")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--alpha", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/native_dps")
    args = parser.parse_args()
    log = logging.getLogger("scalezero_agents")  # stage switches and solved tasks are logged at INFO
    log.addHandler(logging.StreamHandler())
    log.setLevel(logging.INFO)
    log.propagate = False  # dm_control's absl logging owns the root logger
    torch.set_num_threads(1)

    dps_config = DPSConfig(num_stages=args.stages, min_stage0_updates=args.min_stage0,
                           max_stage_updates=args.max_stage, rank=args.rank, alpha=args.alpha)
    dps = DPSCallback(dps_config)
    tasks = make_suite("classic")
    trainer = MultiTaskTrainer(
        tasks, config=preset(args.preset, "scalezero", eval_simulations=8), seed=args.seed, log_dir=args.out,
        trainer=TrainerConfig(num_envs=4, replay_ratio=0.25, learning_starts=300, eval_interval=0,
                              eval_episodes=2),
        callbacks=[dps])
    trainer.train(args.steps)

    controller = dps.controller
    count = controller.num_parameters()
    print(f"\nstage {controller.stage} of {dps_config.num_stages - 1} after {trainer.updates} updates; "
          f"{count.total:,} parameters ({count.adapters:,} in adapters, {count.trainable:,} trainable)")
    last = trainer.history[-1]["tasks"]
    for t, spec in enumerate(trainer.specs):
        state = "solved" if t in controller.solved else "training"
        print(f"  {spec.name:24s} return {last[spec.name]['mean']:8.1f}  target {spec.target_return:6.0f}  "
              f"env steps {int(trainer.env_steps[t]):6d}  {state}")
    for name, scales in controller.scales().items():
        print(f"  {name}: mean scale {sum(scales) / len(scales):.4f} over {len(scales)} layers")

    path = trainer.save(Path(args.out) / "dps.pt")
    restored = DPSCallback(dps_config)
    MultiTaskTrainer.load(path, tasks, callbacks=[restored], progress_bar=False)
    print(f"reloaded {path}: stage {restored.controller.stage}, "
          f"{restored.controller.num_parameters().total:,} parameters")


if __name__ == "__main__":
    main()
