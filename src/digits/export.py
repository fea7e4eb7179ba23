"""Export a run for deployment: SavedModel (TF Serving), ONNX (ONNX Runtime), LiteRT float32 and int8.

Conversion goes through Keras 3's `model.export(format=...)`; int8 is full-integer
post-training quantization (int8 weights, activations, input and output) calibrated on
images drawn from the training split. `export()` then measures what it wrote, on the full
test set and through the same backends the Predictor uses: accuracy, size, single-image
latency and batch throughput, saved as `FILE.json` beside the file. An export whose accuracy
falls more than 0.1 percentage point below the Keras model's (0.3 for int8) is deleted and
refused with an `ExportError`: nothing half-right is left behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from . import backends, data, files, runs, runtime
from .images import to_model_input

FORMATS = runs.EXPORT_FORMATS
SUFFIXES = {"savedmodel": "", "onnx": ".onnx", "litert": ".tflite"}
CONVERTERS = ("tf2onnx", "onnx")  # modules Keras's exporters need; named in their ImportError messages
MAX_DROP = {False: 0.001, True: 0.003}  # allowed accuracy drop (fraction): float exports, int8


class ExportError(ValueError):
    """An export that could not be made, or that lost too much accuracy."""


def representative_images(dataset_name: str, count: int = 500, seed: int = 0, data_dir=None) -> np.ndarray:
    """Calibration images for int8: a seeded sample of the training split, as model inputs."""
    dataset = data.load_dataset(dataset_name, data_dir=data_dir)
    picks = np.random.default_rng(seed).choice(len(dataset.x_train), count, replace=False)
    return to_model_input(dataset.x_train[picks])


def convert(model, format: str, path: Path, int8: bool = False, calibration: np.ndarray | None = None) -> Path:
    """Write `model` to `path` in `format`, atomically (a temporary sibling, then a rename)."""
    tf = runtime.load()

    if format not in FORMATS:
        raise ExportError(f"unknown export format '{format}'; choose one of {', '.join(FORMATS)}")
    if int8 and format != "litert":
        raise ExportError("--int8 applies to the litert format only; add --format litert")
    options = {}
    if int8:
        if calibration is None:
            raise ExportError("int8 export needs calibration images")
        options = {
            "optimizations": [tf.lite.Optimize.DEFAULT],
            "representative_dataset": lambda: ([image[None]] for image in calibration),
            "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
            "inference_input_type": tf.int8, "inference_output_type": tf.int8,
        }
    keras_format = {"savedmodel": "tf_saved_model", "onnx": "onnx", "litert": "litert"}[format]
    path = Path(path)
    if SUFFIXES[format] and path.suffix != SUFFIXES[format]:
        raise ExportError(f"a {format} file must be named *{SUFFIXES[format]} (got {path.name}); "
                          f"pass e.g. --out model{SUFFIXES[format]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        target = staging / (path.name or "model")
        with runtime.quiet(), warnings.catch_warnings():  # converters print status lines; errors still raise
            warnings.filterwarnings("ignore", message=".*np.object.*", category=FutureWarning)  # Keras's tf2onnx shim
            model.export(str(target), format=keras_format, verbose=False, **options)
        os.replace(target, path)
    except (ExportError, ModuleNotFoundError):  # a missing converter: the CLI names the extra to install
        raise
    except ImportError as error:  # Keras words a missing converter as "This requires the tf2onnx module"
        named = next((module for module in CONVERTERS if module in str(error)), None)
        if named is None:
            raise ExportError(f"{format} export failed: ImportError: {str(error).splitlines()[0][:300]}") from None
        raise ModuleNotFoundError(str(error), name=named) from None
    except Exception as error:  # converters raise many types; say which format failed and why
        raise ExportError(f"{format} export failed: {type(error).__name__}: {str(error).splitlines()[0][:300]}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def add_logits_output(path: Path) -> bool:
    """Give the ONNX file at `path` a second output, "logits": the input of its final softmax (the weights and the
    first output unchanged), rewritten atomically. The not-a-digit energy score reads it. Returns False, leaving
    the file alone, where it already has one or its output is no softmax (then it has no logits to give)."""
    import onnx

    path = Path(path)
    model = onnx.load(str(path))
    if any(output.name == backends.LOGITS for output in model.graph.output):
        return False
    produced = {output: node for node in model.graph.node for output in node.output}
    node = produced.get(model.graph.output[0].name)
    while node is not None and node.op_type in ("Identity", "Cast"):
        node = produced.get(node.input[0])
    if node is None or node.op_type != "Softmax":
        return False
    model.graph.node.append(onnx.helper.make_node("Identity", [node.input[0]], [backends.LOGITS], name="logits"))
    classes = model.graph.output[0].type.tensor_type.shape.dim
    shape = [None, classes[-1].dim_value or None] if len(classes) else None
    model.graph.output.append(onnx.helper.make_tensor_value_info(backends.LOGITS, onnx.TensorProto.FLOAT, shape))
    onnx.checker.check_model(model)
    with files.atomic_path(path) as temporary:
        onnx.save(model, str(temporary))
    return True


def average_onnx(members: list[Path], out: Path, weights: list[float] | None = None) -> None:
    """One ONNX file that reads as the members' average (a deep ensemble, Lakshminarayanan et al. 2017): every
    member runs on the same input, their logits are averaged (the "logits" output, which the energy score reads)
    and the first output is the softmax of that average. With `weights` (one per member, positive, summing to 1)
    the average is weighted. Each member must be an ONNX classifier with a "logits" output (`add_logits_output`)
    and the same input and class count; else a ValueError naming the file. Written atomically, checked by onnx's
    checker."""
    import onnx
    from onnx import compose, helper, numpy_helper

    if len(members) < 2:
        raise ValueError("average_onnx needs at least two member files")
    if weights is not None and (len(weights) != len(members) or min(weights) <= 0
                                or not np.isclose(sum(weights), 1.0)):
        raise ValueError(f"average_onnx takes one positive weight per member, summing to 1; got {list(weights)} "
                         f"for {len(members)} members")
    loaded = []
    for path in members:
        model = onnx.load(str(path))
        if not any(output.name == backends.LOGITS for output in model.graph.output):
            raise ValueError(f"{path} has no {backends.LOGITS!r} output; give it one first (digits.export."
                             "add_logits_output, or digits calibrate on its run)")
        loaded.append(model)

    def signature(model) -> tuple[list[int], list[int]]:  # (input shape, output shape), the batch dimension aside
        return tuple([dim.dim_value for dim in value.type.tensor_type.shape.dim[1:]]
                     for value in (model.graph.input[0], model.graph.output[0]))

    first = loaded[0]
    ours = signature(first)
    for path, model in zip(members[1:], loaded[1:]):
        if (theirs := signature(model)) != ours:
            raise ValueError(f"{path} takes {theirs[0]} and gives {theirs[1]}, {members[0]} {ours[0]} and {ours[1]}; "
                             "average only models with the same input and classes")
    input_name, output_name = first.graph.input[0].name, first.graph.output[0].name
    opsets = {}
    for model in loaded:
        for opset in model.opset_import:
            opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
    nodes, initializers, value_info, member_logits = [], [], [], []
    for index, model in enumerate(loaded):
        prefixed = compose.add_prefix(model, f"member{index}/")
        graph = prefixed.graph
        nodes.append(helper.make_node("Identity", [input_name], [graph.input[0].name], name=f"member{index}/input"))
        nodes.extend(graph.node)
        initializers.extend(graph.initializer)
        value_info.extend(graph.value_info)
        member_logits.append(f"member{index}/{backends.LOGITS}")
    if weights is None:
        nodes.append(helper.make_node("Mean", member_logits, [backends.LOGITS], name="average_logits"))
    else:  # each member's logits times its weight, then their sum
        for index, weight in enumerate(weights):
            initializers.append(numpy_helper.from_array(np.array(weight, np.float32), f"member{index}/weight"))
            nodes.append(helper.make_node("Mul", [member_logits[index], f"member{index}/weight"],
                                          [f"member{index}/weighted"], name=f"member{index}/weigh"))
        nodes.append(helper.make_node("Sum", [f"member{index}/weighted" for index in range(len(weights))],
                                      [backends.LOGITS], name="average_logits"))
    nodes.append(helper.make_node("Softmax", [backends.LOGITS], [output_name], axis=-1, name="probabilities"))
    graph = helper.make_graph(nodes, "average", [first.graph.input[0]],
                              [first.graph.output[0], next(output for output in first.graph.output
                                                           if output.name == backends.LOGITS)],
                              initializer=initializers, value_info=value_info)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(domain, version)
                                                    for domain, version in sorted(opsets.items())],
                              producer_name="digits.export.average_onnx")
    model.ir_version = max(item.ir_version for item in loaded)
    onnx.checker.check_model(model)
    with files.atomic_path(Path(out)) as temporary:
        onnx.save(model, str(temporary))


def save_model(model, directory: Path) -> dict[str, Path]:
    """Save `model` into a run directory being written: `model.keras` and its portable copies
    (`runs.PORTABLE`: ONNX, with its logits as a second output, and LiteRT), each checked against Keras on a
    probe batch. A copy whose converter is missing or fails is skipped (the run still loads with Keras);
    returns what was written."""
    directory = Path(directory)
    with files.atomic_path(directory / "model.keras") as temporary:
        model.save(temporary)
    probe = np.random.default_rng(0).random((4, *model.input_shape[1:]), dtype=np.float32)
    expected = np.asarray(model(probe, training=False), np.float32)  # the ONNX exporter needs a called model
    written = {"keras": directory / "model.keras"}
    for backend, name in runs.PORTABLE.items():
        path = directory / name
        try:
            convert(model, backend, path)
            if backend == "onnx":
                add_logits_output(path)
            loaded = backends.load(backend, path)
            got = loaded(probe)
        except (ValueError, ModuleNotFoundError):  # no converter or runtime installed, or a failed conversion
            path.unlink(missing_ok=True)
            continue
        _check_copy(backend, path, loaded, got, expected, model, probe)
        written[backend] = path
    return written


def _check_copy(backend: str, path: Path, loaded, got, expected, model, probe) -> None:
    """Refuse (delete, ExportError) a portable copy whose probabilities, or logits, differ from Keras's."""
    differences = [np.abs(got - expected).max()]
    reference = backends.keras_logits(model)
    if getattr(loaded, "gives_logits", False) and reference is not None:
        differences.append(np.abs(loaded.logits(probe) - reference(probe)).max() / 10)  # logits: ten times the room
    if max(differences) > 1e-4:
        path.unlink(missing_ok=True)
        raise ExportError(f"the {backend} copy of the model disagrees with Keras by up to {max(differences):.2g}; "
                          "report this as a bug")


