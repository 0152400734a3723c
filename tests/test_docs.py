"""The plugin guide is code that runs: its example plugin is built, registered and used on real data,
and every field and keyword the engine hands a plugin is named in it."""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
import types

from cohorts import REPO

from synthwear.interfaces import EvaluationContext, GeneratorSpec, ImportResult, Loss, Windows
from synthwear.transfer import HOOKS

GUIDE = REPO / "docs" / "plugins.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_every_python_block_of_the_plugin_guide_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(GUIDE.read_text())
    assert len(blocks) >= 2  # the plugin, and its use
    guide = types.ModuleType("plugin_guide")  # a module, as a reader's file would be (dataclasses need one)
    monkeypatch.setitem(sys.modules, guide.__name__, guide)
    for block in blocks:
        exec(compile(block, str(GUIDE), "exec"), guide.__dict__)  # a failing assert in the guide fails here
    assert guide.report.metrics["level_gap"]["gap"]["resting_hr"] is not None


def test_the_guide_names_everything_the_engine_passes_a_plugin():
    text = GUIDE.read_text()
    passed = {
        f.name for cls in (EvaluationContext, Windows, GeneratorSpec, ImportResult) for f in dataclasses.fields(cls)
    }
    passed |= {name for name, p in inspect.signature(Loss.__call__).parameters.items() if p.kind is p.KEYWORD_ONLY}
    passed |= {"MISSING", "bind", "report_section", "config", "extend", "NotEstimable", "verdict"}
    passed |= set(HOOKS)  # what a generator implements to start from a base
    unnamed = sorted(name for name in passed if not re.search(rf"`[^`]*\b{re.escape(name)}\b[^`]*`", text))
    assert unnamed == []
