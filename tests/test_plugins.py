import pytest

from synthwear import hookimpl
from synthwear.errors import SynthwearError
from synthwear.plugins import Registry, load_plugin_manager


class Throwaway:
    """A plugin registered in code for the test, the way a third-party module would be."""

    @hookimpl
    def register_losses(self, register):
        register("throwaway", lambda: "built")


def test_defaults_arrive_through_entry_points():
    registry = Registry(load_plugin_manager())
    by_name = {e.name: e for e in registry.entries()}
    for name, kind in [
        ("binning", "encoders"),
        ("transformer", "generators"),
        ("shake_shake", "losses"),
        ("mean", "losses"),
        ("forecast", "evaluators"),
        ("similarity", "evaluators"),
    ]:
        assert by_name[name].role == kind and by_name[name].package == "synthwear"


def test_extra_plugin_registers_and_unknown_names_list_what_is_installed():
    registry = Registry(load_plugin_manager([Throwaway()]))
    assert registry.build("losses", "throwaway", {}) == "built"
    with pytest.raises(SynthwearError, match=r"no loss named 'nope' is installed \(installed: .*shake_shake"):
        registry.get("losses", "nope")
    with pytest.raises(SynthwearError, match=r"^r.yaml: evaluation: no evaluator named 'nosuch' is installed"):
        registry.build("evaluators", "nosuch", {}, where="r.yaml: evaluation")


def test_unknown_hook_is_an_error_at_start_up():
    class Misspelled:
        @hookimpl
        def register_generator(self, register):  # the hook is register_generators
            pass

    with pytest.raises(SynthwearError, match="register_generator"):
        load_plugin_manager([Misspelled()])


def test_name_registered_twice_is_an_error():
    class Clash:
        @hookimpl
        def register_losses(self, register):
            register("mean", object)

    with pytest.raises(SynthwearError, match="'mean' is registered twice"):
        Registry(load_plugin_manager([Clash()]))


def test_plugin_options_are_checked_by_name_and_type():
    registry = Registry(load_plugin_manager())
    with pytest.raises(SynthwearError, match=r"r.yaml: generator 'transformer': unknown option 'n_layers'"):
        registry.build("generators", "transformer", {"n_layers": 3}, None, where="r.yaml")
    for wrong in ("many", "20", 20.5, True):  # strictly typed: no silent "20" -> 20 or true -> 1
        with pytest.raises(SynthwearError, match=r"encoder 'binning': option 'bins': Input should be a valid integer"):
            registry.build("encoders", "binning", {"bins": wrong}, 0, 1)
    with pytest.raises(SynthwearError, match=r"loss 'shake_shake': option 'smoothing': Input should be a valid number"):
        registry.build("losses", "shake_shake", {"smoothing": {"steps": "wide"}})
    assert registry.build("losses", "shake_shake", {"smoothing": {"steps": 2}}).config.smoothing == {"steps": 2.0}
    with pytest.raises(SynthwearError, match="takes no options"):
        registry.build("evaluators", "forecast", {"weight": 1})


def test_config_type_may_come_from_the_default_and_must_be_a_dataclass():
    from synthwear.default_plugins.binning import BinningConfig
    from synthwear.plugins import options_type

    def untyped(low, high, config=BinningConfig()):
        return config

    def wrong(config: dict):
        return config

    assert options_type(untyped) is BinningConfig
    with pytest.raises(SynthwearError, match="needs a dataclass"):
        options_type(wrong)


def test_a_plugin_that_fails_to_import_is_left_out_and_named(tmp_path, monkeypatch):
    """A broken third-party plugin costs only itself: loading goes on, and where it is missed the
    error names it."""
    import importlib.metadata
    import sys

    (tmp_path / "broken_plugin.py").write_text("import a_module_that_is_not_installed\n")
    (tmp_path / "broken-0.1.dist-info").mkdir()
    (tmp_path / "broken-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (tmp_path / "broken-0.1.dist-info" / "entry_points.txt").write_text("[synthwear]\nbroken = broken_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    registry = Registry(load_plugin_manager())
    assert [(b.name, b.package) for b in registry.broken] == [("broken", "broken")]
    assert "ModuleNotFoundError" in registry.broken[0].error
    assert registry.build("losses", "mean", {}) is not None  # everything else still loads
    with pytest.raises(SynthwearError, match=r"plugin 'broken' \(broken\) failed to load: ModuleNotFoundError"):
        registry.get("evaluators", "nope")
    assert "broken_plugin" not in sys.modules
