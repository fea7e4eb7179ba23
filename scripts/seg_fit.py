"""Fit and compare segment scorers offline on lattices cached by scripts/seg_eval.py (strips of MNIST training
digits): the hand-weighted score of `multidigit._recognise` against a logistic regression (L2, numpy/scipy) of
"this candidate is one true digit" on the candidate's features (`segment_features`: the classifier's answer,
size, cut and join prices, ink touching the neighbours at its edges, the hand score), used alone or added to the
hand score with a constant per digit, and against an averaged structured perceptron over the same features.

    for seed in 7000 7001 7100 7101; do for kind in touching mixed; do
        python scripts/seg_eval.py cache --seed $seed --kind $kind --count 300 --out CACHE/$seed${kind:0:1}.npy; done; done
    python scripts/seg_fit.py --fit 7100t 7101t 7100m 7101m --test 7000t 7001t 7000m 7001m --cache CACHE

Result (2026-12-02, shipped model; fitted on seeds 7100/7101, 300 touching + 300 mixed strips each, tested on
7000/7001): the hand score reads touching strips 86.0% / 86.3% and mixed ones 96.0% / 97.0%; the best learned
scorers only +0.5 to +0.7 points on touching strips (logistic log-odds + 2 per digit alone: 86.0 / 87.3, mixed
96.7 / 96.7; hand + 0.5 x (log-odds + 3): 86.7 / 87.0, mixed 96.3 / 96.3); the perceptron overfits (85.0 / 86.0,
mixed 96.0 / 95.0). Not adopted: the hand score stays. Of 600 fitting touching strips 506 read whole (hand);
38 of the rest had the true cut among the candidates and lost, 36 could read right only through a wrong cut,
20 had no way through the candidates that reads right.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from scipy import optimize

from digits import multidigit

SHARE, COVER = 0.85, 0.8  # a candidate is one true digit: this share of its ink from one digit, this much of it


def segment_features(lattice: dict) -> np.ndarray:
    """(K, F) what each candidate of a `_lattice` looks like, in its keys' order."""
    cut, join_cost, line, rows = lattice["cut"], lattice["join_cost"], lattice["line"], []
    for key, probability in zip(lattice["keys"], lattice["probabilities"]):
        first, stop = key
        box = lattice["boxes"][key]
        ordered = np.sort(probability)[::-1]
        sure = min(max(float(ordered[0]), 1e-9), 1 - 1e-9)
        odds = min(multidigit.SURE, math.log(sure / (1 - sure)))
        second = math.log(max(float(ordered[1]), 1e-6))
        height, width = (box[2] - box[0]) / line, (box[3] - box[1]) / line
        one = float(probability.argmax() == 1)
        beside = float(cut[first] > 0 or cut[stop] > 0)
        edge_left, edge_right = lattice["edges"][key]
        rows.append([1.0, odds, max(odds, 0.0) ** 2 / multidigit.SURE, second, one, one * beside, one * odds,
                     height, width, max(0.0, 0.5 - height), max(0.0, multidigit.SIZE_OK - max(height, width)),
                     max(0.0, width - multidigit.WIDTH_OK), cut[first], cut[stop], float(cut[first] > 0), float(cut[stop] > 0),
                     sum(join_cost[first + 1:stop]), stop - first, edge_left, edge_right,
                     edge_left * float(cut[first] > 0), edge_right * float(cut[stop] > 0)]
                    + [float(probability.argmax() == digit) for digit in (0, 2, 3, 4, 5, 6, 7, 8, 9)])
    return np.asarray(rows, np.float64).reshape(-1, 31)


def load(path):
    return list(np.load(path, allow_pickle=True))


def features(lattice):
    """The candidates' features (`segment_features`) and, last, their hand-weighted score."""
    scores = multidigit._hand_scores(lattice)
    return np.c_[segment_features(lattice), [scores[key] for key in lattice["keys"]]]


def labels(entry):
    return (entry["share"] >= SHARE) & (entry["cover"] >= COVER)


def read_text(lattice, chosen):
    read = dict(zip(lattice["keys"], lattice["probabilities"]))
    return "".join(str(int(read[key].argmax())) for key in chosen)


def hand(lattice):
    return multidigit._hand_scores(lattice)


def rate(entries, scorer):
    right = []
    for entry in entries:
        lattice = entry["lattice"]
        if lattice is None:
            right.append(entry["truth"] == "")
            continue
        right.append(read_text(lattice, multidigit._choose(lattice, scorer(entry))) == entry["truth"])
    return float(np.mean(right))


def fit(x, y, l2=1.0):
    mean, scale = x.mean(0), x.std(0) + 1e-9
    mean[0], scale[0] = 0.0, 1.0  # the constant column
    z = (x - mean) / scale
    def loss(w):
        t = z @ w
        value = np.logaddexp(0, t).sum() - t[y].sum() + 0.5 * l2 * (w[1:] ** 2).sum()
        p = 1 / (1 + np.exp(-t))
        grad = z.T @ (p - y) + l2 * np.r_[0, w[1:]]
        return value, grad
    w = optimize.minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B").x
    coef = w / scale
    coef[0] = w[0] - (w[1:] * mean[1:] / scale[1:]).sum()
    return coef


