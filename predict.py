"""Predict test images with the latest trained model and show them: `python predict.py [options]`.

A thin wrapper over `digits predict`: it loads the newest run under runs/, predicts a grid
of test images and shows image, predicted digit, confidence and true digit, with mistakes
marked. Without a display it saves the figure to a PNG and says where.
"""

import sys

try:
    from digits.cli import main
except ImportError:  # running from a source checkout that is not pip-installed
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
    from digits.cli import main

if __name__ == "__main__":
    sys.exit(main(["predict", *sys.argv[1:]]))
