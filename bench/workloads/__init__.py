"""Workloads: each a frozen spec and a run() that returns Measurements with raw samples."""
