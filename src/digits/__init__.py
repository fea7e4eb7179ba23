"""digits: handwritten digit recognition with TensorFlow and Keras.

Stages, one module each: `config` (typed settings), `data` (verified datasets), `models`
(the registry), `train` (fit -> run directory), `evaluate` (metrics), `engine` (load a run
and predict), `plots` (figures) and `cli` (the `digits` command, the only place that prints).
"""

import os

# TensorFlow's C++ start-up banners (oneDNN notices, CPU feature lines) are noise for users;
# level 2 keeps warnings-as-errors and real errors visible. Users can still override it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
