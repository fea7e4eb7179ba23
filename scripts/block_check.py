"""How the constants of `images.smooth_blocks` separate blocky enlargements from other pictures, on validation digits.

    python scripts/block_check.py [--count 300]

Renders the last `count` MNIST training digits (the validation split's end; never the test set) as
`benchmarks/stress.py` draws its low-resolution condition (6 px tall, enlarged with the nearest or the bicubic
filter) and as `benchmarks/real_images.py` draws a photo, with seed 1, and prints per kind the block-edge lift
(BLOCK_LIFT) and, where it passes, the flatness inside the blocks (BLOCK_FLAT), and how many pictures fire.
"""

from __future__ import annotations

import argparse
import sys
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "src"))


def lift_and_flatness(gray: np.ndarray) -> tuple[float, float]:
    from digits import images

    (rows, row_lift), (cols, col_lift) = (images._block_grid(np.abs(np.diff(gray, axis=axis)).mean(1 - axis))
                                          for axis in (0, 1))
    if not rows or not cols:
        return 0.0, float("inf")
    index = images._blocks(gray.shape[0], rows)[:, None] * cols + images._blocks(gray.shape[1], cols)[None, :]
    means = np.bincount(index.ravel(), gray.ravel(), rows * cols) / np.maximum(np.bincount(index.ravel(), None,
                                                                                          rows * cols), 1)
    spread = float(np.abs(gray - np.median(gray)).mean())
    return min(row_lift, col_lift), float(np.abs(gray - means[index]).mean()) / max(spread, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    import real_images
    import stress
    from digits import data, images

    digits = data.load_dataset("mnist").x_train[-args.count:]
    found = {"nearest": [], "bicubic": [], "photo": []}
    for index, digit in enumerate(digits):
        filters = stress.CONDITIONS["lowres"]["filters"]
        kind = filters[int(np.random.default_rng([1, zlib.crc32(b"lowres"), index]).integers(len(filters)))]
        found[kind].append(lift_and_flatness(images.load_gray(stress.render_condition("lowres", digit, 1, index))))
        photo = real_images.render_digit(digit, np.random.default_rng([1, index]))
        found["photo"].append(lift_and_flatness(images.load_gray(photo)))
    for kind, values in found.items():
        values = np.array(values)
        lifted = values[values[:, 0] >= images.BLOCK_LIFT]
        fires = int((lifted[:, 1] <= images.BLOCK_FLAT).sum())
        flatness = f"{lifted[:, 1].min():.3f}..{lifted[:, 1].max():.3f}" if len(lifted) else "-"
        print(f"{kind:8} {len(values):4} pictures: lift {values[:, 0].min():.2f}..{values[:, 0].max():.2f}, "
              f"flatness where the lift passes {flatness}, redrawn {fires}")


if __name__ == "__main__":
    main()
