"""Small runs for the command-line tests: one configuration, cheap to compile."""

import json
import pathlib

from memrl_eqx.cli import main


# PPO with a GRU on RepeatPreviousEasy: 4 envs x 128 steps = 512 steps an update,
# logged after every update and checkpointed every second one.
SMALL = ["--env", "popgym::RepeatPreviousEasy", "--torso", "gru"] + [
    "--features",
    "8",
    "--num-envs",
    "4",
    "--log-every",
    "512",
    "--checkpoint-every",
    "1024",
    "--eval-episodes",
    "2",
]


def train(run: pathlib.Path, total_steps: int, *extra: str) -> int:
    return main(
        ["train", *SMALL, "--total-steps", str(total_steps), "--run-dir", str(run)]
        + list(extra)
    )


def rows(run: pathlib.Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]
