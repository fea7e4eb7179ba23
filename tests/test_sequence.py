"""The sequence model that settles a number's cuts (digits.sequence, multidigit._best_cuts, _rivals, _settled)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from digits import images, multidigit, reading, runs, sequence
from digits.predictor import Predictor


def one_hot(*classes: int, sure: float = 0.9) -> np.ndarray:
    rows = np.full((len(classes), 10), (1 - sure) / 9, np.float32)
    rows[np.arange(len(classes)), classes] = sure
    return rows


def test_decode_merges_repeats_and_drops_blanks():
    steps = [3, 3, sequence.BLANK, 3, 1, 1, sequence.BLANK, sequence.BLANK, 0]  # 3 3 _ 3 1 1 _ _ 0 -> "3310"
    logits = np.full((1, len(steps), sequence.BLANK + 1), -5.0, np.float32)
    logits[0, np.arange(len(steps)), steps] = 5.0
    logits[0, 4, 1] = 0.0  # a doubtful step: the first of a repeat sets the confidence
    (text, sure), = sequence.decode(logits)
    assert text == "3310"
    expected = np.exp(0.0) / (np.exp(0.0) + 10 * np.exp(-5.0))
    single = np.exp(5.0) / (np.exp(5.0) + 10 * np.exp(-5.0))
    assert sure == pytest.approx(expected * single ** 3)
    assert sequence.decode(np.zeros((2, 4, sequence.BLANK + 1), np.float32) + np.eye(sequence.BLANK + 1)[sequence.BLANK] * 3) == [("", 1.0)] * 2


def test_log_likelihood_sums_every_path_that_spells_the_text():
    """Against brute force: every path of 5 steps over the 11 classes, collapsed as CTC collapses it (repeats
    merged, blanks dropped), its chance added to its text's; the chances of all texts sum to 1."""
    import itertools

    logits = np.random.default_rng(0).normal(size=(5, sequence.BLANK + 1)) * 2
    logs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    totals: dict[str, float] = {}
    for path in itertools.product(range(sequence.BLANK + 1), repeat=5):
        text = "".join(str(label) for index, label in enumerate(path)
                       if label != sequence.BLANK and (index == 0 or path[index - 1] != label))
        totals[text] = np.logaddexp(totals.get(text, -np.inf), sum(logs[step, label] for step, label in enumerate(path)))
    for text in ("", "3", "33", "123", "1212", "121", "90210"):
        assert sequence.log_likelihood(logits, text) == pytest.approx(totals[text], abs=1e-9)
    assert sequence.log_likelihood(logits, "111111") == -np.inf  # six digits in five steps: no path spells it
    assert np.logaddexp.reduce(list(totals.values())) == pytest.approx(0.0, abs=1e-9)


def test_strip_input_crops_the_ink_to_28_rows_left_aligned():
    page = np.full((120, 400), 0.9, np.float32)
    page[30:90, 50:70] = 0.1  # a bar 60 tall and 20 wide
    page[30:90, 100:160] = 0.1  # a block 60 x 60
    found = sequence.strip_input(images.analyse(page))
    assert found.shape == (sequence.HEIGHT, sequence.WIDTH) and found.dtype == np.float32
    assert found.min() >= 0 and found.max() == pytest.approx(1.0)
    rows, columns = np.nonzero(found > 0.5)
    assert rows.min() == 2 and rows.max() == 29  # 28 rows of ink, 2 blank above and below
    assert columns.min() == 2 and 50 <= columns.max() <= 54  # 110 columns scaled by 28/60: about 51
    assert sequence.strip_input(images.analyse(np.full((50, 80), 0.9, np.float32))) is None


def lattice_of(probabilities: dict, count: int, small=None) -> tuple[dict, dict]:
    """A lattice as multidigit._lattice leaves it (the parts _choose and _choose_text read), scores per candidate."""
    keys = list(probabilities)
    lattice = {"count": count, "keys": keys, "probabilities": np.concatenate([probabilities[key] for key in keys]),
               "small": list(small or [False] * count), "digit_scores": None}
    return lattice, {}


