"""ScaleZero through Stable-Baselines3 on CartPole-v1: learn, evaluate, save, load.

    python examples/sb3_cartpole.py                       # preset small, 8 envs, up to 30k env steps
    python examples/sb3_cartpole.py --preset tiny --steps 3000

Everything here is plain SB3: ``make_vec_env``, ``EvalCallback`` (stopping at the 475 reward threshold),
``CheckpointCallback``, ``evaluate_policy``, ``save``/``load`` and ``save_replay_buffer``.
On a 2-core CPU, the small preset solves CartPole in roughly 10-25k env steps (10-30 minutes).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback, StopTrainingOnRewardThreshold
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from scalezero_agents.integrations.sb3 import ScaleZero


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--preset", default="small", choices=["tiny", "small", "paper"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/sb3_cartpole")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)

    env = make_vec_env("CartPole-v1", n_envs=8, seed=args.seed)
    eval_env = make_vec_env("CartPole-v1", n_envs=10, seed=args.seed + 1000)
    model = ScaleZero("MlpPolicy", env, preset=args.preset, learning_starts=1_000, replay_ratio=0.25,
                      seed=args.seed, verbose=1, tensorboard_log=str(out / "tb"))

    stop = StopTrainingOnRewardThreshold(reward_threshold=475, verbose=1)
    evaluation = EvalCallback(eval_env, n_eval_episodes=10, eval_freq=2_500 // env.num_envs,
                              callback_on_new_best=stop, best_model_save_path=str(out), verbose=1)
    checkpoints = CheckpointCallback(save_freq=10_000 // env.num_envs, save_path=str(out / "checkpoints"),
                                     name_prefix="scalezero", save_replay_buffer=True)
    model.learn(args.steps, callback=[evaluation, checkpoints], progress_bar=True)

    model.save(out / "final.zip")
    model.save_replay_buffer(out / "replay.pkl")
    loaded = ScaleZero.load(out / "final.zip", env=env)  # add env=... to continue training
    loaded.load_replay_buffer(out / "replay.pkl")
    mean, std = evaluate_policy(loaded, eval_env, n_eval_episodes=10, deterministic=True)
    print(f"after {model.num_timesteps} env steps and {model.agent.learner.updates} updates: "
          f"return {mean:.1f} +- {std:.1f}")


if __name__ == "__main__":
    main()
