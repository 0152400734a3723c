"""Plugin discovery and the registry of what plugins provide.

Built-in and third-party plugins arrive the same way: modules named in the ``synthwear``
entry-point group. A plugin's options are a config dataclass its factory declares as its
``config`` parameter, so a recipe's unknown or mistyped option is rejected by name.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import inspect
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import pluggy
import pydantic

from synthwear import hookspecs
from synthwear.errors import SynthwearError, described, shown

KINDS = {
    "encoders": "encoder",
    "generators": "generator",
    "losses": "loss",
    "evaluators": "evaluator",
    "importers": "importer",
}
ROLES = tuple(KINDS)


@dataclass(frozen=True)
class Registration:
    """One thing a plugin registered, and where it came from."""

    role: str  # one of ROLES
    name: str
    obj: Any  # a factory, or for importers the importer itself
    plugin: str  # the plugin module's registered name
    package: str  # the distribution that provides it
    version: str


@dataclass(frozen=True)
class BrokenPlugin:
    """An installed plugin that could not be loaded: left out, and named wherever it is missed."""

    name: str  # its entry-point name
    package: str
    error: str  # one line


def load_plugin_manager(extra_plugins: Iterable[object] = ()) -> pluggy.PluginManager:
    """Load every installed plugin. One that fails to import, or implements a hook no spec knows, is
    left out and recorded in ``pm.broken_plugins``, so that the commands that do not need it go on
    working; a plugin registered in code (``extra_plugins``) that is invalid is an error."""
    pm = pluggy.PluginManager("synthwear")
    pm.add_hookspecs(hookspecs)
    pm.broken_plugins = []
    for dist in importlib.metadata.distributions():
        for entry in dist.entry_points:
            if entry.group != "synthwear" or pm.is_blocked(entry.name):
                continue
            try:
                entry.load()
            except Exception as err:  # a third party's import error must not break every command
                pm.broken_plugins.append(BrokenPlugin(entry.name, dist.metadata["Name"], described(err)))
                pm.set_blocked(entry.name)
    pm.load_setuptools_entrypoints("synthwear")
    for plugin in extra_plugins:
        pm.register(plugin)
    while True:
        try:
            pm.check_pending()
            return pm
        except pluggy.PluginValidationError as err:
            name, package = pm.get_name(err.plugin), distribution_of(pm, err.plugin)
            if package is None:  # registered in code: the caller's own mistake
                raise SynthwearError(f"plugin {name!r} is invalid: {described(err)}") from None
            pm.unregister(err.plugin)
            pm.broken_plugins.append(BrokenPlugin(name, package, f"invalid: {described(err)}"))


def distribution_of(pm: pluggy.PluginManager, plugin: object) -> str | None:
    return next((dist.project_name for p, dist in pm.list_plugin_distinfo() if p is plugin), None)


class Registry:
    """Everything the plugins registered, by role and name."""

    def __init__(self, pm: pluggy.PluginManager):
        self.plugin_manager = pm
        self.broken: list[BrokenPlugin] = list(getattr(pm, "broken_plugins", []))
        distributions = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
        self._entries: dict[str, dict[str, Registration]] = {role: {} for role in ROLES}
        for role in ROLES:
            for impl in getattr(pm.hook, f"register_{role}").get_hookimpls():
                dist = distributions.get(id(impl.plugin))
                package = dist.project_name if dist else "(registered in code)"
                version = dist.version if dist else ""

                def register(name: str, obj: Any, *, _role=role, _impl=impl, _pkg=package, _ver=version):
                    self._add(Registration(_role, name, obj, _impl.plugin_name, _pkg, _ver))

                if dist is None:  # registered in code: its errors are the caller's to see
                    impl.function(**{arg: register for arg in impl.argnames})
                    continue
                try:
                    impl.function(**{arg: register for arg in impl.argnames})
                except SynthwearError:
                    raise
                except Exception as err:  # a third party's bug must not break every command
                    self.broken.append(BrokenPlugin(impl.plugin_name, package, described(err)))

    def _add(self, entry: Registration) -> None:
        taken = self._entries[entry.role].get(entry.name)
        if taken is not None:
            raise SynthwearError(
                f"{KINDS[entry.role]} {entry.name!r} is registered twice: by {taken.package} ({taken.plugin}) "
                f"and by {entry.package} ({entry.plugin})"
            )
        self._entries[entry.role][entry.name] = entry

    def entries(self, role: str | None = None) -> list[Registration]:
        roles = [role] if role else ROLES
        return [entry for r in roles for entry in self._entries[r].values()]

    def get(self, role: str, name: str, where: str = "") -> Any:
        """The registered object, or a one-line error listing what is installed (``where``: the
        recipe that asked for it, named first)."""
        try:
            return self._entries[role][name].obj
        except KeyError:
            known = ", ".join(sorted(self._entries[role])) or "none"
            broken = "".join(f"; plugin {b.name!r} ({b.package}) failed to load: {b.error}" for b in self.broken)
            prefix = f"{where}: " if where else ""
            raise SynthwearError(
                f"{prefix}no {KINDS[role]} named {name!r} is installed (installed: {known}){broken}"
            ) from None

    def config(self, role: str, name: str, options: dict[str, Any], where: str = "") -> Any:
        """The config the factory registered as ``name`` takes, built from ``options`` and checked by
        the plugin's own schema (None for a factory without options): a recipe's typo is one line
        before any work."""
        config_type = options_type(self.get(role, name, where))
        if config_type is None:
            if options:
                prefix = f"{where}: " if where else ""
                raise SynthwearError(f"{prefix}{KINDS[role]} {name!r} takes no options, got {sorted(options)}")
            return None
        return make_config(
            config_type, options, f"{where}: {KINDS[role]} {name!r}" if where else f"{KINDS[role]} {name!r}"
        )

    def build(self, role: str, name: str, options: dict[str, Any], *args: Any, where: str = "") -> Any:
        """Call the factory registered as ``name`` with ``args`` and its config built from ``options``."""
        factory, config = self.get(role, name, where), self.config(role, name, options, where)
        try:
            return factory(*args) if config is None else factory(*args, config=config)
        except ValueError as err:
            raise SynthwearError(f"{where}: {err}" if where else str(err)) from None


def options_type(factory: Callable) -> type | None:
    """The config dataclass a factory takes as its ``config`` parameter, if any."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    parameter = inspect.signature(target).parameters.get("config")
    if parameter is None:
        return None
    hinted = typing.get_type_hints(target).get("config")
    if hinted is None and dataclasses.is_dataclass(parameter.default):
        hinted = type(parameter.default)
    if not (isinstance(hinted, type) and dataclasses.is_dataclass(hinted)):
        raise SynthwearError(
            f"{getattr(factory, '__qualname__', factory)}: its 'config' parameter needs a dataclass "
            f"type annotation or default"
        )
    return hinted


