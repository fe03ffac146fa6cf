"""bench: measured, verifiable compute capacity of AI nodes and clusters."""

__version__ = "0.1.0"
