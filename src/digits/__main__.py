"""`python -m digits COMMAND ...`: the same as the `digits` command (e.g. where scripts are not on PATH)."""

import sys

from .cli import main

sys.exit(main())
