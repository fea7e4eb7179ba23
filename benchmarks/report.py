"""Regenerate the README's results section from benchmarks/results/*.json (never typed by hand).

Usage: python benchmarks/report.py   (rewrites the block between the results markers in README.md)
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def machine_line(machine: dict) -> str:
    return (f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
            f"TensorFlow {machine['tensorflow']}, Keras {machine['keras']}, Python {machine['python']}, "
            f"measured {machine['measured'][:10]}")


def original_mlp(result: dict) -> list[str]:
    seeds = ", ".join(f"{run['test_accuracy']:.4f}" for run in result["runs"])
    return [
        "| model | recipe | test accuracy (mean of seeds) | per seed | training time | command |",
        "|---|---|---|---|---|---|",
        f"| `mlp` | original: 5 epochs, batch 32, Adam 1e-3 | {result['mean_test_accuracy']:.2%} | {seeds} "
        f"| {result['mean_training_seconds']:.0f} s | `python benchmarks/original_mlp.py` |",
        "",
        f"Machine: {machine_line(result['machine'])}.",
    ]


def seconds(value) -> str:
    return f"{value:.1f} s" if value is not None else "not reached"


def time_to_accuracy(result: dict) -> list[str]:
    names = {"reference": "keras-io `mnist_convnet` (reference, float32)",
             "cnn-fast": "`cnn`, `configs/cnn-fast.json`", "cnn-995": "`cnn`, `configs/cnn-995.json`",
             "cnn-fast-float32": "`cnn`, `configs/cnn-fast.json` forced to float32"}
    lines = ["**Time to accuracy** (training wall time until the official test set first reaches the target, "
             "checked every epoch; `python benchmarks/time_to_accuracy.py`):", "",
             "| run | to 99.0% | to 99.5% | final accuracy | epochs |", "|---|---|---|---|---|"]
    for name, run in result["runs"].items():
        lines.append(f"| {names.get(name, name)} | {seconds(run['seconds_to_99.0'])} | "
                     f"{seconds(run['seconds_to_99.5'])} | {run['final_test_accuracy']:.2%} | {len(run['curve'])} |")
    if result.get("speedup_to_99.0"):
        lines += ["", f"`cnn-fast` reaches 99.0% **{result['speedup_to_99.0']:.1f}x** faster than the reference, "
                      "measured side by side in the same run."]
    return lines + ["", f"Machine: {machine_line(result['machine'])}."]


def recipe(result: dict) -> tuple[str, str]:
    """The recipe file of a best_model / ensemble result, and the flag that reproduces it."""
    path = result.get("config_file", "configs/best.json")
    return path, "" if path == "configs/best.json" else f" --config {path}"


def changed_since(result: dict) -> str:
    """How the recipe file differs from the recipe the result measured ("" if it does not): a figure of a recipe
    that has changed since is labelled as the old recipe's, not passed off as the file's."""
    name = recipe(result)[0]
    path = ROOT / name
    then = result.get("config")
    now = json.loads(path.read_text()) if path.is_file() else None
    if then is None or now == then:
        return ""
    if now is None:
        return f" (measured with a recipe file that is gone: {name})"
    keys = sorted(set(then) | set(now), key=lambda key: (key not in then, key))
    def shown(config: dict, key: str) -> str:
        return json.dumps(config[key]) if key in config else "not set"
    differences = "; ".join(f"`{key}` then {shown(then, key)}, now {shown(now, key)}" for key in keys
                            if then.get(key, ...) != now.get(key, ...))
    return f" (measured before the recipe file changed: {differences}; rerun the command to measure it as it is)"


def best_model(result: dict) -> list[str]:
    seeds = ", ".join(f"{run['test_accuracy']:.2%} (seed {run['seed']})" for run in result["runs"])
    path, flag = recipe(result)
    return [f"**Best single model** (`{result['config']['model']}`, `{path}`{changed_since(result)}, "
            f"{result['device']}; "
            f"`python benchmarks/best_model.py{flag}`): mean test accuracy "
            f"**{result['mean_test_accuracy']:.2%}** over {len(result['runs'])} seeds: {seeds}; "
            f"{sum(run['training_seconds'] for run in result['runs']) / len(result['runs']) / 60:.0f} min of "
            "training each.", "",
            f"Machine: {machine_line(result['machine'])}."]


def ensemble(result: dict) -> list[str]:
    plain, tta = result["ensembles"]["plain"], result["ensembles"]["tta"]
    path, flag = recipe(result)
    return [f"**Ensemble** of the {len(result['members'])} `{path}` runs{changed_since(result)} "
            f"(`python benchmarks/ensemble.py{flag}`): "
            f"**{plain['test_accuracy']:.2%}**; with test-time augmentation (four one-pixel shifts) "
            f"**{tta['test_accuracy']:.2%}**; best member {result['best_member_accuracy']:.2%}."]


def inference(result: dict) -> list[str]:
    lines = [f"**Inference** (`{result['model']}` model, `python benchmarks/inference.py`; latency on one image, "
             "throughput on the 10,000 test images; ratios against Keras's `model.predict` in the same run):", "",
             "| backend | latency p50 | latency p99 | vs `model.predict` | throughput | vs Keras | size | accuracy |",
             "|---|---|---|---|---|---|---|---|"]
    for name, row in result["backends"].items():
        lines.append(f"| {name} | {row['latency_p50_us']:,.0f} us | {row['latency_p99_us']:,.0f} us | "
                     f"{row['latency_speedup']:,.0f}x | {row['throughput_per_s']:,.0f}/s | "
                     f"{row['throughput_ratio']:.2f}x | {row['size_bytes'] / 1024:,.0f} KiB | {row['test_accuracy']:.2%} |")
    measured = ", ".join(f"{name} {value:,.0f} us" for name, value in result["default_latencies_us"].items())
    return lines + ["", f"The Predictor's default here is **{result['default_backend']}** (measured at load: {measured}).",
                    "", f"Machine: {machine_line(result['machine'])}."]


def serve(result: dict) -> list[str]:
    lines = serve_single(result) if "servers" in result else []
    if "batched" in result:
        lines += ([""] if lines else []) + serve_batched(result["batched"])
    if "mixed" in result:
        lines += ([""] if lines else []) + serve_mixed(result["mixed"])
    return lines


def serve_mixed(mixed: dict) -> list[str]:
    lines = [f"**Mixed load** (`python benchmarks/serve.py --mixed`: {mixed['connections']} connections, "
             f"{mixed['duration_s']:.0f} s, one worker; each request drawn at random: 60% JSON `pixels`, 30% uploads of "
             "one PNG digit, 10% PNG strips of five digits read as a number):", "",
             "| requests | share | requests/s | answered 200 | 503 | 504 | p50 | p99 |", "|---|---|---|---|---|---|---|---|"]
    for kind, row in mixed["kinds"].items():
        lines.append(f"| {kind} | {mixed['mix'][kind]:.0%} | {row['requests_per_s']:,.1f} | {row['ok_share']:.1%} | "
                     f"{row['statuses'].get('503', 0)} | {row['statuses'].get('504', 0)} | {row['p50_ms']:,.0f} ms | "
                     f"{row['p99_ms']:,.0f} ms |")
    return lines + ["", f"Machine: {machine_line(mixed['machine'])}."]


def serve_batched(batched: dict) -> list[str]:
    lines = [f"**Batched requests** (`python benchmarks/serve.py`: {batched['images_per_request']} "
             f"{batched['datatype']} images per request, {batched['connections']} concurrent clients, "
             f"{batched['duration_s']:.0f} s each, one `digits serve --grpc-port` worker on loopback):", "",
             "| transport | images/s | requests/s | p99 | KiB per request | errors |", "|---|---|---|---|---|---|"]
    for name, row in batched["transports"].items():
        lines.append(f"| {name} | {row['images_per_s']:,.0f} | {row['requests_per_s']:,.1f} | {row['p99_ms']:.1f} ms "
                     f"| {row['request_bytes'] / 1024:,.0f} | {row['errors']} |")
    return lines + ["", f"Machine: {machine_line(batched['machine'])}."]


def serve_single(result: dict) -> list[str]:
    lines = [f"**Serving** (`python benchmarks/serve.py`: wrk, {result['connections']} connections, "
             f"{result['duration_s']:.0f} s each, single-image JSON `pixels` on loopback, the 2 cores shared with wrk; "
             f"load average before: {result['load_average_before'][0]:.1f}):", "",
             "| server | requests/s | p99 | errors |", "|---|---|---|---|"]
    for name, row in result["servers"].items():
        lines.append(f"| {name} | {row['requests_per_s']:,.0f} | {row['p99_ms']:.1f} ms | {row['errors']} |")
    met = ", ".join(f"{name} {'met' if ok else 'missed'}" for name, ok in result["met"].items())
    equal = ", ".join(f"{share:.0%} at {workers} worker(s)" for workers, share in result["share_at_same_workers"].items())
    tutorial = (f" and {result['speedup_vs_tutorial']:.0f}x the tutorial server" if result.get("speedup_vs_tutorial")
                else " (the tutorial server was left out: --skip-tutorial)")
    return lines + ["", f"Our service reaches {result['share_of_ceiling']:.0%} of the bare-FastAPI ceiling ({equal})"
                        f"{tutorial}. Targets: {met}.", "",
                    f"Machine: {machine_line(result['machine'])}."]


def real_images(result: dict) -> list[str]:
    kept, strips = result["kept_fraction"], result["strip_read_rate"]
    targets = result["targets"]
    recipe = f"`{result['recipe']}`" if result.get("recipe") else f"a `{result['model']}` run"

    def refusal_aside(key: str) -> list[str]:  # the row under a strip row: the same strips, refusal not counted
        return [f"| their digits all right, a piece refused as not a digit aside | {result[key]:.2%} | |"
                ] if key in result else []

    return [f"**Real images** (`python benchmarks/real_images.py`, {recipe}): the {result['samples']:,} test digits "
            "rendered as photos (dark ink on tinted paper, 40-600 px, random margins, stroke width, blur, noise, "
            "lighting gradient, JPEG) and read through `digits.images` / `digits.multidigit`:", "",
            "| measure | value | target |", "|---|---|---|",
            f"| clean test accuracy | {result['clean_accuracy']:.2%} | |",
            f"| accuracy on the rendered photos | {result['rendered_accuracy']:.2%} | |",
            f"| share of the clean accuracy kept | {kept:.2%} | >= {targets['kept_fraction']:.0%} "
            f"({'met' if kept >= targets['kept_fraction'] else 'missed'}) |",
            f"| strips of 2-6 digits read whole ({result['strips']:,}) | {strips:.2%} | >= "
            f"{targets['strip_read_rate']:.0%} ({'met' if strips >= targets['strip_read_rate'] else 'missed'}) |",
            *refusal_aside("strip_digits_right_rate"),
            f"| strips split into the right number of digits | {result['strip_count_rate']:.2%} | |",
            *([f"| strips of touching digits read whole ({result['touching_strips']:,}) | "
               f"{result['touching_read_rate']:.2%} | >= {targets['touching_read_rate']:.0%} "
               f"({'met' if result['touching_read_rate'] >= targets['touching_read_rate'] else 'missed'}) |"]
              if "touching_read_rate" in result else []),
            *refusal_aside("touching_digits_right_rate"),
            *([f"| single-digit photos read as several digits in auto mode | {result['auto_split_rate']:.2%} | <= "
               f"{targets['auto_split_rate']:.1%} ({'met' if result['auto_split_rate'] <= targets['auto_split_rate'] else 'missed'}) |"]
              if result.get("auto_split_rate") is not None else []),
            *([f"| expected calibration error, clean / rendered (15 bins) | {result['clean_ece']:.4f} / "
               f"{result['rendered_ece']:.4f} | |"] if "rendered_ece" in result else []), "",
            f"Machine: {machine_line(result['machine'])}."]


def _parameters(parameters: dict) -> str:
    """A stress condition's parameters in a table cell: `shear 0.45, gaps 3-4, filters nearest/bicubic`."""
    def shown(value) -> str:
        if isinstance(value, list):
            if value and isinstance(value[0], list):
                return f"{len(value)} kinds"
            return ("/" if any(isinstance(item, str) for item in value) else "-").join(map(shown, value))
        return value if isinstance(value, str) else f"{value:g}"

    return ", ".join(f"{key.replace('_', ' ')} {shown(value)}" for key, value in parameters.items()) or "as rendered"


