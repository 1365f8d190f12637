"""The package version: one place, read by pyproject (dynamic version) and run records."""

__version__ = "0.1.0"
