"""How digits.synthetic.SCRIPTS was chosen: letters of other scripts for Outlier Exposure, less look-alikes.

For each script below, every letter that the training fonts (matplotlib's) really draw is rendered 16 times
as synthetic.pictures draws letters, prepared as the reading path prepares a picture, and read by a model (the
shipped reader by default). A letter that the model accepts as a digit (calibrated top probability at or over
its stored threshold) in half or more of its renders is a look-alike and left out (Hebrew vav reads as 1,
Armenian oh as 0, ...). Greek and Cyrillic are never candidates: benchmarks/rejection.py keeps them unseen.
Prints the SCRIPTS table to paste into src/digits/synthetic.py, and what was left out.
Usage: python scripts/choose_script_glyphs.py [--run RUN] [--renders 16]
"""

from __future__ import annotations

import argparse

import numpy as np

RANGES = {"Armenian": (0x0531, 0x0587), "Hebrew": (0x05D0, 0x05EA), "Arabic": (0x0621, 0x064A),
          "Georgian": (0x10D0, 0x10FA), "Tifinagh": (0x2D30, 0x2D67), "Lao": (0x0E81, 0x0EAE),
          "Canadian": (0x1401, 0x1469), "Ogham": (0x1681, 0x169A), "N'Ko": (0x07CA, 0x07EA)}
LOOKALIKE = 0.5  # accepted as a digit in at least this share of renders: left out
NOT_LETTERS = "\u0640"  # Arabic tatweel: a stretching line, not a letter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="run directory or model file (default: the shipped model)")
    parser.add_argument("--renders", type=int, default=16, help="pictures per letter (default: 16)")
    args = parser.parse_args()
    from digits import images, runs, synthetic
    from digits.predictor import Predictor

    predictor = Predictor(runs.resolve(args.run))
    fonts = tuple(map(str, synthetic.training_fonts()))
    print("SCRIPTS = {")
    for script, (low, high) in RANGES.items():
        letters = "".join(chr(code) for code in range(low, high + 1) if chr(code).isalpha() and chr(code) not in NOT_LETTERS)
        kept, left_out = [], []
        for letter, _ in synthetic._glyphs(letters, fonts):
            prepared = [images.prepare(picture)
                        for picture in synthetic.pictures("letters", args.renders, 77, letters=letter)]
            sure = predictor.predict_scores(np.stack([item.image for item in prepared]))[1]
            accepted = float(np.mean((sure >= predictor.reject_below) & [item.ink_found for item in prepared]))
            (left_out if accepted >= LOOKALIKE else kept).append((letter, accepted))
        if kept:
            print(f'    "{script}": "{"".join(letter for letter, _ in kept)}",')
        print(f"    # {script}: left out {' '.join(f'{letter} {share:.2f}' for letter, share in left_out) or 'none'}")
    print("}")


if __name__ == "__main__":
    main()
