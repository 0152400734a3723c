"""The run's HTML page: a verdict table on top, then each evaluator's own section, then provenance.

Rendered from the files in the run folder (run.json, metrics.json, synthetic.csv) and the installed
evaluator plugins, so ``synthwear report RUN_DIR`` rebuilds it at any time without the model or the
real data. The page is self-contained: plotly's JavaScript is embedded once and works offline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd
from plotly.offline import get_plotlyjs

from synthwear.errors import SynthwearError, one_line
from synthwear.evaluation import failure, failures, unavailable_reasons
from synthwear.fidelity_scale import REFERENCES, VERDICTS
from synthwear.plugins import Registry, default_registry
from synthwear.report.html import REFERENCE_LABELS, fmt, table
from synthwear.run_folder import check_cohort_file
from synthwear.tables import atomic_path

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1040px;color:#222;line-height:1.45;padding:0 1rem}
h1{margin-bottom:.2rem} .sub{color:#666;margin-top:0} nav{font-size:.9rem;margin:.8rem 0 1.2rem}
nav a{margin-right:.9rem} section{margin-top:2rem}
table{border-collapse:collapse;margin:.6rem 0 1.4rem;font-size:.92rem}
th,td{border-bottom:1px solid #ddd;padding:.3rem .7rem;text-align:right} th:first-child,td:first-child{text-align:left}
th{background:#f4f4f4} .better{color:#16794c;font-weight:600} .worse{color:#b3261e;font-weight:600}
.good,.fair,.poor{display:inline-block;min-width:3.2rem;text-align:center;border-radius:3px;padding:0 .4rem;font-weight:600}
.good{background:#d8f0e3;color:#16794c} .fair{background:#fdf0cf;color:#8a5a00} .poor{background:#f9dcda;color:#b3261e}
.note{color:#555;font-size:.9rem} .failed{color:#b3261e;font-weight:600}
code,pre{background:#f6f6f6;padding:.1rem .3rem;border-radius:3px} pre{padding:.6rem;overflow:auto;font-size:.8rem}
"""


def verdict_section(metrics: dict[str, Any]) -> str:
    """Every row that any evaluator filed under ``verdict``, with the ceiling and floor beside it."""
    rows, counts = [], dict.fromkeys(VERDICTS, 0)
    for name, results in metrics.items():
        for row in results.get("verdict", []) if isinstance(results, dict) else []:
            word = row.get("verdict")
            counts[word] = counts.get(word, 0) + 1
            arrow = "↑" if row["higher_is_better"] else "↓"
            rows.append(
                [
                    f"{escape(name)}: {escape(row['metric'])} {arrow}",
                    fmt(row.get("channel") or "all"),
                    fmt(row["synthetic"]),
                    fmt(row["ceiling"]),
                    fmt(row["floor"]),
                    f'<span class="{escape(word)}">{escape(word)}</span>'
                    if word
                    else f"<span class='note'>{escape(row.get('unavailable', '–'))}</span>",
                ]
            )
    if not rows:
        return ""
    tally = ", ".join(f"{counts[w]} {w}" for w in VERDICTS)
    return (
        "<section id='verdict'><h2>Verdict</h2><p>Each metric compares a cohort with the real <b>holdout</b> persons "
        "(never trained on). <b>Ceiling</b>: the real training persons scored the same way, as close as other real "
        "people get. <b>Floor</b>: independent days, each value drawn alone from the training persons' values of that "
        "channel (right marginals, no structure). ↑ higher is better, ↓ lower is better. The word says how far the "
        "synthetic score falls short of the ceiling, in thirds of the ceiling–floor gap (see docs/fidelity.md). "
        f"Here: {tally}.</p>"
        + table(["check", "channel", *(REFERENCE_LABELS[name] for name in REFERENCES), "verdict"], rows)
        + "</section>"
    )


def evaluator_section(name: str, results: Any, options: dict[str, Any], run: dict, registry: Registry) -> str:
    """The evaluator's own ``report_section`` where it has one, else its results as JSON; a failed
    evaluator, or a section that fails to render, is a visible reason rather than a lost page."""
    cause = failures({name: results}).get(name)
    reason = unavailable_reasons({name: results}).get(name)
    if cause or reason:
        rerun = " Rerun it with <code>synthwear evaluate</code> once the cause is fixed." if cause else ""
        return (
            f"<section id='ev-{escape(name)}'><h2>{escape(name)}</h2><p class='failed'>Could not be computed, "
            f"because {escape(cause or reason)}.{rerun}</p></section>"
        )
    try:
        evaluator = registry.build("evaluators", name, dict(options))
    except SynthwearError as err:
        evaluator, note = None, f"<p class='note'>Shown as data: {escape(str(err))}.</p>"
    else:
        note = ""
    if evaluator is not None and hasattr(evaluator, "report_section"):
        try:
            body = evaluator.report_section(results, run)
        except Exception as err:
            body = (
                f"<h2>{escape(name)}</h2><p class='failed'>Its section could not be shown, because "
                f"{escape(failure(name, err)['error'])}.</p><pre>{escape(json.dumps(results, indent=2))}</pre>"
            )
    else:
        body = f"<h2>{escape(name)}</h2>{note}<pre>{escape(json.dumps(results, indent=2))}</pre>"
    return f"<section id='ev-{escape(name)}'>{body}</section>"


