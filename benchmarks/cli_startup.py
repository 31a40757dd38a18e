"""Start-up time of the command line: `snn-deploy --help`, `models`, `datasets` and `train --help` (targets:
`datasets` and `train --help` under 0.6 s; none of them imports torch).

    scripts/run python benchmarks/cli_startup.py [--repeat 5]

Prints the median and the slowest of ``--repeat`` runs of each command (wall clock, a fresh process each time).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = (["--help"], ["models"], ["datasets"], ["train", "--help"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("snn-deploy"))
    for command in COMMANDS:
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            subprocess.run([exe, *command], check=True, capture_output=True)
            times.append(time.perf_counter() - start)
        print(f"snn-deploy {' '.join(command):<14} median {statistics.median(times):.2f} s, slowest {max(times):.2f} s "
              f"({args.repeat} runs)")


if __name__ == "__main__":
    main()
