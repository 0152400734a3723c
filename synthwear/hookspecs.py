"""The hooks a plugin may implement.

Each hook receives a ``register`` callback, so the engine owns the collection and never depends
on the order plugins are called in. The engine's own defaults are plugins too, discovered through
the same ``synthwear`` entry-point group as any third-party package.
"""

import pluggy

hookspec = pluggy.HookspecMarker("synthwear")
hookimpl = pluggy.HookimplMarker("synthwear")


@hookspec
def register_encoders(register):
    """Register channel encoders: ``register(name, factory)``, factory(**options) -> Encoder."""


@hookspec
def register_generators(register):
    """Register sequence models: ``register(name, factory)``, factory(spec, **options) -> Generator."""


@hookspec
def register_losses(register):
    """Register training objectives: ``register(name, factory)``, factory(**options) -> Loss."""


@hookspec
def register_evaluators(register):
    """Register evaluators: ``register(name, factory)``, factory(**options) -> Evaluator."""


@hookspec
def register_importers(register):
    """Register device-export importers: ``register(name, importer)`` (see interfaces.Importer)."""


@hookspec
def register_commands(cli):
    """Add subcommands to the ``synthwear`` click group."""
