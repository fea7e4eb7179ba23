"""Training configuration: one dataclass of typed defaults, a JSON round-trip, and overrides.

A run is fully described by a `Config`. The run directory stores it as `config.json`, so a
model always carries the recipe that built it, and `digits train --config FILE` reads the
same file back. Unknown keys and values of the wrong type are refused with a `ValueError`
that names the key and the fix, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


SCHEDULES = ("constant", "one_cycle", "cosine")
PRECISIONS = ("float32", "mixed_bfloat16", "auto")
AUGMENTATIONS = ("shift", "rotation", "zoom", "slant", "aspect", "elastic", "stroke", "broken", "lowres", "blur",
                 "texture")  # Config.augment_<name> -> digits.augment.batch(<name>=...)
OUTLIER_FAMILIES = ("letters", "symbols", "shapes", "scribbles", "silhouettes", "scripts", "pairs",
                    "intruders")  # the non-digits
# Outlier Exposure can draw (digits.synthetic): the first five are the default; scripts: letters of other scripts
# (never Greek or Cyrillic, kept unseen for benchmarks/rejection.py); pairs: two training digits side by side;
# intruders: one of the drawn families' non-digits cut out of a number of training digits it touches
DISTRIBUTIONS = ("mirrored", "multi-worker")  # digits train --distribute: tf.distribute strategies (distribute.py)


@dataclass
class Config:
    model: str = "mlp"  # model registry name (digits.models.MODELS)
    dataset: str = "mnist"  # dataset registry name (digits.data.DATASETS)
    epochs: int = 5  # full passes over the training split
    batch_size: int = 32  # images per optimizer step
    learning_rate: float = 0.001  # Adam's step size (peak rate when a schedule is used)
    seed: int = 42  # seeds Python, NumPy and TensorFlow; same seed -> same model on CPU
    validation_split: float = 0.1  # fraction of the training images held out for validation
    limit: int | None = None  # use only the first N training images (fast runs); None = all
    model_args: dict[str, Any] = field(default_factory=dict)  # keyword arguments for the model builder
    schedule: str = "constant"  # learning rate: constant, one_cycle (warm-up then cosine) or cosine
    warmup_fraction: float = 0.2  # one_cycle: share of all steps spent warming up to learning_rate
    weight_decay: float = 0.0  # decoupled weight decay (AdamW) when above 0
    label_smoothing: float = 0.0  # move this much target mass evenly onto all classes
    augment_shift: float = 0.0  # random translation, up to this many pixels each way
    augment_rotation: float = 0.0  # random rotation, up to this many degrees each way
    augment_zoom: float = 0.0  # random zoom, up to this fraction in or out
    augment_slant: float = 0.0  # random slant (shear): the top moves sideways up to this times the height
    augment_aspect: float = 0.0  # random width change, up to this fraction narrower or wider
    augment_elastic: float = 0.0  # elastic distortion (Simard et al. 2003), RMS displacement up to this many pixels
    augment_stroke: float = 0.0  # strokes up to this many pixels wider (or half of that thinner)
    augment_broken: float = 0.0  # share of pictures whose strokes are cut by thin gaps
    augment_lowres: float = 0.0  # share of pictures drawn at 8-16 px and enlarged
    augment_blur: float = 0.0  # Gaussian blur up to this sigma, in pixels
    augment_texture: float = 0.0  # uneven ink and paper noise, strength 0..1
    keep_best: bool = False  # end with the weights of the epoch with the best validation accuracy
    precision: str = "float32"  # float32, mixed_bfloat16, or auto (bfloat16 where the CPU computes it natively)
    outlier_exposure: float = 0.0  # share of each batch made of generated non-digits taught to be unsure (0: off)
    outlier_images: int = 12000  # how many non-digits digits.synthetic generates for Outlier Exposure
    outlier_families: list[str] = field(default_factory=lambda: list(OUTLIER_FAMILIES[:5]))  # which, evenly
    touching_pieces: int = 0  # digits cut out of touching numbers of training digits added to the training split
    # (digits.synthetic.touching_pieces: what the reader sees of a digit in a number; 0: none)
    digit_photos: int = 0  # photos of training digits, prepared as the reader prepares a picture, added to the
    # training split (digits.synthetic.digit_photos: the path Outlier Exposure's non-digits come by; 0: none)
    printed_digits: int = 0  # digits printed in matplotlib's fonts, photographed and prepared, added to the training
    # split (digits.synthetic.printed_digits: a flagged 1, an open 4, serifs MNIST's writers seldom drew; 0: none)
    printed_pen_share: float = 0.3  # the share of printed_digits that is a 1 or a 7 drawn by pen (1: only those)
    reject_rate: float = 0.005  # share of validation digits the stored not-a-digit threshold may refuse

    def validate(self) -> "Config":
        """Check value ranges; raise ValueError naming the bad value and the fix."""
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}; pass --epochs 1 or more")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}; pass --batch-size 1 or more")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}; try --learning-rate 0.001")
        if not 0.0 < self.validation_split < 1.0:
            raise ValueError(
                f"validation_split must be between 0 and 1 (exclusive), got {self.validation_split}; try 0.1"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got '{self.schedule}'")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got '{self.precision}'")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}; try 0.2")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}; try 0.1")
        for name in ("weight_decay", *(f"augment_{name}" for name in AUGMENTATIONS)):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}; use 0 to turn it off")
        for name in ("augment_zoom", "augment_aspect"):
            if getattr(self, name) >= 1:
                raise ValueError(f"{name} must be below 1, got {getattr(self, name)}; try 0.1")
        for name in ("augment_broken", "augment_lowres", "augment_texture"):
            if getattr(self, name) > 1:
                raise ValueError(f"{name} is a share (0..1), got {getattr(self, name)}; try 0.2")
        if not 0.0 <= self.outlier_exposure < 0.9:
            raise ValueError(f"outlier_exposure must be in [0, 0.9), got {self.outlier_exposure}; try 0.25 (0: off)")
        if self.touching_pieces < 0:
            raise ValueError(f"touching_pieces must be 0 or more, got {self.touching_pieces}; try 12000 (0: none)")
        if self.digit_photos < 0:
            raise ValueError(f"digit_photos must be 0 or more, got {self.digit_photos}; try 30000 (0: none)")
        if self.printed_digits < 0:
            raise ValueError(f"printed_digits must be 0 or more, got {self.printed_digits}; try 12000 (0: none)")
        if not 0.0 <= self.printed_pen_share <= 1.0:
            raise ValueError(f"printed_pen_share is a share (0..1), got {self.printed_pen_share}; try 0.3")
        if self.outlier_images < 10:
            raise ValueError(f"outlier_images must be at least 10, got {self.outlier_images}; try 12000")
        unknown = [family for family in self.outlier_families if family not in OUTLIER_FAMILIES]
        if unknown or not self.outlier_families or len(set(self.outlier_families)) < len(self.outlier_families):
            raise ValueError(f"outlier_families must list distinct families from {', '.join(OUTLIER_FAMILIES)}, got "
                             f"{self.outlier_families}; try {list(OUTLIER_FAMILIES[:5])}")
        if not set(self.outlier_families) - {"pairs", "intruders"} and "intruders" in self.outlier_families:
            raise ValueError(f"outlier_families {self.outlier_families} has intruders but nothing they are drawn "
                             f"from; add a drawn family, e.g. {list(OUTLIER_FAMILIES[:5]) + ['intruders']}")
        if not 0.0 <= self.reject_rate < 0.5:
            raise ValueError(f"reject_rate must be in [0, 0.5), got {self.reject_rate}; try 0.005")
        if self.limit is not None and self.limit < 2:
            raise ValueError(f"limit must be at least 2 images, got {self.limit}; try --limit 2000")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """A short hash of the settings that differ from their defaults; two runs with the same fingerprint are
        the same run. A setting added later, at its default, leaves it as it was: a killed run still resumes."""
        defaults = Config().to_dict()
        text = json.dumps({key: value for key, value in self.to_dict().items() if defaults.get(key) != value},
                          sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(Config)


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Return `value` if it fits the field's type (int accepted for float), else raise."""
    allowed = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    for kind in allowed:
        origin = typing.get_origin(kind) or kind
        if kind is type(None) and value is None:
            return None
        if origin is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if origin is bool and isinstance(value, bool):
            return value
        if origin in (str, dict) and isinstance(value, origin):
            return value
        if origin is list and isinstance(value, list) and all(isinstance(item, str) for item in value):
            return list(value)
    if isinstance(value, list) and any(typing.get_origin(kind) is list for kind in allowed):
        raise ValueError(f"config key '{key}' must be a list of strings, got {value!r}; fix the value in the config")
    names = " or ".join("null" if k is type(None) else getattr(typing.get_origin(k) or k, "__name__", str(k))
                        for k in allowed)
    raise ValueError(
        f"config key '{key}' must be {names}, got {type(value).__name__} {value!r}; fix the value in the config"
    )


