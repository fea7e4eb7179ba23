"""Train the classic MNIST MLP (or any registered model): `python train.py [digits train options]`.

A thin wrapper over `digits train`; with no arguments it trains the original model
(Flatten -> Dense 128 ReLU -> Dense 10 softmax, Adam, 5 epochs, batch 32) and prints the
test accuracy. `python train.py --help` lists the options.
"""

import sys

try:
    from digits.cli import main
except ImportError:  # running from a source checkout that is not pip-installed
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
    from digits.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
