"""Summarise a py-spy raw profile (collapsed stacks) written by `bench/run.py --profile`.

    python bench/profile_top.py bench/results/runs/<cell>.r0.pyspy.txt [--top 25]

Prints the functions with the most samples on-CPU by themselves (self) and including what they
call (inclusive), as a share of all samples, so "what dominates backend CPU" is one command.
"""
from __future__ import annotations

import argparse
import collections
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    self_time: collections.Counter = collections.Counter()
    inclusive: collections.Counter = collections.Counter()
    total = 0
    with open(args.path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            if not stack:
                continue
            n = int(count)
            frames = stack.split(";")
            total += n
            self_time[frames[-1]] += n
            for frame in set(frames):  # a recursive frame counts once per sample
                inclusive[frame] += n
    if not total:
        print("no samples")
        return 1
    for title, counter in (("self", self_time), ("inclusive", inclusive)):
        print(f"\n== {title} ({total} samples) ==")
        for frame, n in counter.most_common(args.top):
            print(f"{100 * n / total:5.1f}%  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
