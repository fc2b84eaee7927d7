"""Compares the pipeline's crops of real JPEG files with PIL's (python3-pil), the library
torchvision's RandomResizedCrop, Resize and CenterCrop use.

    pil_resize_check.py CASES.json

Each case names a JPEG file, what was done to it and the raw float32 C x H x W output of the
pipeline in 0..255 units:
  {"kind": "crop", "box": [x, y, w, h], "flip": bool, "out": S, "scaled": bool, ...}
      PIL: Image.open(file).convert("RGB").crop((x, y, x + w, y + h)).resize((S, S), BILINEAR)
  {"kind": "resize-centre", "size": [W, H], "offset": [left, top], "out": S, ...}
      PIL: .resize((W, H), BILINEAR).crop((left, top, left + S, top + S))
"scaled" cases were decoded downscaled in the DCT domain and get the wider tolerances.
Prints the differences (levels of 255) and exits 1 when one is over its tolerance.
"""
import json
import sys

import numpy as np
from PIL import Image

# Full-size decoding: the same libjpeg decode, the same filter; PIL rounds to 8 bits after each
# of its two passes, the pipeline keeps floats, so values differ by about one level at most.
FULL = {"max": 1.5, "mean": 0.35, "overall": 0.3}
# DCT-downscaled decoding (1/2, 1/4, 1/8) replaces part of the filter with libjpeg's scaled IDCT:
# close on photographs, further apart on high-frequency patterns (a checkerboard's crop differs
# by about 6 levels on average).
SCALED = {"max": 80.0, "mean": 8.0, "overall": 1.0}


def pil_output(case):
    with Image.open(case["file"]) as im:
        im = im.convert("RGB")
        s = case["out"]
        if case["kind"] == "crop":
            x, y, w, h = case["box"]
            out = im.crop((x, y, x + w, y + h)).resize((s, s), Image.BILINEAR)
        else:
            (nw, nh), (left, top) = case["size"], case["offset"]
            out = im.resize((nw, nh), Image.BILINEAR).crop((left, top, left + s, top + s))
        if case["flip"]:
            out = out.transpose(Image.FLIP_LEFT_RIGHT)
        return np.asarray(out, dtype=np.float64).transpose(2, 0, 1)


def main():
    cases = json.load(open(sys.argv[1]))
    failures = []
    stats = {False: [], True: []}
    for i, case in enumerate(cases):
        s = case["out"]
        ours = np.fromfile(case["output"], dtype=np.float32).astype(np.float64)
        if ours.size != 3 * s * s:
            failures.append(f"case {i}: {ours.size} values, expected {3 * s * s}")
            continue
        ours = ours.reshape(3, s, s)
        diff = np.abs(ours - pil_output(case))
        tol = SCALED if case["scaled"] else FULL
        stats[case["scaled"]].append((diff.max(), diff.mean()))
        if diff.max() > tol["max"] or diff.mean() > tol["mean"]:
            failures.append(f"case {i} ({case['file']}, {case['kind']}, scaled {case['scaled']}): "
                            f"max {diff.max():.3f}, mean {diff.mean():.4f} levels "
                            f"(tolerance {tol['max']}, {tol['mean']})")
    for scaled, rows in stats.items():
        if rows:
            m = np.array(rows)
            tol = SCALED if scaled else FULL
            if m[:, 1].mean() > tol["overall"]:
                failures.append(f"{'downscaled' if scaled else 'full-size'}: mean difference "
                                f"{m[:, 1].mean():.4f} over all crops (tolerance {tol['overall']})")
            print(f"{'downscaled' if scaled else 'full-size'} decode: {len(rows)} crops, "
                  f"largest difference {m[:, 0].max():.3f} levels, mean {m[:, 1].mean():.4f} "
                  f"(worst crop mean {m[:, 1].max():.4f})")
    for f in failures:
        print("FAIL", f)
    if not cases:
        print("FAIL no cases")
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
