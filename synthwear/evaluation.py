"""Running a run's evaluators, each on its own, so that one that fails costs only its own numbers.

Training and sampling are the expensive part of a run, and the pipeline writes their results (the
model, the synthetic cohort, run.json) before any evaluator runs. An evaluator that raises becomes
an entry ``{"error": ..., "evaluator": NAME}`` in metrics.json and a "could not be computed" section
in the report; the command then ends non-zero naming it, and ``synthwear evaluate RUN`` reruns the
evaluators on the same folder once the cause is fixed, without retraining. An evaluator whose
metric the data cannot support (too few persons, a constant channel) raises ``NotEstimable``
instead: its reason is recorded as ``{"unavailable": ..., "evaluator": NAME}``, shown in the report,
and is not a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from synthwear.errors import NotEstimable, SynthwearError, described, one_line
from synthwear.interfaces import EvaluationContext, Evaluator
from synthwear.plugins import Registry
from synthwear.recipe import Recipe


def build_evaluators(recipe: Recipe, registry: Registry, only: list[str] | None = None) -> dict[str, Evaluator]:
    """The recipe's evaluators by name, each option checked by the plugin's own schema: before any
    work starts, so that a typo costs seconds rather than a training run."""
    names = [choice.name for choice in recipe.evaluation.evaluators]
    for name in only or []:
        if name not in names:
            raise SynthwearError(
                f"{recipe.where()}: evaluator {name!r} is not in this run's recipe (its evaluators: {', '.join(names)})"
            )
    where = f"{recipe.where()}: evaluation"
    evaluators = {
        choice.name: registry.build("evaluators", choice.name, choice.options, where=where)
        for choice in recipe.evaluation.evaluators
        if not only or choice.name in only
    }
    for name, evaluator in evaluators.items():
        check = getattr(evaluator, "check", None)
        try:
            if check is not None:
                check(list(recipe.channels), recipe.windows.days)
        except ValueError as err:
            raise SynthwearError(f"{where}: {name}: {one_line(err)}") from None
    return evaluators


def failure(name: str, err: BaseException) -> dict[str, str]:
    """What metrics.json keeps of a failed evaluator: its name and the cause, on one line."""
    return {"evaluator": name, "error": described(err)}


def unavailable(name: str, reason: NotEstimable) -> dict[str, str]:
    """What metrics.json keeps of an evaluator whose metric the data cannot support: the reason."""
    return {"evaluator": name, "unavailable": one_line(reason)}


def run_evaluators(
    evaluators: dict[str, Evaluator], context: EvaluationContext, on_done: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Every evaluator's results by name; an exception becomes that evaluator's failure entry."""
    metrics: dict[str, Any] = {}
    for name, evaluator in evaluators.items():
        try:
            metrics[name] = plain(evaluator.evaluate(context), name)
        except NotEstimable as reason:
            metrics[name] = unavailable(name, reason)
        except Exception as err:
            metrics[name] = failure(name, err)
        if on_done:
            on_done(name)
    return metrics


def plain(value: Any, where: str) -> Any:
    """An evaluator's result as the JSON types metrics.json holds: numpy scalars and arrays become
    Python numbers and lists (evaluators compute with numpy; a stray ``np.int64`` must not sink the
    run or turn into a string), tuples lists; anything else JSON cannot hold is a ``TypeError``
    naming where in the result it is, which the caller records as that evaluator's failure."""
    if isinstance(value, dict):
        return {plain(key, f"{where} key {key!r}"): plain(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(
        f"{where} is a {type(value).__name__}, which metrics.json cannot hold (numbers, text, lists, dicts)"
    )


def failures(metrics: dict[str, Any]) -> dict[str, str]:
    """Evaluator name -> cause, for every evaluator that could not be computed."""
    return {
        name: results["error"]
        for name, results in metrics.items()
        if isinstance(results, dict) and set(results) == {"evaluator", "error"}
    }


def unavailable_reasons(metrics: dict[str, Any]) -> dict[str, str]:
    """Evaluator name -> why the data could not support it, for every such evaluator."""
    return {
        name: results["unavailable"]
        for name, results in metrics.items()
        if isinstance(results, dict) and set(results) == {"evaluator", "unavailable"}
    }


def failure_summary(metrics: dict[str, Any], folder: Path) -> str | None:
    """One line naming each failed evaluator and its cause, or None when all of them ran."""
    failed = failures(metrics)
    if not failed:
        return None
    causes = "; ".join(f"{name}: {cause}" for name, cause in failed.items())
    return (
        f"{folder}: {len(failed)} evaluator{'s' if len(failed) > 1 else ''} could not be computed ({causes}); "
        f"model, synthetic data and report are written; rerun with `synthwear evaluate {folder}`"
    )
