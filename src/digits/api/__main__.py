"""`python -m digits.api [RUN] [--port ...]`: the same as `digits serve`."""

import sys

from ..cli import main

sys.exit(main(["serve", *sys.argv[1:]]))