def stress(result: dict) -> list[str]:
    labels, baseline, reader = list(result["models"]), result["baseline"], result["reader"]
    recipes = ", ".join(f"`{label}` " + (f"`{model['recipe']}`" + changed_since({"config_file": model["recipe"],
                                                                                 "config": model.get("config")})
                                         if model.get("recipe") else f"a `{model['model']}` run")
                        for label, model in result["models"].items())
    split = "validation digits" if result.get("split") == "validation" else "test digits"
    lines = [f"**Stress** (`python benchmarks/stress.py`; {recipes}): the first {result['samples']:,} {split} "
             "rendered as photos under conditions outside what training samples, each seeded, read through "
             "`digits.images`; loss: points of accuracy lost against `clean`; target: "
             f"`{reader}` loses at most half of what `{baseline}` loses on each condition (at most 0.1 point where "
             f"`{baseline}` loses nothing):", "",
             "| condition | parameters | " + " | ".join(f"`{label}`: accuracy / loss" for label in labels)
             + " | target |", "|---|---|" + "---|" * len(labels) + "---|"]
    for name, row in result["conditions"].items():
        cells = [f"{row['accuracy'][label]:.2%}" + ("" if name == "clean" else f" / {row['loss_points'][label]:.2f}")
                 for label in labels]
        target = row["target"]
        verdict = "" if target is None else (f"{'met' if target['met'] else 'missed'} ({target['reader_loss']:.2f}, "
                                             f"allowed {target['allowed_loss']:.2f})")
        lines.append(f"| {name} | {_parameters(row['parameters'])} | " + " | ".join(cells) + f" | {verdict} |")
    checked = [row["target"]["met"] for row in result["conditions"].values() if row["target"] is not None]
    summary = (f"Target met on {sum(checked)} of {len(checked)} conditions." if checked else
               f"No target checked: the results hold no `{reader}` or no `{baseline}`.")
    soft = [f"`{label}` reads a picture whose ink is blurred by more than {model['soft_above']:g} MNIST pixels as it "
            "is (`soft_above`, chosen on validation digits by `scripts/tune_soft.py`): " + ", ".join(
                f"{name} {row['read_as_they_are'][label]:.0%}" for name, row in result["conditions"].items()
                if row.get("read_as_they_are", {}).get(label) is not None) + " of the pictures."
            for label, model in result["models"].items() if model.get("soft_above") is not None]
    unsoft = [f"`{label}`" for label, model in result["models"].items() if model.get("soft_above") is None]
    if soft and unsoft:
        soft.append(f"{', '.join(unsoft)} sharpen every picture and re-draw its strokes (no `soft_above`).")
    sheet = (["", "What the models saw, the first 12 digits per condition (`--sheet`, as prepared for a model without "
              "`soft_above`): ![stress conditions](benchmarks/results/stress.png)"]
             if (RESULTS / "stress.png").is_file() else [])
    return lines + ["", summary, *([" ".join(soft)] if soft else []), *sheet, "",
                    f"Machine: {machine_line(result['machine'])}."]



