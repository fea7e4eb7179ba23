"""Inference backends: one small class per runtime, each loading one model file and predicting a batch.

    onnx    ONNX Runtime on `model.onnx` (the portable copy every run holds; the shipped default)
    litert  LiteRT (TensorFlow Lite) on `model.tflite`, float32 or full-integer int8
    keras   Keras on `model.keras`; the only backend that imports TensorFlow, and only when asked

A backend is called with (N, 28, 28, 1) float32 in 0..1 and returns (N, classes) float32;
`input_shape` and `num_classes` describe the file. Where the file gives the logits under its
final softmax (`gives_logits`: an ONNX file with a "logits" output, as every run writes since
the energy score, and any Keras model ending in a softmax Dense), `logits(batch)` returns them:
the not-a-digit energy score needs them (`digits.calibration`). Runtimes are imported when a backend is
loaded, never before, so importing this module costs nothing. A missing runtime, a damaged
or foreign file is a `ValueError` naming the file and the fix. `in_batches` is the one loop
that feeds a long array to any model in slices.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

BACKENDS = ("onnx", "litert", "keras")  # in order of preference when nothing else decides
SUFFIXES = {".keras": "keras", ".onnx": "onnx", ".tflite": "litert"}
RUNTIMES = {"onnx": "onnxruntime", "litert": "ai_edge_litert", "keras": "tensorflow"}  # backend -> its module
# Every optional dependency (top-level module) -> (what it is, the extra that installs it; None: the base
# install has it). pyproject.toml's [project.optional-dependencies] is the other side of this table; the CLI
# names the extra from it when an import fails, and `require` when a backend's runtime is missing.
INSTALLS = {"tensorflow": ("TensorFlow", "cpu"), "keras": ("Keras", "cpu"), "matplotlib": ("matplotlib", "cpu"),
            "tf2onnx": ("tf2onnx", "onnx"), "onnx": ("onnx", "onnx"), "onnxruntime": ("ONNX Runtime", None),
            "ai_edge_litert": ("ai-edge-litert", "litert"), "optuna": ("Optuna", "tune"),
            "psycopg": ("psycopg", "tune"), "sqlalchemy": ("SQLAlchemy", "tune"), "fastapi": ("FastAPI", "api"),
            "uvicorn": ("uvicorn", "api"), "pydantic_settings": ("pydantic-settings", "api"),
            "orjson": ("orjson", "api"), "prometheus_client": ("prometheus-client", "api"),
            "multipart": ("python-multipart", "api")}


def install_hint(module: str) -> str:
    """What to pip install for `module`: 'digits[EXTRA]', or the module itself where the base install has it."""
    extra = INSTALLS[module][1]
    return module if extra is None else f"digits[{extra}]"


def installed(name: str) -> bool:
    """Is the runtime behind backend `name` importable (without importing it)?"""
    try:
        return importlib.util.find_spec(RUNTIMES[name]) is not None
    except (ImportError, ValueError):  # a module blocked or half-removed (None in sys.modules, no __spec__)
        return False


def require(name: str) -> None:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend '{name}'; known backends: {', '.join(BACKENDS)}")
    if not installed(name):
        module = RUNTIMES[name]
        raise ValueError(f"backend '{name}' needs the {module} package: pip install '{install_hint(module)}'")


def _first_line(error: Exception) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0][:200]


LOGITS = "logits"  # the ONNX output that holds the logits (digits.export.add_logits_output names it)


def keras_logits(model):
    """A function batch -> (N, classes) float32 logits of a Keras model whose last layer is a Dense with a softmax
    (every model of digits.models): its input times the layer's weights; None for any other model."""
    import keras

    last = model.layers[-1] if getattr(model, "layers", None) else None
    if not isinstance(last, keras.layers.Dense) or last.activation is not keras.activations.softmax:
        return None
    features = keras.Model(model.inputs[0] if len(model.inputs) == 1 else model.inputs, last.input)
    kernel, bias = (np.asarray(weight, np.float32) for weight in last.get_weights())

    def logits(batch: np.ndarray) -> np.ndarray:
        return np.asarray(features(batch, training=False), np.float32) @ kernel + bias

    return logits


