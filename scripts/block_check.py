"""How the constants of `images.smooth_blocks` separate blocky enlargements from other pictures, on validation digits.

    python scripts/block_check.py [--count 300]

Renders the last `count` MNIST training digits (the validation split's end; never the test set) as
`benchmarks/stress.py` draws its low-resolution condition (6 px tall, enlarged with the nearest or the bicubic
filter) and as `benchmarks/real_images.py` draws a photo, with seed 1, and prints per kind the block-edge lift
(BLOCK_LIFT) and, where it passes, the flatness inside the blocks (BLOCK_FLAT), and how many `smooth_blocks`
redraws.
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
    """The picture's block-edge lift and, where the lift passes BLOCK_LIFT, its flatness (else inf), measured as
    `images.smooth_blocks` measures them."""
    from digits import images

    rows, cols, lift = images.block_lines(gray)
    return lift, images.block_source(gray, rows, cols)[1] if lift >= images.BLOCK_LIFT else float("inf")


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
        photo = real_images.render_digit(digit, np.random.default_rng([1, index]))
        for name, gray in ((kind, images.load_gray(stress.render_condition("lowres", digit, 1, index))),
                           ("photo", images.load_gray(photo))):
            found[name].append((*lift_and_flatness(gray), images.smooth_blocks(gray) is not gray))
    for kind, values in found.items():
        values = np.array(values)
        lifted = values[values[:, 0] >= images.BLOCK_LIFT]
        fires = int(values[:, 2].sum())
        flatness = f"{lifted[:, 1].min():.3f}..{lifted[:, 1].max():.3f}" if len(lifted) else "-"
        print(f"{kind:8} {len(values):4} pictures: lift {values[:, 0].min():.2f}..{values[:, 0].max():.2f}, "
              f"flatness where the lift passes {flatness}, redrawn {fires}")


if __name__ == "__main__":
    main()
