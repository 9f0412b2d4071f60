"""Sandboxed multi-turn tool-use environment runtime.

Layers, each importing only those before it: ``sandbox`` → ``tools`` → ``env`` → ``episodes`` →
``server`` → ``client`` / ``cli``. ``runtime.v1`` holds the generated gRPC code.
"""

__version__ = "0.1.0"