def test_choose_text_finds_the_best_cuts_that_read_as_the_text():
    """Three pieces: the whole reads as a sure 8 (the lattice's choice), cut after the first as "1" and "3"; under
    "13" the cut is kept; a text no cuts read as gives None; no piece is dropped to fit a shorter text."""
    candidates = {(0, 1): one_hot(1), (1, 3): one_hot(3), (0, 3): one_hot(8, sure=0.99), (1, 2): one_hot(7),
                  (2, 3): one_hot(1), (0, 2): one_hot(4)}
    lattice, _ = lattice_of(candidates, 3)
    scores = {(0, 1): 1.0, (1, 3): 1.0, (0, 3): 3.0, (1, 2): 0.5, (2, 3): 0.5, (0, 2): 0.2}
    assert multidigit._choose(lattice, scores) == [(0, 3)]
    assert multidigit._choose_text(lattice, scores, "13") == [(0, 1), (1, 3)]
    assert multidigit._choose_text(lattice, scores, "171") == [(0, 1), (1, 2), (2, 3)]
    assert multidigit._choose_text(lattice, scores, "41") == [(0, 2), (2, 3)]
    assert multidigit._choose_text(lattice, scores, "8") == [(0, 3)]
    assert multidigit._choose_text(lattice, scores, "31") is None  # no candidate 3 starts the strip
    assert multidigit._choose_text(lattice, scores, "1") is None  # the 1 is there, but the rest cannot be dropped
    speck, _ = lattice_of(candidates, 3, small=[False, False, True])
    assert multidigit._choose_text(speck, scores, "17") == [(0, 1), (1, 2)]  # a speck may be left out
    assert multidigit._best_cuts(lattice, scores, length=3) == (2.0, [(0, 1), (1, 2), (2, 3)])
    assert multidigit._best_cuts(lattice, scores, length=2) == (2.0, [(0, 1), (1, 3)])  # "13" beats "41" (1.2)
    assert multidigit._best_cuts(lattice, scores, length=1) == (3.0, [(0, 3)])
    assert multidigit._best_cuts(lattice, scores, length=4) is None


def spelling(*steps) -> sequence.Reading:
    """A stand-in sequence model's reading: one step per argument, each a class (a digit or sequence.BLANK) it is
    sure of, or {class: chance} where it doubts; its text and sureness as `decode` gives them."""
    chances = np.full((len(steps), sequence.BLANK + 1), 1e-6)
    for step, found in enumerate(steps):
        for label, chance in (found if isinstance(found, dict) else {found: 1.0}).items():
            chances[step, label] = chance
    logits = np.log(chances / chances.sum(-1, keepdims=True))
    return sequence.Reading(*sequence.decode(logits[None])[0], logits)


class Says:
    """A stand-in for the sequence model: always gives `reading`, and counts its calls."""

    def __init__(self, reading: sequence.Reading):
        self.reading, self.calls = reading, 0

    def __call__(self, ink):
        self.calls += 1
        return self.reading


