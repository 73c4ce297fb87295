"""The engine: one thread that owns the GPU and every pipeline.

Only ``studio.engine.worker`` may be imported from the UI/services side at start-up; the other
modules import torch/diffusers and are loaded lazily on the engine thread.
"""
