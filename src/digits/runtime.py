"""TensorFlow imported once, quietly: its start-up banners go, its real errors stay.

TensorFlow 2.21 logs its oneDNN notice through absl before absl is initialised, which
ignores `TF_CPP_MIN_LOG_LEVEL`, and the TFLite converter and interpreter print status lines
from C++. `quiet()` runs a block with the process's stdout and stderr (file descriptors 1
and 2) captured; afterwards every captured line that is not a known informational banner is
written back to stderr, so a real error (a missing library, a failed conversion) is never
hidden. Importing this module imports nothing heavy: the reading half uses `quiet()` around
the LiteRT interpreter; every training module calls `load()` before it imports Keras.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # C++ INFO and WARNING lines off, errors on
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

BANNERS = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called|"
    r"^I\d{4} .*\] oneDNN custom operations are on|"
    r"^I\d{4} .*cpu_feature_guard|"
    r"^INFO: Created TensorFlow Lite XNNPACK delegate|"
    r"^fully_quantize: \d|"
    r"^W\d{4} .*(tf_tfl_flatbuffer_helpers|flatbuffer_export|Please consider providing the trackable_obj)"
)
CONTINUATION = re.compile(r"^(?![IWEF]\d{4} |WARNING|INFO|ERROR)")  # lines that continue a log record


def _replay(text: str) -> None:
    """Write captured lines back to stderr, minus banners and the lines that continue them."""
    skipping = False
    for line in text.splitlines():
        if BANNERS.search(line):
            skipping = True
            continue
        if skipping and CONTINUATION.match(line) and line.strip():
            continue
        skipping = False
        if line.strip():
            print(line, file=sys.stderr)


@contextlib.contextmanager
def quiet():
    """Capture fds 1 and 2 for the block; replay everything but known banners to stderr."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with tempfile.TemporaryFile(mode="w+b") as captured:
        for fd in saved:
            os.dup2(captured.fileno(), fd)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, original in saved.items():
                os.dup2(original, fd)
                os.close(original)
            captured.seek(0)
            _replay(captured.read().decode(errors="replace"))


def load():
    """Import TensorFlow (once, quietly) and return it; call before importing Keras."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with quiet():
        import tensorflow
    return tensorflow
