"""digits: handwritten digit recognition with TensorFlow and Keras.

The public Python API is two names, imported lazily so `import digits` stays light:

    digits.read(source, mode="auto", model=None) -> Reading   # a path, bytes, PIL image or array
    digits.Predictor(source)                                  # one model, loaded once: predict_proba
    digits.ImageError                                         # a ValueError: the source is not a readable picture

With no model named, `read` uses the latest run under runs/, else the model shipped in the package.

Reading needs no TensorFlow: models are run from their portable copies (ONNX, LiteRT). The
training half (config, data, models, train, evaluate, export, tune, ensemble) is used through
the `digits` command or imported module by module; `cli` is the only module that prints.
"""

import os

# TensorFlow's C++ start-up banners (oneDNN notices, CPU feature lines) are noise for users;
# level 2 keeps warnings-as-errors and real errors visible. Users can still override it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
__all__ = ["read", "Predictor", "ImageError", "__version__"]


def __getattr__(name):
    if name == "read":
        from .reading import read

        return read
    if name == "Predictor":
        from .predictor import Predictor

        return Predictor
    if name == "ImageError":
        from .images import ImageError

        return ImageError
    raise AttributeError(f"module 'digits' has no attribute {name!r}")
