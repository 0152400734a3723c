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
    """Register channel encoders: ``register(name, factory)``. The engine calls
    ``factory(low, high, config=...)`` per channel with the recipe's range (``config`` only when the
    factory declares one) and gets an ``interfaces.Encoder``."""


@hookspec
def register_generators(register):
    """Register sequence models: ``register(name, factory)``. The engine calls
    ``factory(spec, config=...)`` with an ``interfaces.GeneratorSpec`` and gets a ``torch.nn.Module``
    mapping tokens (B, T, C) to one logits tensor (B, T, n_tokens) per channel."""


@hookspec
def register_losses(register):
    """Register training objectives: ``register(name, factory)``. The engine calls
    ``factory(config=...)`` (or ``factory()``), then ``loss(logits, targets, training=bool)`` with
    targets (B, T, C) holding ``interfaces.MISSING`` (-1) where a day is unknown; an optional
    ``bind(channels)`` is called first with the channels' names."""


@hookspec
def register_evaluators(register):
    """Register evaluators: ``register(name, factory)``. The engine calls ``factory(config=...)``
    (or ``factory()``), then ``evaluate(context)`` with an ``interfaces.EvaluationContext``; an
    optional ``report_section(results, run) -> str`` renders its part of the report."""


@hookspec
def register_importers(register):
    """Register device-export importers: ``register(name, importer)``; the engine calls
    ``importer(path)`` and gets an ``interfaces.ImportResult``."""


@hookspec
def register_commands(cli):
    """Add subcommands to the ``synthwear`` click group (``cli.add_command``)."""
