"""A whole-number reader that does not cut: a small convolutional sequence model, trained by CTC (Graves et
al. 2006; the CRNN family of Shi et al. 2016, convolutions only), reads the strip of ink as one picture and
says which digits it holds, left to right. It settles the cuts of `multidigit`, it does not replace them:

    reader = SequenceReader(path)      # an ONNX file: (N, 32, 192, 1) strips -> (N, 48, 11) logits
    found = reader(ink)                # a Reading: found.text, e.g. "2024" (greedy CTC decoding), found.sure
                                       # (the kept steps' top probabilities multiplied), found.likelihood("224")
                                       # (the log of the chance it gives any text: the CTC forward pass)

`multidigit` reads a number as before (its lattice of candidate cuts, the classifier on every candidate). Where
that reading has two digits or more (one digit is never cut by it: single digits stay whole) and none of them is
refused as "not a digit", rival readings are weighed against it (`multidigit._rivals`): the sequence model's text
and the lattice's best cuts with one digit fewer and one more, each read with the best-scoring cuts whose digits
the classifier reads so (`multidigit._best_cuts`). Each weighs its lattice score plus WEIGHT times the sequence
model's log-likelihood of its text; the lattice's own reading gets MARGIN more, and a rival holding a refused digit
is never taken (the sequence model has never seen a letter: it would read one in a number as some digit). Every
digit of the answer is still read by the classifier, with its box, its probabilities and its digit score: the
sequence model only says how many digits there are and where they fall. Its own errors (it reads a digit twice)
cost nothing where the classifier disagrees; its strength, two touching digits that the lattice reads
confidently as one, is where the lattice is weakest.

WEIGHT and MARGIN (and that refused readings stand, and that the rivals of one digit fewer and more are weighed)
were chosen by a rule committed first, on the even-numbered validation strips of benchmarks/validation_strips.py
and strips holding a non-digit among validation digits, the odd-numbered ones to check
(`python scripts/rescore.py choose`, benchmarks/results/rescore.json): on the odd half touching strips read whole
89.4% against 88.2% with the rule shipped before (the sequence model's text where at least 0.98 sure), mixed
93.0% against 92.6%, and the non-digit reported in as many strips (87.4%). The model's input is `strip_input`,
the same function its training data went through (scripts/sequence_experiment.py writes both). This module
needs NumPy, Pillow and ONNX Runtime: the reading half.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

HEIGHT, WIDTH, BLANK = 32, 192, 10  # model input (rows, columns); class 10 is CTC's blank
WEIGHT, MARGIN = 1.5, 5.0  # how a number's readings are weighed (multidigit._settled; see the module doc)


def strip_input(ink) -> np.ndarray | None:
    """(HEIGHT, WIDTH) float32 0..1, ink bright: the ink of a picture (`images.analyse`), cropped, its level
    stretched so most ink reaches 1, scaled to 28 rows (at most WIDTH - 4 columns), 2 rows above and below,
    left-aligned; None when there is no ink."""
    from . import images

    if ink.labels is None:
        return None
    intensity = np.where(ink.owner > 0, ink.intensity, 0.0).astype(np.float32)
    top, left, bottom, right = images.bounds(intensity >= 0.2)
    crop = intensity[top:bottom, left:right]
    if not crop.size:
        return None
    crop = np.clip(crop / max(0.3, float(np.percentile(crop[crop >= 0.2], 90))), 0, 1)  # the ink's own level -> 1
    scale = 28.0 / crop.shape[0]
    width = int(np.clip(round(crop.shape[1] * scale), 1, WIDTH - 4))
    resized = np.asarray(Image.fromarray(crop).resize((width, 28), Image.Resampling.BILINEAR), np.float32)
    out = np.zeros((HEIGHT, WIDTH), np.float32)
    out[2:30, 2:2 + width] = np.clip(resized, 0, 1)
    return out


def decode(logits: np.ndarray) -> list[tuple[str, float]]:
    """Greedy CTC decoding of (N, steps, 11) logits: (text, the product of the kept steps' top probabilities)
    per row; a step repeating the one before it, or the blank, adds nothing."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    probabilities = np.exp(shifted) / np.exp(shifted).sum(-1, keepdims=True)
    best = probabilities.argmax(-1)
    found = []
    for row, path in enumerate(best):
        text, sure, previous = "", 1.0, BLANK
        for step, label in enumerate(path):
            if label != BLANK and label != previous:
                text += str(int(label))
                sure *= float(probabilities[row, step, label])
            previous = label
        found.append((text, sure))
    return found


def log_likelihood(logits: np.ndarray, text: str) -> float:
    """The natural log of the chance that (steps, BLANK + 1) logits spell `text` (digits), summed over every
    path of steps that reads as it (blanks anywhere, repeats merged): the CTC forward pass (Graves et al. 2006),
    in logs. A text no path can spell (longer than the steps allow) is -inf."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    logs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    labels = [BLANK]
    for char in text:
        labels += [int(char), BLANK]
    labels = np.asarray(labels)
    # a state may come from itself, the one before, or (a digit unlike the digit before it) two before
    skip = np.zeros(len(labels), bool)
    skip[2:] = (labels[2:] != BLANK) & (labels[2:] != labels[:-2])
    alpha = np.full(len(labels), -np.inf)
    alpha[:2] = logs[0, labels[:2]]
    for step in logs[1:]:
        before = np.concatenate([[-np.inf], alpha[:-1]])
        two = np.where(skip, np.concatenate([[-np.inf, -np.inf], alpha[:-2]])[:len(alpha)], -np.inf)
        alpha = np.logaddexp(np.logaddexp(alpha, before), two) + step[labels]
    return float(np.logaddexp(alpha[-1], alpha[-2]) if len(labels) > 1 else alpha[-1])


@dataclass(frozen=True)
class Reading:
    """What the sequence model reads in a strip: its greedy `text`, how `sure` (as `decode`), and its `logits`
    ((steps, BLANK + 1)), to weigh any other text (`likelihood`)."""

    text: str
    sure: float
    logits: np.ndarray = field(repr=False)

    def likelihood(self, text: str) -> float:
        """The log of the chance the model gives `text` (`log_likelihood`)."""
        return log_likelihood(self.logits, text)


class SequenceReader:
    """The sequence model in an ONNX file; `reader(ink)` -> a `Reading`, or None without ink. The file is loaded on
    first use (a picture of one digit never needs it: `digits predict` on one photo does not pay for it), once,
    from any thread; `load()` loads it now (a server, before it answers)."""

    def __init__(self, path: str | Path, threads: int | None = None):
        self.path, self._threads, self._run, self._loading = Path(path), threads, None, threading.Lock()

    def load(self):
        """The loaded model; a ValueError where the file is no digits sequence model."""
        from .backends import OnnxBackend

        with self._loading:
            if self._run is None:
                run = OnnxBackend(self.path, self._threads)
                if tuple(run.input_shape) != (HEIGHT, WIDTH, 1) or run.num_classes != BLANK + 1:
                    raise ValueError(f"{self.path} takes {tuple(run.input_shape)} and gives {run.num_classes} classes, "
                                     f"not ({HEIGHT}, {WIDTH}, 1) strips and {BLANK + 1}: not a digits sequence model")
                self._run = run
        return self._run

    def logits(self, strips: np.ndarray) -> np.ndarray:
        """(N, HEIGHT, WIDTH) strips (`strip_input`) -> (N, steps, BLANK + 1) logits."""
        return (self._run or self.load())(np.asarray(strips, np.float32).reshape(-1, HEIGHT, WIDTH, 1))

    def __call__(self, ink) -> Reading | None:
        strip = strip_input(ink)
        if strip is None:
            return None
        logits = self.logits(strip[None])[0]
        return Reading(*decode(logits[None])[0], logits)
