#!/usr/bin/env python3
"""Reads a run folder's TensorBoard files with TensorBoard's own event accumulator and checks them
against the run's metrics.jsonl: every tag at every step, once, with its value.

Usage: tensorboard_check.py RUN_DIR [--reference-tags]
Exit 0 when everything matches; 1 with one line per problem otherwise.
"""
import argparse
import json
import math
import os
import sys

from tensorboard.backend.event_processing import event_accumulator

TRAIN_TAGS = {
    "label_acc": "train/label-acc",
    "unlabel_acc": "train/unlabel-acc",
    "label_loss": "train/label-loss",
    "unlabel_loss": "train/unlabel-loss",
    "interp_loss": "train/interp-loss",
    "lr": "train/lr",
    "weight": "train/consistency-weight",
    "data_wait_fraction": "train/data-wait",
    "data_time": "train/data-time",
    "batch_time": "train/step-time",
}
# What the reference's tensorboardX writer logs for a MetaSemi run with mix-up.
REFERENCE_TAGS = {"train/label-acc", "train/unlabel-acc", "train/label-loss",
                  "train/unlabel-loss", "train/interp-loss", "train/lr", "test/accuracy"}


def expected_scalars(run_dir):
    """{(tag, step): value} from metrics.jsonl; a resumed run's later row for a step wins."""
    want = {}
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            step = row["step"]
            if row["kind"] == "train":
                for key, tag in TRAIN_TAGS.items():
                    if isinstance(row.get(key), (int, float)):
                        want[(tag, step)] = float(row[key])
            elif row["kind"] == "eval":
                want[("test/accuracy", step)] = 100.0 - row["top1_error"]
                if isinstance(row.get("top5_error"), (int, float)):
                    want[("test/top5-accuracy", step)] = 100.0 - row["top5_error"]
    return want


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--reference-tags", action="store_true",
                        help="also require every tag the reference logs")
    args = parser.parse_args()

    files = [n for n in os.listdir(args.run_dir) if "tfevents" in n]
    if not files:
        print(f"{args.run_dir}: no event file")
        return 1
    # No purging of out-of-order steps: a duplicated step must show, not be hidden.
    acc = event_accumulator.EventAccumulator(args.run_dir,
                                             size_guidance={event_accumulator.SCALARS: 0},
                                             purge_orphaned_data=False)
    acc.Reload()
    got = {}
    problems = []
    for tag in acc.Tags()["scalars"]:
        for ev in acc.Scalars(tag):
            key = (tag, ev.step)
            if key in got:
                problems.append(f"{tag}: step {ev.step} appears more than once")
            got[key] = ev.value

    want = expected_scalars(args.run_dir)
    for key, value in sorted(want.items()):
        if key not in got:
            problems.append(f"{key[0]}: step {key[1]} missing")
            continue
        tol = 1e-6 * max(1.0, abs(value))  # float32 in the file
        v = got[key]
        if not (math.isclose(v, value, rel_tol=1e-6, abs_tol=tol)
                or (math.isnan(v) and math.isnan(value))):
            problems.append(f"{key[0]}: step {key[1]} is {v}, metrics.jsonl has {value}")
    for key in sorted(set(got) - set(want)):
        problems.append(f"{key[0]}: step {key[1]} is not in metrics.jsonl")
    if args.reference_tags:
        for tag in sorted(REFERENCE_TAGS - {t for t, _ in got}):
            problems.append(f"{tag}: missing (the reference logs it)")

    for p in problems:
        print(p)
    if problems:
        return 1
    tags = sorted({t for t, _ in got})
    print(f"ok: {len(got)} scalars, {len(tags)} tags, {len({s for _, s in got})} steps "
          f"in {len(files)} file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