def target(entry, scores=None):
    """The best-scoring candidates (by `scores`, else by how cleanly each holds one true digit) that read the
    truth, skipping pieces as `multidigit._choose` may; None if no way through the lattice reads it."""
    lattice, truth = entry["lattice"], entry["truth"]
    if scores is None:
        scores = dict(zip(lattice["keys"], entry["share"] * entry["cover"]))
    text = {key: str(int(p.argmax())) for key, p in zip(lattice["keys"], lattice["probabilities"])}
    count, small, digits = lattice["count"], lattice["small"], len(truth)
    best = np.full((count + 1, digits + 1), -math.inf)
    best[0, 0], back = 0.0, {}
    for stop in range(1, count + 1):
        for done in range(digits + 1):
            if done:
                for start in range(max(0, stop - multidigit.MAX_JOIN), stop):
                    key = (start, stop)
                    if key in scores and text[key] == truth[done - 1] and best[start, done - 1] + scores[key] > best[stop, done]:
                        best[stop, done], back[stop, done] = best[start, done - 1] + scores[key], (start, done - 1)
            skip = -0.5 if small[stop - 1] else -5.0
            if best[stop - 1, done] + skip > best[stop, done]:
                best[stop, done], back[stop, done] = best[stop - 1, done] + skip, (stop - 1, done)
    if best[count, digits] == -math.inf:
        return None
    chosen, state = [], (count, digits)
    while state[0] > 0:
        previous = back[state]
        if previous[1] < state[1]:
            chosen.append((previous[0], state[0]))
        state = previous
    return chosen[::-1]


def perceptron(entries, coef, epochs=8, step=0.05, seed=0):
    """Averaged structured perceptron on whole readings: score(candidate) = features @ coef; where the
    programme's best reading is wrong and the true one is in the lattice, move coef toward the true one's
    features and away from the chosen one's."""
    usable = [(entry, {key: i for i, key in enumerate(entry["lattice"]["keys"])}, features(entry["lattice"]), t)
              for entry in entries if entry["lattice"] is not None and (t := target(entry)) is not None]
    rng = np.random.default_rng(seed)
    coef, total, count = coef.copy(), np.zeros_like(coef), 0
    for epoch in range(epochs):
        wrong = 0
        for position in rng.permutation(len(usable)):
            entry, index, x, truth = usable[position]
            lattice = entry["lattice"]
            scores = dict(zip(lattice["keys"], x @ coef))
            chosen = multidigit._choose(lattice, scores)
            if read_text(lattice, chosen) != entry["truth"]:
                wrong += 1
                truth = target(entry, scores)
                coef += step * (x[[index[k] for k in truth]].sum(0) - x[[index[k] for k in chosen]].sum(0))
            total += coef
            count += 1
        print("epoch", epoch, "wrong", wrong, "of", len(usable), flush=True)
    return total / count


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--fit", nargs="+", required=True)
    parser.add_argument("--test", nargs="+", required=True)
    parser.add_argument("--cache", required=True, help="folder of scripts/seg_eval.py caches, NAME.npy")
    args = parser.parse_args()
    sets = {name: load(Path(args.cache) / f"{name}.npy") for name in {*args.fit, *args.test}}
    for name in args.test:
        print(name, "hand", f"{rate(sets[name], lambda e: hand(e['lattice'])):.4f}")
    for name in args.fit:  # the oracle: labels as scores
        print(name, "hand", f"{rate(sets[name], lambda e: hand(e['lattice'])):.4f}", "oracle",
              f"{rate(sets[name], lambda e: dict(zip(e['lattice']['keys'], 2.0 * labels(e) - 1))):.4f}")
    xs, ys = [], []
    for name in args.fit:
        for entry in sets[name]:
            if entry["lattice"] is not None:
                xs.append(features(entry["lattice"]))
                ys.append(labels(entry))
    x, y = np.concatenate(xs), np.concatenate(ys)
    print("candidates", len(y), "positive", y.mean())
    coef = fit(x, y)
    print("coef", np.round(coef, 3).tolist())
    def learned(offset, weight, base):
        def scorer(entry):
            lattice = entry["lattice"]
            odds = features(lattice) @ coef + offset
            h = hand(lattice) if base else {}
            return {key: weight * o + h.get(key, 0.0) for key, o in zip(lattice["keys"], odds)}
        return scorer
    for base, weights in ((False, [1.0]), (True, [0.25, 0.5, 1.0])):
        for weight in weights:
            for offset in [-1.0, 0.0, 1.0, 2.0, 3.0]:
                fitted = [rate(sets[name], learned(offset, weight, base)) for name in args.fit]
                tested = [rate(sets[name], learned(offset, weight, base)) for name in args.test]
                print(f"base={base} weight={weight} offset={offset}: fit", np.round(fitted, 4).tolist(),
                      "test", np.round(tested, 4).tolist(), flush=True)
    start = np.zeros(x.shape[1])
    start[-1] = 1.0
    fitting = [entry for name in args.fit for entry in sets[name]]
    for step in (0.02, 0.1):
        coef = perceptron(fitting, start, step=step)
        print("perceptron step", step, "coef", np.round(coef, 3).tolist())
        def plain(entry, coef=coef):
            lattice = entry["lattice"]
            return dict(zip(lattice["keys"], features(lattice) @ coef))
        print("perceptron: fit", [round(rate(sets[name], plain), 4) for name in args.fit],
              "test", [round(rate(sets[name], plain), 4) for name in args.test], flush=True)


if __name__ == "__main__":
    main()
