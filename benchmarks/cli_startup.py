"""How fast `memrl-eqx` answers before any training: `--help`, `train --help`
and a mistyped config field, each a fresh process (median of repeats), and, for
comparison, `import jax` alone.

    python benchmarks/cli_startup.py [--repeats 7]
"""

import argparse
import statistics
import subprocess
import sys
import time


CASES = {
    "memrl-eqx --help": ["-m", "memrl_eqx", "--help"],
    "memrl-eqx train --help": ["-m", "memrl_eqx", "train", "--help"],
    "memrl-eqx train --set gama=0.9": ["-m", "memrl_eqx", "train", "--set", "gama=0.9"],
    "python -c 'import jax'": ["-c", "import jax"],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    for label, argv in CASES.items():
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, *argv], capture_output=True)
            seconds.append(time.perf_counter() - start)
        print(f"{label:36s} median {statistics.median(seconds):.3f} s")


if __name__ == "__main__":
    main()