def stress_numbers(result: dict) -> list[str]:
    labels = list(result["models"])
    names = ", ".join(f"`{label}`" + (f" (`{model['recipe']}`)" if model.get("recipe") else "")
                      for label, model in result["models"].items() if not model.get("pieces_sharpened"))
    split = "validation digits" if result.get("split") == "validation" else "test digits"
    sharp = [f"`{label}`" for label, model in result["models"].items() if model.get("pieces_sharpened")]
    command = "python benchmarks/stress_numbers.py" + (" --also-sharp" if sharp else "")
    lines = [f"**Whole numbers under stress** (`{command}`; {names}): "
             f"{result['strips']:,} strips of 2-6 {split} per condition, written and photographed as "
             "`benchmarks/real_images.py` writes its strips, under the stress table's conditions (its parameters; a "
             "strip slanted or rotated one way, each digit rotated within its square), each seeded, read in number "
             "mode; read whole: the number exactly, a piece refused as not a digit counting against it; loss: points "
             "lost against `clean`:", "",
             "| condition | " + " | ".join(f"`{label}`: read whole / loss" for label in labels) + " |",
             "|---|" + "---|" * len(labels)]
    for name, row in result["conditions"].items():
        lines.append(f"| {name} | " + " | ".join(
            f"{row['read_whole'][label]:.2%}" + ("" if name == "clean" else f" / {row['loss_points'][label]:.2f}")
            for label in labels) + " |")
    soft = []
    for label, model in result["models"].items():
        if model.get("soft_above") is not None:
            blur = f"{model['pieces_soft_above']:.2g}"
            soft.append(f"`{label}` takes each candidate piece whose ink is blurred by more than {blur} MNIST "
                        f"pixel{'' if blur == '1' else 's'} as it is (its `soft_above` {model['soft_above']:g} plus "
                        "`multidigit.SOFT_MARGIN`)")
    notes = (["; ".join(soft) + "."] if soft else []) + (
        [f"{', '.join(sharp)}: the same model read again with every piece sharpened and re-drawn, as pieces were "
         "prepared before (`--also-sharp`)."] if sharp else [])
    return lines + [""] + ([" ".join(notes), ""] if notes else []) + [f"Machine: {machine_line(result['machine'])}."]


