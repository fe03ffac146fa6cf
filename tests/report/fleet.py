"""Signed GPU fleets: the names tests import from here, built by the one report-builder, tests.report.synthetic."""

from tests.report.synthetic import (
    H100,
    NOW,
    SHAPE,
    gpu_measurement,
    gpu_node,
    gpu_uuid,
    node_report,
    node_stream,
    resign,
)

__all__ = ["H100", "NOW", "SHAPE", "gpu_measurement", "gpu_node", "gpu_uuid", "node_report", "node_stream", "resign"]
