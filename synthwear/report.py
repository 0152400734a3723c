"""The run's HTML page: headline numbers beside their baselines, and where the data came from.

Rendered from the files in the run folder alone (run.json, metrics.json, synthetic.csv), so
``synthwear report RUN_DIR`` can rebuild it at any time without the model or the real data.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from synthwear.errors import SynthwearError
from synthwear.tables import atomic_path

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:960px;color:#222;line-height:1.45}
h1{margin-bottom:.2rem} .sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:.6rem 0 1.4rem;font-size:.92rem}
th,td{border-bottom:1px solid #ddd;padding:.3rem .7rem;text-align:right} th:first-child,td:first-child{text-align:left}
th{background:#f4f4f4} .better{color:#16794c;font-weight:600} .worse{color:#b3261e;font-weight:600}
code,pre{background:#f6f6f6;padding:.1rem .3rem;border-radius:3px} pre{padding:.6rem;overflow:auto;font-size:.8rem}
"""


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if abs(value) < 1000 else f"{value:,.0f}"
    return escape(str(value))


def table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def compared(model: float | None, baseline: float | None, lower_is_better: bool) -> str:
    """The model's number, marked better or worse than the baseline it sits beside."""
    if model is None or baseline is None:
        return fmt(model)
    better = model < baseline if lower_is_better else model > baseline
    return f'<span class="{"better" if better else "worse"}">{fmt(model)}</span>'


def forecast_section(results: dict) -> str:
    rows = [[escape(channel), compared(r["model_mae"], r["persistence_mae"], True), fmt(r["persistence_mae"]),
             fmt(r["days_scored"]), compared(r["last_day_model_mae"], r["last_day_persistence_mae"], True),
             fmt(r["last_day_persistence_mae"])] for channel, r in results.items()]
    return ("<h2>Next-day forecast on holdout persons</h2><p>Mean absolute error in the channel's units; "
            "the model's median forecast against persistence (tomorrow = today), scored on the same days.</p>"
            + table(["channel", "model MAE", "persistence MAE", "days", "day-21 model MAE", "day-21 persistence"], rows))


def similarity_section(results: dict) -> str:
    labels = list(results["summary"])
    rows = []
    for channel, r in results["channels"].items():
        rows.append([escape(channel)] + [fmt(r[l]["cosine"]) for l in labels] + [fmt(r[l]["dtw"], 1) for l in labels]
                    + [fmt(r["windows"])])
    rows.append(["<b>all channels</b>"] + [fmt(results["summary"][l]["cosine"]) for l in labels]
                + [fmt(results["summary"][l]["dtw"], 1) for l in labels] + [""])
    headers = ["channel"] + [f"cosine: {l}" for l in labels] + [f"DTW: {l}" for l in labels] + ["windows"]
    return (f"<h2>Generated versus real continuations</h2><p>The model continues each holdout window from its first "
            f"{results['primed_days']} real days; cosine similarity (higher is closer) and DTW distance (lower is closer) "
            f"against the real rest of the window, beside persistence and a different real person.</p>" + table(headers, rows))


def synthetic_section(folder: Path, channels: list[str]) -> str:
    synthetic = pd.read_csv(folder / "synthetic.csv")
    stats = synthetic[channels].describe().T
    rows = [[escape(c), fmt(stats.loc[c, "mean"], 1), fmt(stats.loc[c, "std"], 1), fmt(stats.loc[c, "min"], 1),
             fmt(stats.loc[c, "max"], 1)] for c in channels]
    return (f"<h2>Synthetic cohort</h2><p>{synthetic['person_id'].nunique():,} persons × "
            f"{synthetic.groupby('person_id').size().max()} days in <code>synthetic.csv</code>.</p>"
            + table(["channel", "mean", "sd", "min", "max"], rows))


def render(folder: Path) -> str:
    try:
        run = json.loads((folder / "run.json").read_text())
        metrics = json.loads((folder / "metrics.json").read_text())
    except FileNotFoundError as err:
        raise SynthwearError(f"{folder}: not a run folder (missing {Path(err.filename).name})") from None
    recipe, data, training = run["recipe"], run["data"], run["training"]
    channels = list(recipe["channels"])
    sections = []
    if "forecast" in metrics:
        sections.append(forecast_section(metrics["forecast"]))
    if "similarity" in metrics:
        sections.append(similarity_section(metrics["similarity"]))
    sections.append(synthetic_section(folder, channels))
    windows = run["windows"]["train"]
    sections.append(
        "<h2>Training</h2>" + table(["", ""], [
            ["epochs run (best)", f"{training['epochs']} ({training['best_epoch']})"],
            ["stopped because", escape(training["stopped"])],
            ["best validation loss", fmt(training["best_validation_loss"])],
            ["training windows (complete / with gaps)", f"{windows['windows']:,} ({windows['complete']:,} / {windows['with_gaps']:,})"],
            ["persons train / validation / holdout", f"{run['split']['train']} / {run['split']['validation']} / {run['split']['holdout']}"],
            ["seconds: train, sample, evaluate", ", ".join(fmt(run["timings_seconds"][k], 1) for k in ("train", "sample", "evaluate"))],
            ["device", escape(run["device"])],
        ]))
    other = {k: v for k, v in metrics.items() if k not in ("forecast", "similarity")}
    if other:
        sections.append("<h2>Other evaluators</h2><pre>" + escape(json.dumps(other, indent=2)) + "</pre>")
    sections.append(
        "<h2>Data and provenance</h2>" + table(["", ""], [
            ["source", escape(data["source"])],
            ["licence", fmt(data.get("licence"))],
            ["citation", fmt(data.get("citation"))],
            ["persons, person-days", f"{data['persons']:,}, {data['person_days']:,}"],
            ["fingerprint", f"<code>{escape(data['fingerprint'])}</code>"],
            ["seed", fmt(run["seed"])],
            ["versions", escape(", ".join(f"{k} {v}" for k, v in run["versions"].items()))],
        ]) + "<h3>Recipe</h3><pre>" + escape(json.dumps(recipe, indent=2)) + "</pre>")
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>synthwear · {escape(recipe['name'])}</title>"
            f"<style>{STYLE}</style></head><body><h1>synthwear run: {escape(recipe['name'])}</h1>"
            f"<p class='sub'>Synthetic wearable data from {escape(data['source'])}</p>{''.join(sections)}</body></html>")


def write_report(folder: Path) -> Path:
    """Write ``report.html`` into a run folder (atomically) and return its path."""
    folder = Path(folder)
    html = render(folder)
    target = folder / "report.html"
    with atomic_path(target) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return target