FORM_CONDITIONS = {"plain": "one digit, no lines", "box": "one digit in a printed box",
                   "underline": "one digit over a printed line", "boxes": "a number, a digit in each box of a row",
                   "line": "a number written over a printed line"}


def form_lines(result: dict) -> list[str]:
    labels = list(result["runs"])
    split = "validation digits" if result.get("split") == "validation" else "test digits"
    parameters = result["parameters"]
    lines = [f"**Digits on forms** (`python benchmarks/form_lines.py`; {', '.join(f'`{label}`' for label in labels)}):"
             f" the first {result['samples']:,} {split} and {result['numbers']:,} numbers of 2-6 of them rendered as "
             f"photos, with printed lines {parameters['line_width'][0]:g}-{parameters['line_width'][1]:g} MNIST "
             f"pixels wide ({'/'.join(parameters['colours'])}, tilted up to {parameters['tilt_degrees']:g} degrees) "
             "drawn on the paper under the pen, read in auto mode; right: the digit, or the number read whole. "
             "Each picture is read as the reading path reads it and with `images.erase_form_lines` turned off (the "
             "reading path before it):", "",
             "| picture | " + " | ".join(f"`{label}` right | without erasing" for label in labels) + " |",
             "|---|" + "---|---|" * len(labels)]
    for name, row in result["conditions"].items():
        cells = [f"{row['right'][label]['erased']:.2%} | {row['right'][label]['kept']:.2%}" for label in labels]
        lines.append(f"| {FORM_CONDITIONS.get(name, name)} ({row['count']:,}) | " + " | ".join(cells) + " |")
    sheet = (["", "The first pictures of each kind (`--sheet`): ![digits on forms](benchmarks/results/form_lines.png)"]
             if (RESULTS / "form_lines.png").is_file() else [])
    return lines + [*sheet, "", f"Machine: {machine_line(result['machine'])}."]

def printed(result: dict) -> list[str]:
    labels = list(result["runs"])
    sizes = " and ".join(str(size) for size in result["single_sizes"])
    lines = [f"**Printed digits** (`python benchmarks/printed.py --set choosing --set held-out`; "
             f"{', '.join(f'`{label}`' for label in labels)}): the ten digits alone, every font at {sizes} px, and "
             f"{result['numbers']:,} numbers of 2-8 digits (seed {result['seed']}), each in one font at "
             f"{result['number_size'][0]}-{result['number_size'][1]} px on paper with noise and a little blur, printed "
             "in Debian's fonts (no training step prints in them) and read in auto mode; right: read exactly. The "
             "`choosing` fonts judge a recipe; the `held-out` fonts are read for these figures only:", "",
             "| fonts | picture | " + " | ".join(f"`{label}`" for label in labels) + " |",
             "|---|---|" + "---|" * len(labels)]
    for name, entry in result["sets"].items():
        models = entry["models"]
        fonts = f"{name} ({len(entry['packages'])} packages, {sum(map(len, entry['packages'].values()))} fonts)"
        for title, figure in (("the ten digits alone", lambda row: row["singles"]["read_exactly"]),
                              ("its 1s alone", lambda row: row["singles"]["per_digit"]["1"]),
                              ("numbers", lambda row: row["numbers"]["read_exactly"])):
            lines.append(f"| {fonts} | {title} | " + " | ".join(f"{figure(models[label]):.2%}" for label in labels)
                         + " |")
            fonts = ""
    others = [f"`{label}`" for label in labels if label not in ("shipped", "previous")]
    if "previous" in labels:
        lines += ["", "`previous`: the model shipped before the installed one, read beside it."]
    if others:
        lines += ["", f"{', '.join(others)}: a recipe judged in the recipe table below (\"Models and recipes\"), read "
                      "here beside the shipped model, not installed."]
    return lines + ["", f"Machine: {machine_line(result['machine'])}."]


def serve_costs(result: dict) -> list[str]:
    apps, parts = result["in_process_us_per_request"], result["unavoidable_us"]
    lines = ["**Where the time goes** (`python benchmarks/serve_costs.py`: in one process without HTTP, 32 "
             "concurrent callers; then each unavoidable part of one `pixels` request timed alone):", "",
             "| in process | us per request |", "|---|---|"]
    lines += [f"| {name} | {value:.0f} |" for name, value in apps.items()]
    lines += ["", "| unavoidable work of one request | us |", "|---|---|"]
    lines += [f"| {name} | {value:.1f} |" for name, value in parts.items()]
    body = sum(value for name, value in parts.items() if not name.startswith("model"))
    http = result.get("http_ceiling_us")
    bound = (f"; over HTTP, against the ceiling's {http:.0f} us a request, at most **{result['share_bound_http']:.0%}**"
             if http else "")
    return lines + ["", "The bare endpoint never reads the body. Were everything but decoding the body and running "
                        f"the model free, our service could reach at most {result['share_bound_in_process']:.0%} of "
                        f"the ceiling's rate in process{bound}"
                        + (f"; decoding the body alone caps any service that reads it at {http / (http + body):.0%}"
                           if http else "") + ".", "",
                    f"Machine: {machine_line(result['machine'])}."]


