"""Procedural pictures for Studio: seeded noise patterns coloured by the prompt, no model weights.

Studio reads ``studio-plugin.toml`` in this folder and imports ``studio_procedural.generator``
only when the generator is first used, so this file stays empty of imports.
"""