class KerasBackend:
    def __init__(self, path: Path, threads: int | None = None):  # TensorFlow's pools are process-wide
        from . import runtime

        runtime.load()
        import keras

        try:
            self.model = keras.models.load_model(path, compile=False)
        except Exception as error:  # Keras raises many types for a damaged zip / foreign file
            raise ValueError(f"{path} is not a readable Keras model ({type(error).__name__}: "
                             f"{_first_line(error)}); re-train the run") from None
        self.input_shape, self.num_classes = tuple(self.model.input_shape[1:]), int(self.model.output_shape[-1])
        self._lock = threading.Lock()
        self._logits = keras_logits(self.model)
        self.gives_logits = self._logits is not None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            return np.asarray(self.model(batch, training=False), dtype=np.float32)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            return self._logits(batch)


class OnnxBackend:
    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # Idle intra-op threads spin by default: on a small CPU that burns the cores a server needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.intra_op_num_threads = threads or 0  # 0: one per physical core
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types
            raise ValueError(f"{path} is not a readable ONNX model ({_first_line(error)})") from None
        signature = self.session.get_inputs()[0]
        self.input_name = signature.name
        self.input_shape = tuple(signature.shape[1:])
        outputs = self.session.get_outputs()
        self.num_classes = int(outputs[0].shape[-1])
        self._output = outputs[0].name
        self.gives_logits = any(output.name == LOGITS for output in outputs[1:])

    def __call__(self, batch: np.ndarray) -> np.ndarray:  # InferenceSession.run is thread-safe
        return self.session.run([self._output], {self.input_name: batch})[0]

    def logits(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([LOGITS], {self.input_name: batch})[0]


class LiteRTBackend:
    """One interpreter per thread (an Interpreter is not thread-safe); int8 models quantize I/O."""

    gives_logits = False  # a LiteRT file holds the softmax's output only

    def __init__(self, path: Path, threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.path, self._local, self._interpreter, self._threads = path, threading.local(), Interpreter, threads
        try:
            interpreter = self._get()
        except Exception as error:  # the interpreter raises ValueError/RuntimeError for foreign files
            raise ValueError(f"{path} is not a readable LiteRT model ({_first_line(error)})") from None
        details = interpreter.get_input_details()[0]
        self.input_shape = tuple(int(size) for size in details["shape_signature"][1:])
        self.num_classes = int(interpreter.get_output_details()[0]["shape"][-1])

    def _get(self):
        if getattr(self._local, "interpreter", None) is None:
            from .runtime import quiet

            with quiet():  # "Created TensorFlow Lite XNNPACK delegate" on every interpreter
                self._local.interpreter = self._interpreter(model_path=str(self.path), num_threads=self._threads)
            self._local.batch = None
        return self._local.interpreter

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        interpreter = self._get()
        source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        if self._local.batch != len(batch):
            from .runtime import quiet

            with quiet():  # the XNNPACK delegate announces itself when tensors are allocated
                interpreter.resize_tensor_input(source["index"], [len(batch), *batch.shape[1:]])
                interpreter.allocate_tensors()
            self._local.batch = len(batch)
        if source["dtype"] != np.float32:  # int8 model: quantize with the tensor's scale and zero point
            scale, zero_point = source["quantization"]
            info = np.iinfo(source["dtype"])
            batch = np.clip(np.round(batch / scale + zero_point), info.min, info.max).astype(source["dtype"])
        interpreter.set_tensor(source["index"], batch)
        interpreter.invoke()
        output = interpreter.get_tensor(target["index"])
        if target["dtype"] != np.float32:
            scale, zero_point = target["quantization"]
            output = (output.astype(np.float32) - zero_point) * scale
        return output


CLASSES = {"keras": KerasBackend, "onnx": OnnxBackend, "litert": LiteRTBackend}


def load(name: str, path: Path, threads: int | None = None):
    """Backend `name` on `path`; `threads` inside one call (None: the runtime's default, every core)."""
    require(name)
    return CLASSES[name](Path(path), threads)


def in_batches(function: Callable[[np.ndarray], np.ndarray], images: np.ndarray, batch_size: int = 1024,
               num_classes: int = 10) -> np.ndarray:
    """`function` over `images` in slices of `batch_size`, outputs joined: (N, classes) float32."""
    outputs = [np.asarray(function(images[start:start + batch_size]), dtype=np.float32)
               for start in range(0, len(images), batch_size)]
    return np.concatenate(outputs) if outputs else np.zeros((0, num_classes), np.float32)


def latency(function, image: np.ndarray, calls: int = 30) -> float:
    """Median seconds for one call on `image` (a batch)."""
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        function(image)
        times.append(time.perf_counter() - started)
    return float(np.median(times))
