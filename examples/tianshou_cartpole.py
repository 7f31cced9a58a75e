"""ScaleZero / UniZero on CartPole-v1 with Tianshou 2.0.1's own Collector, buffer and OffPolicyTrainer.

    python examples/tianshou_cartpole.py                      # preset "small", 30k env steps, stops at 475
    python examples/tianshou_cartpole.py --preset tiny --steps 3000 --epoch-steps 1000   # a quick look

The policy searches the agent's world model (greedy outside training steps, root noise + visit-count
temperature inside); the algorithm trains it from the trainer's ``VectorReplayBuffer`` (windows unrolled with
``buffer.next``), 0.25 updates per env step as in the native trainer.
"""

from __future__ import annotations

import argparse

from scalezero_adapters import make_task
from tianshou.data import Collector, VectorReplayBuffer
from tianshou.env import DummyVectorEnv
from tianshou.trainer import OffPolicyTrainerParams

from scalezero_agents.config import preset
from scalezero_agents.integrations.tianshou import (
    ScaleZeroAlgorithm,
    ScaleZeroPolicy,
    TemperatureSchedule,
    prefill,
    seed_buffer,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--steps", type=int, default=30_000, help="env steps (the pre-fill included)")
    parser.add_argument("--epoch-steps", type=int, default=2_500, help="env steps between evaluations")
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    task = make_task("gym/CartPole-v1")
    train_envs = DummyVectorEnv([lambda: task.factory("train") for _ in range(args.envs)])
    test_envs = DummyVectorEnv([lambda: task.factory("eval") for _ in range(10)])
    train_envs.seed(args.seed)
    test_envs.seed(args.seed + 10_000)
    config = preset(args.preset)
    policy = ScaleZeroPolicy(tasks=[task], config=config, seed=args.seed, action_space=train_envs.action_space[0],
                             observation_space=train_envs.observation_space[0])
    algorithm = ScaleZeroAlgorithm(policy=policy)
    buffer = VectorReplayBuffer(config.replay.capacity, args.envs)
    seed_buffer(buffer, args.seed)
    train = Collector(algorithm, train_envs, buffer)
    start = prefill(train, 1_000)  # the native learning_starts, by whole episodes
    print(f"pre-filled {start} env steps")
    result = algorithm.run_training(OffPolicyTrainerParams(
        training_collector=train,
        test_collector=Collector(algorithm, test_envs),
        max_epochs=max(1, (args.steps - start) // args.epoch_steps),
        epoch_num_steps=args.epoch_steps,
        collection_step_num_env_steps=args.envs,
        update_step_num_gradient_steps_per_sample=0.25,
        batch_size=config.learner.batch_size,
        test_step_num_episodes=10,
        training_fn=TemperatureSchedule(policy, args.steps, offset=start),
        stop_fn=lambda mean_return: mean_return >= 475,
    ))
    print(result)


if __name__ == "__main__":
    main()