def make_config(config_type: type, options: dict[str, Any], what: str) -> Any:
    """Build a plugin's config dataclass from a recipe's options, validated by pydantic against the
    dataclass's own fields and type hints (strictly: ``"3"`` is not 3, ``true`` is not 1; an int is
    a float); the first unknown or mistyped option is named. The dataclass's ``__post_init__`` then
    runs its own checks."""
    schema = options_schema(config_type)
    try:
        validated = schema.model_validate(options)
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        key = str(first["loc"][0])  # the option; deeper parts name a union's branch, not the user's key
        if first["type"] == "extra_forbidden":
            raise SynthwearError(f"{what}: unknown option {key!r} (known: {', '.join(schema.model_fields)})") from None
        raise SynthwearError(f"{what}: option {key!r}: {first['msg']} (got {shown(first.get('input'))})") from None
    try:
        return config_type(**{key: getattr(validated, key) for key in options})
    except (ValueError, TypeError) as err:  # a config's own __post_init__ checks
        raise SynthwearError(f"{what}: {err}") from None


@cache
def options_schema(config_type: type) -> type[pydantic.BaseModel]:
    """A pydantic model with the dataclass's fields, types and defaults, refusing other keys."""
    hints = typing.get_type_hints(config_type)
    fields = {}
    for f in dataclasses.fields(config_type):
        if f.default is not dataclasses.MISSING:
            fields[f.name] = (hints[f.name], f.default)
        elif f.default_factory is not dataclasses.MISSING:
            fields[f.name] = (hints[f.name], pydantic.Field(default_factory=f.default_factory))
        else:
            fields[f.name] = (hints[f.name], ...)
    config = pydantic.ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)
    return pydantic.create_model(f"{config_type.__name__}Options", __config__=config, **fields)


@cache
def default_registry() -> Registry:
    """The registry of all installed plugins, loaded once per process."""
    return Registry(load_plugin_manager())