def test_the_likeliest_reading_settles_the_cuts_and_nothing_refused_is_taken():
    """Three pieces, "1", "2", "6"; the lattice merges the 2 and the 6 into one sure 2 ("12", score 3.5 against
    "126"'s 2.0). A sequence model sure of "126" settles it; one that agrees, or doubts, or reads a text no cuts
    spell, leaves it; a reading with a refused digit is never taken, and the lattice's own never given up."""
    candidates = {(0, 1): one_hot(1), (1, 2): one_hot(2), (2, 3): one_hot(6), (1, 3): one_hot(2, sure=0.99)}
    lattice, _ = lattice_of(candidates, 3)
    scores = {(0, 1): 1.0, (1, 2): 0.5, (2, 3): 0.5, (1, 3): 2.5}
    chosen = multidigit._choose(lattice, scores)
    assert chosen == [(0, 1), (1, 3)]
    blank = sequence.BLANK
    sure = spelling(1, blank, 2, blank, 6, blank)
    assert sure.text == "126" and sure.likelihood("126") > -1e-3 > -10 > sure.likelihood("12")
    three = [(0, 1), (1, 2), (2, 3)]
    assert multidigit._settled(lattice, scores, chosen, None, Says(sure), None) == three
    assert multidigit._settled(lattice, scores, chosen, None, Says(spelling(1, blank, 2, blank)), None) == chosen
    doubt = spelling(1, blank, 2, blank, {6: 0.5, blank: 0.5}, blank)  # "126" or "12", even odds
    assert doubt.likelihood("126") == pytest.approx(doubt.likelihood("12"), abs=1e-3)
    assert multidigit._settled(lattice, scores, chosen, None, Says(doubt), None) == chosen  # margin: the lattice's
    rivals = multidigit._rivals(lattice, scores, chosen, sure, None)
    assert [(rival.text, rival.source) for rival in rivals] == [("12", "lattice"), ("126", "sequence")]
    assert rivals[1].weighed() == pytest.approx(2.0 + sequence.WEIGHT * sure.likelihood("126"))
    assert rivals[0].weighed() == pytest.approx(3.5 + sequence.WEIGHT * sure.likelihood("12") + sequence.MARGIN)
    # "129": no cuts spell it, but the lattice's best reading with one digit more, "126", is weighed too
    six_or_nine = spelling(1, blank, 2, blank, {9: 0.6, 6: 0.4}, blank)
    assert six_or_nine.text == "129"
    assert [(rival.text, rival.source) for rival in multidigit._rivals(lattice, scores, chosen, six_or_nine, None)] \
        == [("12", "lattice"), ("126", "more")]
    assert multidigit._settled(lattice, scores, chosen, None, Says(six_or_nine), None) == three
    lattice["digit_scores"] = np.array([0.9, 0.9, 0.1, 0.9])  # the 6 alone is not a digit: the lattice's stands
    assert multidigit._settled(lattice, scores, chosen, None, Says(sure), 0.5) == chosen
    lattice["digit_scores"] = np.array([0.1, 0.9, 0.9, 0.9])  # the lattice's own 1 is refused: it stands, unweighed
    says = Says(sure)
    assert multidigit._settled(lattice, scores, chosen, None, says, 0.5) == chosen and says.calls == 0
    assert multidigit._settled(lattice, scores, chosen, None, Says(sure), None) == three  # refusal off: settled


@pytest.fixture(scope="module")
def shipped():
    return Predictor(runs.shipped_model())


def test_the_shipped_model_carries_its_sequence_reader(shipped, tmp_path):
    assert isinstance(shipped.sequence, sequence.SequenceReader)
    assert Predictor(runs.shipped_model(), sequence=False).sequence is None
    copy = tmp_path / "shipped"
    shutil.copytree(runs.SHIPPED_DIR, copy)
    with open(copy / "sequence.onnx", "r+b") as damaged:
        damaged.seek(200)
        damaged.write(b"\0" * 16)
    with pytest.raises(ValueError, match="sequence model .* fails its SHA-256 check") as error:
        Predictor(copy / "model.onnx")
    assert "\n" not in str(error.value)
    (copy / "sequence.onnx").unlink()
    with pytest.raises(ValueError, match="sequence model .* is missing"):
        Predictor(copy / "model.onnx")
    card = json.loads((copy / "card.json").read_text())
    del card["sequence"]
    (copy / "card.json").write_text(json.dumps(card))
    assert Predictor(copy / "model.onnx").sequence is None  # a card without one: the lattice alone
    with pytest.raises(ValueError, match="not a digits sequence model"):
        sequence.SequenceReader(copy / "model.onnx").load()


def test_the_shipped_sequence_reader_reads_a_written_number(shipped):
    """The real sequence model on MNIST test digits written apart: it reads the number, surely."""
    from test_multidigit import strip

    from digits import data

    dataset = data.load_dataset("mnist")
    first = {digit: dataset.x_test[int(np.flatnonzero(dataset.y_test == digit)[0])] for digit in range(10)}
    found = shipped.sequence(images.analyse(strip([first[digit] for digit in (2, 0, 2, 4)])))
    assert found.text == "2024" and found.sure > 0.5
    assert found.likelihood("2024") > max(found.likelihood(text) for text in ("224", "20224", "2074", "204"))
    assert reading.read(strip([first[digit] for digit in (3, 1, 5)]), "number", shipped).number == "315"