def synthetic_section(synthetic: pd.DataFrame, channels: list[str]) -> str:
    stats = synthetic[channels].describe().T
    rows = [
        [
            escape(c),
            fmt(stats.loc[c, "mean"], 1),
            fmt(stats.loc[c, "std"], 1),
            fmt(stats.loc[c, "min"], 1),
            fmt(stats.loc[c, "max"], 1),
        ]
        for c in channels
    ]
    return (
        f"<section id='synthetic'><h2>Synthetic cohort</h2><p>{synthetic['person_id'].nunique():,} persons × "
        f"{synthetic.groupby('person_id').size().max()} days.</p>"
        + table(["channel", "mean", "sd", "min", "max"], rows)
        + "</section>"
    )


def candidates_line(candidates: dict | None) -> str:
    """Which of the recipe's trainings was kept, and every one's validation score (the seconds to
    train count them all)."""
    if not candidates:
        return "one"
    scores = ", ".join(fmt(c["validation_discriminative"]) for c in candidates["trainings"])
    return (
        f"{len(candidates['trainings'])} seeds; kept training {candidates['kept']}, the one the validation persons "
        f"told apart least (discriminative {scores})"
    )


def training_section(run: dict) -> str:
    training, windows, timings = run["training"], run["windows"]["train"], run["timings_seconds"]
    return (
        "<section id='training'><h2>Training</h2>"
        + table(
            ["", ""],
            [
                ["epochs run (best)", f"{training['epochs']} ({training['best_epoch']})"],
                ["stopped because", escape(training["stopped"])],
                ["best validation loss", fmt(training["best_validation_loss"])],
                ["trainings (training.candidates)", escape(candidates_line(run.get("candidates")))],
                [
                    "training windows (complete / with gaps)",
                    f"{windows['windows']:,} ({windows['complete']:,} / {windows['with_gaps']:,})",
                ],
                [
                    "persons train / validation / holdout",
                    f"{run['split']['train']} / {run['split']['validation']} / {run['split']['holdout']}",
                ],
                [
                    "seconds: train, sample, evaluate",
                    ", ".join(fmt(timings.get(k), 1) for k in ("train", "sample", "evaluate")),
                ],
                ["device", escape(run["device"])],
                ["started from", escape(base_line(run.get("base"), training["best_epoch"]))],
                ["differential privacy", escape(guarantee_line(run.get("privacy")))],
            ],
        )
        + "</section>"
    )


def base_line(base: dict[str, Any] | None, best_epoch: int) -> str:
    """Where the weights came from, and how many of them the training persons changed."""
    if not base:
        return "random weights"
    kept = "; validation kept the base's own weights" if best_epoch == 0 else ""
    return (
        f"the base {base['base']}: trained {base['train']} ({base['trained_values']:,} of {base['total_values']:,} "
        f"values; new for this model: {len(base['new'])} tensors){latent_note(base)}{kept}"
    )


def latent_note(base: dict[str, Any]) -> str:
    """The base's channels the model generates without writing them (``base.keep_channels``)."""
    latent = base.get("latent")
    return f"; generated as the base does, not written: {', '.join(latent)}" if latent else ""


def guarantee_line(privacy: dict[str, Any] | None) -> str:
    """The formal guarantee in one line, wherever the page mentions training (not only in the
    membership evaluator's section, which a recipe may leave out)."""
    if not privacy:
        return "none: trained without differential privacy"
    return (
        f"(ε = {privacy['epsilon']:.2f}, δ = {privacy['delta']:.1e}) per person, person-level DP-SGD "
        f"({privacy['accountant']} accountant, target ε {privacy['target_epsilon']:g})"
    )


def provenance_section(run: dict) -> str:
    data, recipe = run["data"], run["recipe"]
    return (
        "<section id='provenance'><h2>Data and provenance</h2>"
        + table(
            ["", ""],
            [
                ["source", escape(data["source"])],
                ["licence", fmt(data.get("licence"))],
                ["citation", fmt(data.get("citation"))],
                ["persons, person-days", f"{data['persons']:,}, {data['person_days']:,}"],
                ["fingerprint", f"<code>{escape(data['fingerprint'])}</code>"],
                ["seed", fmt(run["seed"])],
                ["versions", escape(", ".join(f"{k} {v}" for k, v in run["versions"].items()))],
            ],
        )
        + "<h3>Recipe</h3><pre>"
        + escape(json.dumps(recipe, indent=2))
        + "</pre></section>"
    )


