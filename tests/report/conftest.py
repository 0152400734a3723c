from pathlib import Path

import pytest

from synthwear.pipeline import run_recipe
from synthwear.recipe import load_recipe

TINY = Path(__file__).parents[2] / "recipes" / "tiny.yaml"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One finished tiny run (every default fidelity evaluator), shared by the report tests."""
    return run_recipe(load_recipe(TINY), tmp_path_factory.mktemp("runs") / "tiny").folder