def _speed(function, images: np.ndarray, calls: int = 200) -> dict:
    """Single-image latency percentiles (microseconds) and batched throughput (images/second)."""
    for _ in range(10):
        function(images[:1])
    times = []
    for index in range(calls):
        started = time.perf_counter()
        function(images[index % len(images)][None])
        times.append(time.perf_counter() - started)
    started = time.perf_counter()
    for start in range(0, len(images), 1024):
        function(images[start:start + 1024])
    seconds = time.perf_counter() - started
    return {"latency_p50_us": float(np.percentile(times, 50) * 1e6),
            "latency_p99_us": float(np.percentile(times, 99) * 1e6),
            "throughput_per_s": float(len(images) / seconds)}


def _size(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file()) if path.is_dir() else path.stat().st_size


def _savedmodel_function(path: Path):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # keep the object alive: it owns the variables

    def predict(batch):
        return loaded.serve(tf.constant(batch)).numpy()

    return predict


def export(run: str | Path, format: str, out: str | Path, int8: bool = False, data_dir=None) -> dict:
    """Convert a run, check and measure the copy on the full test set, write `OUT.json`; returns it."""
    if format not in FORMATS:
        raise ExportError(f"unknown export format '{format}'; choose one of {', '.join(FORMATS)}")
    out = Path(out)
    if out.exists():
        raise ExportError(f"{out} already exists; choose another --out or remove it first")
    from . import models  # the training stack: TensorFlow and Keras
    info = runs.load_info(runs.resolve_run(run))
    keras_backend = backends.load("keras", info.run_dir / "model.keras")
    keras_backend(np.zeros((1, *keras_backend.input_shape), np.float32))  # the ONNX exporter needs a called model
    keras_model = keras_backend.model
    dataset_name = info.metrics["dataset"]["name"]
    dataset = data.load_dataset(dataset_name, data_dir=data_dir)
    x_test, y_test = to_model_input(dataset.x_test), dataset.y_test
    calibration = representative_images(dataset_name, data_dir=data_dir) if int8 else None
    convert(keras_model, format, out, int8=int8, calibration=calibration)  # checks the name first
    try:
        if format == "onnx":
            add_logits_output(out)
        function = (_savedmodel_function(out) if format == "savedmodel" else
                    backends.load(format, out))
        reference = float((models.predict_batches(keras_model, x_test).argmax(1) == y_test).mean())
        accuracy = float((backends.in_batches(function, x_test).argmax(1) == y_test).mean())
        drop = reference - accuracy
        if drop > MAX_DROP[int8]:
            raise ExportError(f"the {format}{' int8' if int8 else ''} export scores {accuracy:.4f} on the test set, "
                              f"{drop * 100:.2f} points below the Keras model's {reference:.4f} (allowed: "
                              f"{MAX_DROP[int8] * 100:.1f}); it was not kept")
        report = {"format": format, "int8": int8, "file": out.name, "source_run": str(info.run_dir),
                  "test_accuracy": accuracy, "keras_test_accuracy": reference, "accuracy_drop": drop,
                  "size_bytes": _size(out), **_speed(function, x_test),
                  "config": info.config, "dataset": info.metrics["dataset"],
                  "calibration": info.metrics.get("calibration")}
    except BaseException:
        shutil.rmtree(out, ignore_errors=True) if out.is_dir() else out.unlink(missing_ok=True)
        raise
    files.write_json(out.with_name(out.name + ".json"), report)
    return report
