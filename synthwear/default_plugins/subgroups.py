"""Subgroup fidelity: are the synthetic women over 30 like the real women over 30?

A cohort can match the whole population and still get every subgroup wrong (average persons with
attributes drawn at random). For a model with person attributes (``data.persons``) this scores:

- the attribute table itself, person by person: sdmetrics TVComplement per column (Column Shapes)
  and ContingencySimilarity per pair of columns (Column Pair Trends), on the attribute codes the
  sequence model reads (a category, or a numeric column's quantile bin; missing is a code too);
- per attribute value with enough windows on both sides, the synthetic subgroup's windows against
  the real holdout subgroup's: KSComplement of each channel's values and the discriminative score,
  beside the same for the whole cohort against all holdout windows.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np
import pandas as pd
from sdmetrics.column_pairs import ContingencySimilarity
from sdmetrics.single_column import KSComplement, TVComplement

from synthwear.default_plugins.discriminative import DiscriminativeScore, with_missing_days_of
from synthwear.errors import NotEstimable
from synthwear.hookspecs import hookimpl
from synthwear.interfaces import EvaluationContext, Windows
from synthwear.report.html import fmt, table


@dataclass
class SubgroupConfig:
    min_windows: int = 10  # windows a subgroup needs on each side to be scored


def person_codes(windows: Windows) -> pd.DataFrame:
    """One row of attribute codes per person (windows repeat their person's)."""
    _, first = np.unique(windows.person, return_index=True)
    return pd.DataFrame(windows.attributes[np.sort(first)])


def table_scores(real: pd.DataFrame, synthetic: pd.DataFrame, columns: list[str]) -> dict[str, Any]:
    """Column Shapes (TVComplement) per column and Column Pair Trends (ContingencySimilarity) per pair."""
    shapes = {name: float(TVComplement.compute(real[k], synthetic[k])) for k, name in enumerate(columns)}
    pairs = {
        f"{columns[a]} × {columns[b]}": float(ContingencySimilarity.compute(real[[a, b]], synthetic[[a, b]]))
        for a, b in itertools.combinations(range(len(columns)), 2)
    }
    return {"column_shapes": shapes, "column_pair_trends": pairs}


def channel_ks(real: np.ndarray, synthetic: np.ndarray, channels: list[str]) -> dict[str, float | None]:
    scores = {}
    for c, channel in enumerate(channels):
        a, b = real[..., c][~np.isnan(real[..., c])], synthetic[..., c][~np.isnan(synthetic[..., c])]
        scores[channel] = float(KSComplement.compute(pd.Series(a), pd.Series(b))) if len(a) and len(b) else None
    return scores


class SubgroupFidelity:
    def __init__(self, config: SubgroupConfig = SubgroupConfig()):
        self.config = config

    def evaluate(self, context: EvaluationContext) -> dict[str, Any]:
        model = context.model.attributes
        real, synthetic = context.holdout, context.synthetic
        if model is None or real.attributes is None or synthetic.attributes is None:
            raise NotEstimable("the model has no person attributes (the recipe names no data.persons)")
        whole = self.compare(real.values, synthetic.values, context)
        groups = []
        for k, column in enumerate(model.columns):
            for code, label in enumerate(self.labels(model, k)):
                found = self.subgroup(context, k, code)
                if found is not None:
                    groups.append({"column": column, "value": label, **found})
        return {
            "attribute_table": table_scores(person_codes(real), person_codes(synthetic), model.columns),
            "whole": whole,
            "subgroups": groups,
            "min_windows": self.config.min_windows,
        }

    @staticmethod
    def labels(model, k: int) -> list[str]:
        attribute = model.attributes[k]
        if attribute.kind == "categorical":
            return list(attribute.categories)
        edges = [float("-inf"), *attribute.bins, float("inf")]
        return [f"[{lo:g}, {hi:g})" for lo, hi in itertools.pairwise(edges)]

    def subgroup(self, context: EvaluationContext, k: int, code: int) -> dict[str, Any] | None:
        real = context.holdout.values[context.holdout.attributes[:, k] == code]
        synthetic = context.synthetic.values[context.synthetic.attributes[:, k] == code]
        if min(len(real), len(synthetic)) < self.config.min_windows:
            return None
        return self.compare(real, synthetic, context)

    @staticmethod
    def compare(real: np.ndarray, synthetic: np.ndarray, context: EvaluationContext) -> dict[str, Any]:
        other = with_missing_days_of(synthetic, real, np.random.default_rng(context.seed))
        discriminative = DiscriminativeScore().cross_validate(real, other, context.seed)
        return {
            "real_windows": len(real),
            "synthetic_windows": len(synthetic),
            "ks_complement": channel_ks(real, synthetic, context.channels),
            "discriminative": discriminative["score"],
        }

    def report_section(self, results: dict[str, Any], run: dict[str, Any]) -> str:
        shapes = results["attribute_table"]["column_shapes"]
        pairs = results["attribute_table"]["column_pair_trends"]
        attribute_rows = [[escape(k), fmt(v)] for k, v in {**shapes, **pairs}.items()]
        channels = list(results["whole"]["ks_complement"])
        rows = [self.row("all persons", results["whole"], channels)]
        rows += [self.row(f"{g['column']} = {g['value']}", g, channels) for g in results["subgroups"]]
        return (
            "<h2>Person attributes and subgroups</h2><p>The synthetic persons' attributes against the real holdout "
            "persons' (TVComplement per column, ContingencySimilarity per pair; 1 is identical), then each subgroup "
            f"with at least {results['min_windows']} windows on both sides: the synthetic subgroup against the real "
            "one (KSComplement per channel, 1 is identical; discriminative score, 0 is indistinguishable).</p>"
            + table(["attribute table", "score"], attribute_rows)
            + table(["subgroup", "windows real / synthetic", *[f"KS {c}" for c in channels], "discriminative"], rows)
        )

    @staticmethod
    def row(label: str, found: dict[str, Any], channels: list[str]) -> list[str]:
        return [
            escape(label),
            f"{found['real_windows']} / {found['synthetic_windows']}",
            *[fmt(found["ks_complement"][c]) for c in channels],
            fmt(found["discriminative"]),
        ]


@hookimpl
def register_evaluators(register):
    register("subgroups", SubgroupFidelity)
