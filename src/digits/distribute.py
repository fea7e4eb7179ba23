"""The machine side of training: devices and precision, tf.distribute strategies and their workarounds.

`set_precision("auto")` uses bfloat16 where the hardware computes it natively (a GPU, an x86
CPU with AMX or AVX512-BF16), float32 elsewhere. `make_strategy` builds MirroredStrategy
(the GPUs of one machine) or MultiWorkerMirroredStrategy (a cluster described by TF_CONFIG);
Keras 3's `fit` needs two workarounds under the latter (`multi_worker_workarounds`).
`environment()` records the versions and machine a run was trained on.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np

from . import __version__, runtime
from .config import DISTRIBUTIONS


def native_bfloat16() -> bool:
    """True where bfloat16 matmuls run in hardware: a GPU, or an x86 CPU with AMX or AVX512-BF16."""
    tf = runtime.load()  # quietly, once

    if tf.config.list_physical_devices("GPU"):
        return True
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def set_precision(precision: str) -> str:
    """Apply a Config.precision to Keras's global dtype policy; returns the policy used."""
    policy = precision if precision != "auto" else ("mixed_bfloat16" if native_bfloat16() else "float32")
    runtime.load()
    import keras

    keras.mixed_precision.set_global_policy(policy)
    return policy


def environment() -> dict:
    tf = runtime.load()  # quietly, once
    import keras

    return {
        "digits": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
        "numpy": np.__version__, "python": platform.python_version(),
        "machine": platform.machine(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
        "gpus": len(tf.config.list_physical_devices("GPU")),
    }




def make_strategy(distribute: str | None):
    """None, MirroredStrategy (the GPUs of one machine) or MultiWorkerMirroredStrategy (from TF_CONFIG)."""
    if distribute is None:
        return None
    if distribute not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution '{distribute}'; choose one of {', '.join(DISTRIBUTIONS)}")
    tf = runtime.load()  # quietly, once

    if distribute == "mirrored":
        return tf.distribute.MirroredStrategy()
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG") or "null")
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error.msg}); see the README's distributed training") from None
    if not isinstance(cluster, dict) or "cluster" not in cluster or "task" not in cluster:
        raise ValueError("--distribute multi-worker reads the cluster from TF_CONFIG ({\"cluster\": ..., "
                         "\"task\": ...}), which is not set; see the README's distributed training")
    return tf.distribute.MultiWorkerMirroredStrategy()


def worker_index(strategy) -> int:
    """0 for the worker that writes the run (the chief), 1.. for the others."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type or resolver.task_type == "chief":
        return 0
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return int(resolver.task_id) + (1 if has_chief else 0)


def multi_worker_workarounds(model, strategy, train_data) -> None:
    """Two Keras 3 + MultiWorkerMirroredStrategy bugs in `fit` (tensorflow#72388), worked around here.

    1. Before its symbolic build, `fit` averages a nested *distributed* batch with
       `strategy.reduce`, which this strategy cannot do: build from one local batch instead
       (only shapes and dtypes are used) and skip that step.
    2. Each step's logs are averaged with `strategy.reduce("MEAN", value, axis=0)`, which fails
       on scalars: return them with shape (1,). Keras then reads the epoch's figures from the
       metric objects themselves, which the strategy aggregates across workers correctly.
    """
    tf = runtime.load()  # quietly, once

    with strategy.scope():
        model._symbolic_build(data_batch=next(iter(train_data)))
    model._maybe_symbolic_build = lambda *args, **kwargs: None
    for name in ("train_step", "test_step"):
        step = getattr(model, name)
        setattr(model, name, lambda batch, step=step: {key: tf.reshape(value, [1]) for key, value in step(batch).items()})
