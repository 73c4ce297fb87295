"""Studio: a local AI image studio."""

__version__ = "0.1.0"