def from_dict(values: dict[str, Any], base: Config | None = None) -> Config:
    """Build a Config from `values` over `base` (defaults if None), checking keys and types."""
    if not isinstance(values, dict):
        raise ValueError(f"a config must be a JSON object of settings, got {type(values).__name__}")
    hints = _field_types()
    unknown = sorted(set(values) - set(hints))
    if unknown:
        raise ValueError(
            f"unknown config key(s) {', '.join(map(repr, unknown))}; known keys: {', '.join(hints)}"
        )
    checked = {key: _coerce(key, value, hints[key]) for key, value in values.items()}
    return dataclasses.replace(base or Config(), **checked).validate()


def from_run(values: dict[str, Any]) -> Config:
    """The recipe a run was trained with, from its config.json: what `digits train` wrote there, with anything
    that is not a setting (what a run of another kind, e.g. an ensemble, records beside it) left out."""
    return from_dict({key: value for key, value in values.items() if key in _field_types()})


def load(path: str | Path, base: Config | None = None) -> Config:
    """Read a JSON config file; every error is a one-line ValueError naming the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"cannot read config file {path}: {error.strerror or error}; check the path") from None
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"config file {path} is not valid JSON ({error.msg} at line {error.lineno}); fix it") from None
    try:
        return from_dict(values, base)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