def scores_read(result: dict) -> str:
    """What the recipes of a rejection.json refuse by, in words (results from before the energy score: none said)."""
    names = {"energy": "the energy of the logits", "max_probability": "the calibrated top probability"}
    used = {recipe.get("score", "max_probability") for recipe in result["recipes"].values()}
    return " or ".join(names[score] for score in sorted(used))


def rejection(result: dict) -> list[str]:
    targets = result["targets"]
    lines = [f"**Knowing what is not a digit** (`{result.get('command', 'python benchmarks/rejection.py')}`: each "
             "recipe trained (or each run given), then read at its stored operating point, fitted on its validation "
             "split; a family's share refused counts pictures with no ink as refused; AUROC of the score each reads "
             f"by ({scores_read(result)}), digits against the family):", ""]
    names = list(result["recipes"])
    lines += ["| | " + " | ".join(f"`{name}`" for name in names) + " | target |",
              "|---|" + "---|" * len(names) + "---|"]
    first = result["recipes"][names[0]]

    def row(label, cells, target=""):
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {target} |")

    row("MNIST test accuracy (all / accepted)", [f"{r['digits']['mnist-test']['accuracy']:.2%} / "
                                                 f"{r['digits']['mnist-test']['accuracy_accepted']:.2%}"
                                                 for r in result["recipes"].values()])
    for family, label, target in (("mnist-test", "MNIST test digits refused", f"<= {targets['mnist_refused']:.0%}"),
                                  ("photos", "rendered photo digits refused", f"<= {targets['photos_refused']:.0%}")):
        auto = "refused_auto" in first["digits"][family]
        row(label + ("; read in auto mode" if auto else ""),
            [f"{r['digits'][family]['refused']:.2%}" + (f"; {r['digits'][family]['refused_auto']:.2%}" if auto else "")
             for r in result["recipes"].values()], target)
    row("ECE, MNIST test / photos (15 bins)", [f"{r['digits']['mnist-test']['ece']:.4f} / {r['digits']['photos']['ece']:.4f}"
                                               for r in result["recipes"].values()], f"<= {targets['ece']}")
    for group in ("non_digits", "lookalikes"):
        for family in first[group]:
            target = ("not counted" if group == "lookalikes" else
                      f">= {targets['refused_fashion_mnist' if family == 'fashion-mnist' else 'refused_per_family']:.0%}, "
                      f"AUROC >= {targets['auroc']}")
            row(f"{family}: refused, AUROC" + ("; refused read in auto mode" if "refused_auto" in first[group][family]
                                               else ""),
                [f"{r[group][family]['refused']:.1%}, {r[group][family]['auroc_vs_mnist']:.4f}"
                 + (f"; {r[group][family]['refused_auto']:.1%}" if "refused_auto" in r[group][family] else "")
                 for r in result["recipes"].values()], target)
    row("targets met", [", ".join(name for name, ok in r["met"].items() if ok) or "none"
                        for r in result["recipes"].values()])
    unseen = ("fashion-mnist, letters-unseen and script-unseen were never seen by any training or fitting step; "
              "scribbles, shapes, symbols and silhouettes are the training families drawn with unseen seeds")
    missing = f"; missing: {'; '.join(result['missing'])}" if result.get("missing") else ""
    auto = (f" The first {result['auto']:,} pictures of each family (and of the photos) were also read as `digits "
            "predict` reads a file, in auto mode, where a shape may be cut into a number: the share answered \"not a "
            "digit\" (or no ink)." if result.get("auto") else "")
    return lines + ["", f"{result['samples']:,} images per family; {unseen}{missing}.{auto}", "",
                    f"Machine: {machine_line(result['machine'])}."]


def generated(config: dict) -> str:
    """What a recipe adds to MNIST's training digits, for the card's data line ("" for nothing)."""
    added = []
    if config.get("outlier_exposure"):
        families = ", ".join(config.get("outlier_families") or ["its default families"])
        added.append(f"{config.get('outlier_images', 0):,} generated non-digits (Outlier Exposure: {families})")
    if config.get("touching_pieces"):
        added.append(f"{config['touching_pieces']:,} digits cut out of touching numbers written with its own training "
                     "digits")
    return "".join(f", plus {item}" if index == 0 else f" and {item}" for index, item in enumerate(added))


