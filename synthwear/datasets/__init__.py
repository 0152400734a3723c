"""Public datasets shipped inside the package, with the attribution their licences require."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import pandas as pd

from synthwear.errors import SynthwearError


@dataclass(frozen=True)
class Dataset:
    name: str
    path: Path
    licence: str
    citation: str

    @property
    def persons(self) -> Path | None:
        """The dataset's per-person table (persons.csv beside its days), if it ships one."""
        path = self.path.parent / "persons.csv"
        return path if path.is_file() else None


_LIFESNAPS_CITATION = (
    'Yfantidou S. et al., "LifeSnaps, a 4-month multi-modal dataset capturing unobtrusive snapshots of our '
    'lives in the wild", Scientific Data 9, 663 (2022), doi:10.1038/s41597-022-01764-x; data doi:10.5281/zenodo.6826682'
)
_FITBIT_CROWDSOURCED_CITATION = (
    'Furberg R., Brinton J., Keating M., Ortiz A., "Crowd-sourced Fitbit datasets 03.12.2016-05.12.2016", '
    "Zenodo (2016), doi:10.5281/zenodo.53894"
)
_ROOT = files("synthwear") / "datasets"

DATASETS = {
    "lifesnaps": Dataset("lifesnaps", Path(str(_ROOT / "lifesnaps" / "daily.csv")), "CC BY 4.0", _LIFESNAPS_CITATION),
    "lifesnaps-extended": Dataset(
        "lifesnaps-extended", Path(str(_ROOT / "lifesnaps" / "daily_extended.csv")), "CC BY 4.0", _LIFESNAPS_CITATION
    ),
    # no resting heart rate (the column is empty); steps every day, sleep for about a third of the persons
    "fitbit-crowdsourced": Dataset(
        "fitbit-crowdsourced",
        Path(str(_ROOT / "fitbit_crowdsourced" / "daily.csv")),
        "CC BY 4.0 (the Zenodo record; CC0 on its widely used mirror)",
        _FITBIT_CROWDSOURCED_CITATION,
    ),
}


def get_dataset(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise SynthwearError(f"no shipped dataset named {name!r} (shipped: {', '.join(DATASETS)})") from None


def describe_datasets() -> list[dict[str, Any]]:
    """Each shipped dataset's name, licence, citation, size on disk and shape (read from the file)."""
    rows = []
    for dataset in DATASETS.values():
        frame = pd.read_csv(dataset.path)
        rows.append(
            {
                "name": dataset.name,
                "persons": int(frame["person_id"].nunique()),
                "person_days": len(frame),
                "channels": [c for c in frame.columns if c not in ("person_id", "date")],
                "bytes": dataset.path.stat().st_size,
                "licence": dataset.licence,
                "citation": dataset.citation,
            }
        )
    return rows