def read_json(path: Path) -> dict[str, Any]:
    """A run folder's JSON file, or one line saying which file is missing or damaged."""
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        hint = (
            " (evaluation did not finish: run `synthwear evaluate` on the folder)"
            if path.name == "metrics.json"
            else ""
        )
        raise SynthwearError(f"{path.parent}: not a finished run folder, {path.name} is missing{hint}") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise SynthwearError(f"{path}: cannot be read as JSON ({one_line(err)})") from None
    if not isinstance(value, dict):
        raise SynthwearError(f"{path}: expected a JSON object, found {type(value).__name__}")
    return value


def record_problem(err: KeyError | TypeError) -> str:
    """What is wrong with a run's JSON file that parses but lacks what synthwear writes in it (edited by
    hand, or cut short)."""
    what = f"missing {one_line(err)}" if isinstance(err, KeyError) else f"a value of the wrong type: {one_line(err)}"
    return f"not what a synthwear run writes ({what})"


def read_run_table(path: Path) -> pd.DataFrame:
    """A run folder's table (synthetic.csv), or one line saying that it is missing or unreadable."""
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise SynthwearError(f"{path.parent}: not a finished run folder, {path.name} is missing") from None
    except (OSError, ValueError) as err:  # pandas' EmptyDataError and ParserError are ValueErrors
        raise SynthwearError(f"{path}: cannot be read ({one_line(err)})") from None


def render(run: dict[str, Any], metrics: dict[str, Any], synthetic: pd.DataFrame, registry: Registry) -> str:
    """The page for a run's record (run.json's content), its metrics and its synthetic cohort."""
    recipe = run["recipe"]
    options = {
        choice["name"]: {k: v for k, v in choice.items() if k != "name"}
        for choice in recipe["evaluation"]["evaluators"]
    }
    sections = [verdict_section(metrics)]
    sections += [
        evaluator_section(name, results, options.get(name, {}), run, registry) for name, results in metrics.items()
    ]
    sections += [synthetic_section(synthetic, list(recipe["channels"])), training_section(run), provenance_section(run)]
    links = (
        ([("verdict", "Verdict")] if sections[0] else [])
        + [(f"ev-{n}", n) for n in metrics]
        + [("synthetic", "Synthetic cohort"), ("training", "Training"), ("provenance", "Data and provenance")]
    )
    nav = "<nav>" + "".join(f"<a href='#{escape(i)}'>{escape(t)}</a>" for i, t in links) + "</nav>"
    title = escape(recipe["name"])
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>synthwear · {title}</title>"
        f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head><body>"
        f"<h1>synthwear run: {title}</h1><p class='sub'>Synthetic wearable data from {escape(run['data']['source'])}"
        f" · seed {fmt(run['seed'])} · licence of the data: {fmt(run['data'].get('licence'))}"
        f" · differential privacy: {escape(guarantee_line(run.get('privacy')))}</p>"
        f"{nav}{''.join(sections)}</body></html>"
    )


def write_html(html: str, target: Path) -> Path:
    with atomic_path(Path(target)) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return Path(target)


def write_report(folder: Path) -> Path:
    """Write ``report.html`` into a run folder (atomically) and return its path."""
    folder = Path(folder)
    run, metrics = read_json(folder / "run.json"), read_json(folder / "metrics.json")
    check_cohort_file(folder, "synthetic.csv", run if isinstance(run, dict) else {})
    synthetic = read_run_table(folder / "synthetic.csv")
    try:
        lacking = [name for name in ("person_id", *run["recipe"]["channels"]) if name not in synthetic.columns]
        if lacking:
            raise SynthwearError(
                f"{folder / 'synthetic.csv'}: no column {lacking[0]!r}; a run's cohort has person_id and its channels"
            )
        html = render(run, metrics, synthetic, default_registry())
    except (KeyError, TypeError) as err:
        raise SynthwearError(f"{folder / 'run.json'}: {record_problem(err)}") from None
    return write_html(html, folder / "report.html")


@dataclass
class Report:
    """What ``Synthesizer.evaluate`` returns: each evaluator's results, and the page to read them on."""

    metrics: dict[str, Any]
    run: dict[str, Any]  # the fit's record, as run.json holds it
    synthetic: pd.DataFrame
    registry: Registry

    @property
    def failures(self) -> dict[str, str]:
        """Evaluators that could not run, with the reason (they are also marked on the page)."""
        return failures(self.metrics)

    def verdicts(self) -> pd.DataFrame:
        """Every verdict row of every evaluator: metric, channel, synthetic, ceiling, floor, verdict."""
        rows = [
            {"evaluator": name, **row}
            for name, results in self.metrics.items()
            if isinstance(results, dict)
            for row in results.get("verdict", [])
        ]
        return pd.DataFrame(rows)

    def to_html(self, path: str | Path) -> Path:
        """The self-contained page (works offline), written atomically."""
        if "data" not in self.run or "training" not in self.run:
            raise SynthwearError(
                f"{path}: the page needs the training record (fit.json beside the model), which this synthesizer lacks"
            )
        return write_html(render(self.run, self.metrics, self.synthetic, self.registry), Path(path))