def card_rows(card: dict) -> list[tuple[str, str]]:
    """The card's figures, (measure, value) rows."""
    fig = card["figures"]
    rows = [("MNIST test accuracy (ONNX, through the reading half)", f"{fig['mnist_test_accuracy']:.2%}"),
            ("MNIST test ECE (15 bins)", f"{fig['mnist_test_ece']:.4f}"),
            (f"rendered photos of test digits ({fig['benchmark_samples']['photos']:,}): accuracy",
             f"{fig['photos_accuracy']:.2%}"),
            ("rendered photos: ECE", f"{fig['photos_ece']:.4f}"),
            (f"whole-number strips read whole ({fig['benchmark_samples']['strips']:,}"
             + ("; a piece refused as not a digit counts against" if "strips_digits_right" in fig else "") + ")",
             f"{fig['strips_read_whole']:.2%}"),
            *([("strips of touching digits read whole", f"{fig['touching_strips_read_whole']:.2%}")]
              if "touching_strips_read_whole" in fig else []),
            *([("strips (touching strips) whose digits all read right, refusal aside",
                f"{fig['strips_digits_right']:.2%} ({fig['touching_strips_digits_right']:.2%})")]
              if "strips_digits_right" in fig else []),
            *([("rendered photos of one digit read as several (auto mode)",
                f"{fig['single_digits_split_in_auto_mode']:.2%}")]
              if fig.get("single_digits_split_in_auto_mode") is not None else []),
            ("MNIST test digits refused as not a digit", f"{fig['mnist_refused']:.2%}"),
            ("rendered photos refused as not a digit", f"{fig['photos_refused']:.2%}")]
    auto = fig.get("non_digits_refused_auto", {})
    if auto:
        rows.append((f"rendered photos refused, read in auto mode ({fig['benchmark_samples']['rejection_auto']:,})",
                     f"{fig['photos_refused_auto']:.2%}"))
    rows += [(f"non-digits refused: {name} (AUROC)" + ("; read in auto mode" if auto else ""),
              f"{share:.1%} ({fig['non_digits_auroc'][name]:.4f})" + (f"; {auto[name]:.1%}" if name in auto else ""))
             for name, share in fig["non_digits_refused"].items()]
    return rows


def model_card(card: dict, level: int = 1, previous: dict | None = None) -> list[str]:
    """The shipped model's card in Markdown, from its card.json: MODEL_CARD.md beside the model, and the README. With
    `previous` (the card of the model shipped before it), the table holds that model's figures beside its own."""
    rows = card_rows(card)
    if previous is None:
        table = ["| measure | value |", "|---|---|", *[f"| {name} | {value} |" for name, value in rows]]
        before = []
    else:
        earlier = dict(card_rows(previous))
        table = ["| measure | value | the model before it |", "|---|---|---|",
                 *[f"| {name} | {value} | {earlier.get(name, 'not measured')} |" for name, value in rows]]
        before = ["", f"The model before it: {previous['name']} (`{previous['recipe']}`, seed {previous['seed']}), "
                      f"its own card's figures (`{PREVIOUS_CARD.relative_to(ROOT)}`), measured the same way."]
    lines = [f"{'#' * level} Model card: {card['name']}", "",
             "The pretrained reader `pip install digits` carries: what `digits predict`, `digits.read` and "
             "`digits serve` use when no run is named and `runs/` holds none.", "",
             f"- **Model**: {model_line(card)}, {card['parameters']:,} parameters; file `{card['file']}` "
             f"({card['size_bytes'] / 2**20:.1f} MiB, ONNX), SHA-256 `{card['sha256']}`",
             *training_lines(card),
             f"- **Rebuilt with**: `{card['rebuild']}`",
             f"- **Data**: MNIST training set, {card['dataset']['checksum'][:16]}... (SHA-256 over the IDX files' "
             f"SHA-256s){generated(card['config'])}; no other real data",
             f"- **Calibration**: temperature {card['calibration']['temperature']:.3f}; {operating_point(card)} "
             "(fitted on the validation split)" + soft_line(card['calibration']),
             *sequence_line(card),
             f"- **Built**: {card['created']} on {card['machine']['cpu']}, {card['machine']['cores']} cores, "
             f"TensorFlow {card['machine']['tensorflow']}, Keras {card['machine']['keras']}", "",
             *table, *before, "",
             "Figures from `benchmarks/real_images.py` and `benchmarks/rejection.py` run on this file; "
             "`python scripts/ship_model.py` reruns them all.", ""]
    return lines


def member_recipes(card: dict) -> list[str]:
    """Each network's recipe file: the card's one, or each ensemble member's (cards before members had recipes of
    their own: the card's)."""
    return [member.get("recipe", card["recipe"]) for member in card.get("members", [card])]


def model_line(card: dict) -> str:
    """The card's model: one network, or an ensemble of several (ship_model --add-member)."""
    members = card.get("members")
    if not members:
        return f"`{card['config']['model']}`"
    recipes = set(member_recipes(card))
    share = members[-1].get("share")  # ship_model --member-weight: the last member's share of the logits
    return (f"an ensemble of {len(members)} `{card['config']['model']}` networks "
            f"({'one recipe, other seeds' if len(recipes) == 1 else f'{len(recipes)} recipes'}) whose "
            + ("logits are averaged" if share is None else
               f"logits are averaged with weights {1 - share:g} and {share:g} (the last member's)")
            + " (`digits.export.average_onnx`)")


def training_lines(card: dict) -> list[str]:
    """The card's recipe and training commands: one, or one per ensemble member."""
    members = card.get("members")
    if not members:
        return [f"- **Recipe**: `{card['recipe']}`, seed {card['seed']}",
                f"- **Trained with**: `{card['command']}` ({card['training_seconds'] / 60:.0f} min)"]
    recipes = member_recipes(card)
    if len(set(recipes)) > 1:  # members of several recipes (ship_model --config ... --add-member): each its own
        return ["- **Recipes**: " + "; ".join(f"`{recipe}`, seed {member['seed']}"
                                               for recipe, member in zip(recipes, members)),
                f"- **Trained with**: {trained_commands(members)}"]
    seeds = ", ".join(str(member["seed"]) for member in members)
    return [f"- **Recipe**: `{card['recipe']}`, seeds {seeds}", f"- **Trained with**: {trained_commands(members)}"]


