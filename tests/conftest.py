"""Shared fixtures: small generated daily tables and the repository's recipes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from cohorts import REPO, make_daily_frame


@pytest.fixture
def daily_frame() -> pd.DataFrame:
    return make_daily_frame()


@pytest.fixture
def tiny_recipe() -> Path:
    return REPO / "recipes" / "tiny.yaml"
