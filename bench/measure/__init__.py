"""Timing, statistics and telemetry: how bench turns iterations into honest figures."""
