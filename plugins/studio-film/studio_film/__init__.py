"""A film look for Studio: colour balance, sharpening, vignette and seeded grain, with numpy and Pillow.

Studio reads ``studio-plugin.toml`` in this folder and imports ``studio_film.film`` only when the
post-processor is first used, so this file stays empty of imports.
"""
