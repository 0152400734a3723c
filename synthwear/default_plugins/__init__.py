"""The engine's built-in plugins, discovered through the synthwear entry-point group."""