def trained_commands(members: list[dict]) -> str:
    """Each ensemble member's training command, its time, machine and test accuracy alone."""
    return "; ".join(f"`{member['command']}` ("
                     + (f"{member['training_seconds'] / 60:.0f} min" if member.get("training_seconds")
                        else "time not recorded")
                     + (f" on {member['trained_on']}" if member.get("trained_on") else "")
                     + f", test accuracy {member['training_test_accuracy']:.2%} alone)" for member in members)


def sequence_line(card: dict) -> list[str]:
    """The card's sequence model (digits.sequence), in one line; none without one."""
    entry = card.get("sequence")
    if not entry:
        return []
    made = "; made with " + " && ".join(f"`{command}`" for command in entry["commands"]) if entry.get("commands") else ""
    kept = (f"; {card['remeasured']['created'][:10]}: {card['remeasured']['what']} (`{card['remeasured']['command']}`)"
            if "remeasured" in card else "")
    return [f"- **Sequence model**: `{entry['file']}`, {entry['parameters']:,} parameters "
            f"({entry['size_bytes'] / 2**20:.1f} MiB), SHA-256 `{entry['sha256']}`: reads a number whole and settles "
            f"its cuts{how(entry)} (`digits.sequence`){made}{kept}"]


def how(entry: dict) -> str:
    """How reading weighs the card's sequence model: the rule it was measured with."""
    if "sure" in entry:  # cards of 2026-12-05: its text where at least this sure
        return f" where it is at least {entry['sure']} sure"
    return (f": each rival reading weighs its lattice score plus {entry['weight']} times the model's "
            f"log-likelihood, the lattice's own {entry['margin']} more")


def soft_line(fitted: dict) -> str:
    """The card's soft_above, if it has one (scripts/tune_soft.py)."""
    if fitted.get("soft_above") is None:
        return ""
    from digits import multidigit

    pieces = multidigit.pieces_soft_above(fitted["soft_above"])
    return (f"; a digit whose ink is blurred by more than {fitted['soft_above']:g} MNIST pixels (far off, enlarged "
            "from few pixels, out of focus) is read as it is, not sharpened (chosen on validation digits by "
            f"`scripts/tune_soft.py`), a piece of a number above {pieces:.2g} (plus `multidigit.SOFT_MARGIN`)")


def operating_point(card: dict) -> str:
    """The card's not-a-digit rule in words."""
    fitted = card["calibration"]
    if fitted.get("score") == "energy":
        return (f"not a digit below an energy T log sum exp(z / T) of {fitted['energy_below']:.3f} (a calibrated "
                f"chance of a digit of {fitted['reject_below']:.2f}; a copy without logits: below a top probability "
                f"of {fitted['max_probability_below']:.3f})" + (
                    f"; refit {card['refit']['created'][:10]}: {card['refit']['what']}" if "refit" in card else ""))
    return f"not-a-digit below a calibrated top probability of {fitted['reject_below']:.3f}"


def footprint(result: dict) -> list[str]:
    one, folder, served, targets = result["one_shot"], result["folder"], result["service"], result["targets"]
    met = result["met"]

    def mark(key: str) -> str:
        return " (met)" if met.get(key) else " (missed)"

    lines = [f"**Reading right after install** (`python benchmarks/footprint.py`, the shipped model {result['model']}, "
             "whole processes side by side):", "",
             "| | digits | Tesseract | target |", "|---|---|---|---|"]
    tesseract = one.get("tesseract")
    lines.append(f"| one photo: wall time (median of {len(one['digits']['walls'])}) | {one['digits']['wall_seconds']:.2f} s "
                 f"| {tesseract['wall_seconds']:.2f} s | <= {targets['one_shot_wall_ratio']:g}x Tesseract: "
                 f"{one['wall_ratio']:.1f}x{mark('one_shot_wall_ratio')} |" if tesseract else
                 f"| one photo: wall time | {one['digits']['wall_seconds']:.2f} s | not installed | |")
    lines.append(f"| one photo: peak memory | {one['digits']['peak_mib']:.0f} MiB | "
                 f"{tesseract['peak_mib']:.0f} MiB | <= {targets['one_shot_peak_mib']:.0f} MiB"
                 f"{mark('one_shot_peak_mib')} |" if tesseract else
                 f"| one photo: peak memory | {one['digits']['peak_mib']:.0f} MiB | | |")
    other = folder.get("tesseract")
    lines.append(f"| a folder of {folder['photos']:,} photos (`--mode digit`): images/s | {folder['digits']['images_per_second']:.0f} | "
                 + (f"{other['images_per_second']:.1f} | |" if other else "not installed | |"))
    lines.append(f"| the same photos: read right | {folder['digits']['accuracy']:.1%} | "
                 + (f"{other['accuracy']:.1%} | |" if other else " | |"))
    auto = folder.get("digits_auto")  # measured since 2026-12-05
    if auto:
        lines.append(f"| the same photos in auto mode (a digit or a number): images/s, read right | "
                     f"{auto['images_per_second']:.0f}, {auto['accuracy']:.1%} | | |")
    shared = folder.get("digits_auto_workers")  # measured since 2026-12-06
    if shared:
        lines.append(f"| the same, `--workers {folder['workers']}` (a process per core): images/s, read right | "
                     f"{shared['images_per_second']:.0f}, {shared['accuracy']:.1%} | | |")
    if served:
        lines += [f"| `digits serve`: start to ready | {served['ready_seconds']:.2f} s | | <= {targets['ready_seconds']:g} s"
                  f"{mark('ready_seconds')} |",
                  f"| `digits serve`: worker memory, peak after {served['requests']:,} requests | "
                  f"{served['peak_mib']:.0f} MiB | | <= {targets['worker_mib']:.0f} MiB{mark('worker_mib')} |"]
    missing = f" Missing: {'; '.join(result['missing'])}." if result.get("missing") else ""
    compiled = (" The package's modules are byte-compiled before timing, as an install from a wheel leaves them."
                if result.get("bytecode", {}).get("compiled") else "")  # recorded since 2026-12-06
    return lines + ["", f"The photos are MNIST test digits rendered by `benchmarks/real_images.py`; Tesseract runs "
                        f"`tesseract PHOTO - --psm 10` (one character), over a file list for the folder.{compiled}"
                        f"{missing}", "",
                    f"Machine: {machine_line(result['machine'])}."]


