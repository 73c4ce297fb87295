"""Neural style transfer (Gatys et al.) and fast AdaIN style transfer; the submodules import torch."""
