"""Dynamic Parameter Scaling through Stable-Baselines3 or Tianshou on CartPole + Acrobot (one multi-task env).

    python examples/integrations_dps.py --framework sb3        # tiny preset, 2,000 env steps, one evaluation
    python examples/integrations_dps.py --framework tianshou --steps 4000 --min-stage0 200 --max-stage 100

Both glues drive the same :class:`~scalezero_agents.dps.DynamicParameterScaling` controller as the native
trainer's ``DPSCallback``: a stage switch (after ``--min-stage0`` learner updates, then after enough solved
tasks or ``--max-stage`` updates) adds one LoRA adapter to every attention projection and expert layer; a task
whose greedy evaluation reaches its target return (CartPole 475, Acrobot -100) stops training. The model is
saved and reloaded at the end: the adapters come back before the weights. Stage switches are logged.
Evaluations dominate the run time on a CPU (Acrobot's greedy episodes last up to 500 steps): by default there
is one, at the end (``--eval-freq``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
from scalezero_adapters import make_task, multitask_env_fns

from scalezero_agents.config import preset
from scalezero_agents.dps import DPSConfig


def run_sb3(tasks: list, dps_config: DPSConfig, args: argparse.Namespace, out: Path) -> None:
    from stable_baselines3.common.vec_env import DummyVecEnv

    from scalezero_agents.dps.sb3 import SB3DPSCallback
    from scalezero_agents.integrations.sb3 import ScaleZero

    env = DummyVecEnv(multitask_env_fns(tasks, envs_per_task=2))
    model = ScaleZero("MultiInputPolicy", env, preset=args.preset, learning_starts=200, replay_ratio=0.25,
                      seed=args.seed)
    dps = SB3DPSCallback(dps_config, eval_freq=args.eval_freq, n_eval_episodes=2, seed=args.seed)
    model.learn(args.steps, callback=dps)
    report(dps.controller, [s.name for s in model.task_specs], list(model.task_env_steps), dps.evaluations)
    model.save(out / "sb3_dps.zip")
    loaded = ScaleZero.load(out / "sb3_dps.zip", env=env)
    print(f"reloaded {out / 'sb3_dps.zip'}: stage {loaded.dps.stage}, {loaded.dps.num_parameters().total:,} "
          f"parameters, active tasks {loaded.active_tasks}")


def run_tianshou(tasks: list, dps_config: DPSConfig, args: argparse.Namespace, out: Path) -> None:
    from tianshou.data import Collector, VectorReplayBuffer
    from tianshou.env import DummyVectorEnv
    from tianshou.trainer import OffPolicyTrainerParams

    from scalezero_agents.dps.tianshou import TianshouDPSHook
    from scalezero_agents.integrations.tianshou import ScaleZeroAlgorithm, ScaleZeroPolicy, TemperatureSchedule
    from scalezero_agents.integrations.tianshou import prefill as tianshou_prefill

    envs = DummyVectorEnv(multitask_env_fns(tasks, envs_per_task=2))
    envs.seed(args.seed)

    def build() -> ScaleZeroAlgorithm:
        policy = ScaleZeroPolicy(tasks=tasks, config=preset(args.preset, "scalezero"), seed=args.seed,
                                 action_space=envs.action_space[0], observation_space=envs.observation_space[0])
        return ScaleZeroAlgorithm(policy=policy)

    algorithm = build()
    train = Collector(algorithm, envs, VectorReplayBuffer(50_000, envs.env_num))
    offset = tianshou_prefill(train, 200)
    dps = TianshouDPSHook(algorithm, dps_config, tasks=tasks, eval_freq=args.eval_freq, n_eval_episodes=2,
                          seed=args.seed, training_fn=TemperatureSchedule(algorithm.policy, args.steps, offset=offset))
    batch = len(tasks) * algorithm.policy.agent.config.learner.batch_size  # the native per-task batches
    algorithm.create_trainer(OffPolicyTrainerParams(
        training_collector=train, max_epochs=1, epoch_num_steps=args.steps, collection_step_num_env_steps=8,
        update_step_num_gradient_steps_per_sample=0.25 / len(tasks), batch_size=batch, training_fn=dps,
        verbose=False, show_progress=False)).run(reset_collectors=False)
    report(dps.controller, [s.name for s in algorithm.policy.agent.specs], None, dps.evaluations)
    torch.save(algorithm.state_dict(), out / "tianshou_dps.pt")
    fresh = build()
    fresh.load_state_dict(torch.load(out / "tianshou_dps.pt"))
    print(f"reloaded {out / 'tianshou_dps.pt'}: stage {fresh.dps.stage}, {fresh.dps.num_parameters().total:,} "
          f"parameters, active tasks {fresh.active_tasks}")
    dps.close()


def report(controller, names: list[str], env_steps: list[int] | None, evaluations: list[dict]) -> None:
    count = controller.num_parameters()
    print(f"\nstage {controller.stage} of {controller.config.num_stages - 1} after {controller.updates} updates; "
          f"{count.total:,} parameters ({count.adapters:,} in adapters, {count.trainable:,} trainable)")
    last = evaluations[-1]["returns"] if evaluations else {}
    for t, name in enumerate(names):
        state = "solved" if t in controller.solved else "training"
        steps = f"  stored env steps {env_steps[t]:6d}" if env_steps is not None else ""
        ret = f"{last[name]:8.1f}" if name in last else "       -"
        print(f"  {name:18s} last eval return {ret}{steps}  {state}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--framework", choices=["sb3", "tianshou"], default="sb3")
    parser.add_argument("--steps", type=int, default=2_000, help="env steps, summed over the 4 sub-envs")
    parser.add_argument("--preset", default="tiny", choices=["tiny", "small", "paper"])
    parser.add_argument("--stages", type=int, default=5, help="stage 0 + (stages - 1) LoRA stages")
    parser.add_argument("--min-stage0", type=int, default=60, help="learner updates before the first switch")
    parser.add_argument("--max-stage", type=int, default=30, help="learner updates after which a stage ends")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--eval-freq", type=int, default=2_000, help="env steps between evaluations (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/integrations_dps")
    args = parser.parse_args()
    log = logging.getLogger("scalezero_agents")  # stage switches and solved tasks are logged at INFO
    log.addHandler(logging.StreamHandler())
    log.setLevel(logging.INFO)
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    tasks = [make_task("gym/CartPole-v1"), make_task("gym/Acrobot-v1")]
    dps_config = DPSConfig(num_stages=args.stages, min_stage0_updates=args.min_stage0,
                           max_stage_updates=args.max_stage, rank=args.rank, alpha=float(args.rank))
    (run_sb3 if args.framework == "sb3" else run_tianshou)(tasks, dps_config, args, out)


if __name__ == "__main__":
    main()
