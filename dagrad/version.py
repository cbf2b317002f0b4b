"""dagrad's version: its own module, so the engine can record it without importing the package root."""

__version__ = "0.1.0"