def battery(result: dict) -> list[str]:
    statuses = ", ".join(f"{count} x {status}" for status, count in result["by_status"].items())
    rss, log = result["rss_mib"], result["log"]
    lines = [f"**Bad HTTP inputs** (`{result['command']}`: {result['cases']} cases over raw loopback sockets, every "
             "route and protocol: wrong methods, unknown models and versions, malformed JSON, wrong shapes, dtypes, "
             "NaN, non-images, decompression bombs, truncated multipart, broken framing, odd headers and query "
             "parameters, clients hanging up mid-body, and issue 15's inputs at full size):", "",
             "| measure | value | target |", "|---|---|---|",
             f"| answers >= 500 | {result['server_errors']} | 0 |",
             f"| tracebacks in the server log | {log['tracebacks']} ({log['lines']} lines in all; "
             f"{log['hang_up_lines']} one-line hang-ups) | 0 |",
             f"| server alive and answering after | {'yes' if result['alive_after'] else 'no'} | yes |",
             f"| largest answer | {result['max_answer_bytes']:,} bytes | bounded |",
             f"| server RSS before / after (peak) | {rss['before']:.0f} / {rss['after']:.0f} MiB "
             f"({rss['peak']:.0f}) | bounded |",
             f"| answers by status (a client that hangs up gets none) | {statuses} | |"]
    if result.get("peak_raised_by"):
        lines += ["", "The peak comes from " + ", ".join(f"{row['case']} (+{row['mib']:.0f} MiB)"
                                                   for row in result["peak_raised_by"][:2]) + "."]
    if result["problems"]:
        lines += ["", "Problems: " + "; ".join(result["problems"]) + "."]
    heavy = result.get("heavy_json")
    if heavy:
        lines += ["", f"What a small request (one 28x28 image) waits while {heavy['clients']} clients each send a "
                      "16 MB JSON body at once:", "", "| while | answers to the heavy bodies | p50 | p99 | max |",
                  "|---|---|---|---|---|"]
        for name, row in heavy.items():
            if name == "clients":
                continue
            answers = ", ".join(f"{count} x {status}" for status, count in
                                sorted(Counter(map(str, row.get("statuses", []))).items()))
            lines.append(f"| {name} | {answers} | {row['p50_ms']} ms | {row['p99_ms']} ms | {row['max_ms']} ms |")
        lines += ["", "A body with more values than a batch holds is refused before it is parsed; the bodies that are "
                      "answered ask the model for a full batch each, and the small request queues behind that work."]
    return lines + ["", f"Machine: {machine_line(result['machine'])}."]


SECTIONS = {"original_mlp": original_mlp, "time_to_accuracy": time_to_accuracy, "best_model": best_model,
            "ensemble": ensemble, "inference": inference, "real_images": real_images, "stress": stress,
            "stress_numbers": stress_numbers, "form_lines": form_lines, "printed": printed,
            "rejection": rejection, "serve": serve, "serve_costs": serve_costs, "footprint": footprint, "battery": battery}
CARD = ROOT / "src" / "digits" / "shipped" / "card.json"
PREVIOUS_CARD = RESULTS / "shipped_card_previous.json"  # the card of the model shipped before it, kept when it changed
CARD_START, CARD_END = "<!-- card:start -->", "<!-- card:end -->"


def render() -> str:
    lines = []
    for name, section in SECTIONS.items():
        paths = [RESULTS / f"{name}.json"]
        if name in ("best_model", "ensemble", "rejection"):  # other recipes' results: best_model_<recipe>.json
            paths += sorted(RESULTS.glob(f"{name}_*.json"))
        for path in paths:
            result = json.loads(path.read_text()) if path.is_file() else None
            if result is not None and result.get("benchmark", name) == name:  # not rejection_scores.json, say
                lines += section(result) + [""]
    return "\n".join(lines).strip() or "No results yet: run the scripts in benchmarks/."


def render_card() -> str:
    if not CARD.is_file():
        return "No shipped model in this tree yet: build it with `python scripts/ship_model.py`."
    previous = json.loads(PREVIOUS_CARD.read_text()) if PREVIOUS_CARD.is_file() else None
    return "\n".join(model_card(json.loads(CARD.read_text()), level=3, previous=previous)).strip()


def replace_block(text: str, start: str, end: str, content: str) -> str:
    block = f"{start}\n{content}\n{end}"
    updated, count = re.subn(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.DOTALL)
    if count != 1:
        raise SystemExit(f"README.md needs exactly one {start} ... {end} block, found {count}")
    return updated


def main() -> None:
    readme = ROOT / "README.md"
    text = replace_block(readme.read_text(), START, END, render())
    readme.write_text(replace_block(text, CARD_START, CARD_END, render_card()))
    print(f"updated the results and the model card in {readme}")


if __name__ == "__main__":
    main()
