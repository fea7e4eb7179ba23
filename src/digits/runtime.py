"""Import TensorFlow once, quietly: its start-up banners go, its real errors stay.

TensorFlow 2.21 logs its oneDNN notice through absl before absl is initialised, which
ignores `TF_CPP_MIN_LOG_LEVEL`. So the import runs with the process's stderr captured into
a temporary file; afterwards, every captured line that is not a known informational banner
is written back to stderr, so a real error (a missing library, a bad CPU) is never hidden.
Every module that needs Keras or TensorFlow imports this module first.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # C++ INFO and WARNING lines off, errors on
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

BANNERS = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called|"
    r"^I\d{4} .*\] oneDNN custom operations are on|"
    r"^I\d{4} .*cpu_feature_guard"
)


def _quiet_import():
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines():
                if line.strip() and not BANNERS.search(line):
                    print(line, file=sys.stderr)
    return tensorflow


tensorflow = _quiet_import()
