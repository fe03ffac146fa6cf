"""The HTML pages: stand-alone (figures embedded as PNG data URIs), the plots present when the report has their data,
and the capacity page with its per-node distribution and defective nodes."""

from __future__ import annotations

import base64
import re

from bench.report import html, plots
from tests.report import synthetic as syn
from tests.report.test_aggregate import fleet, run

PNG = b"\x89PNG\r\n\x1a\n"


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_node_page_is_standalone_with_decodable_figures():
    r = syn.report([syn.matmul("float32", syn.samples(0.002)), syn.matmul("float32", syn.samples(0.0015), role="final", mamf=True)])
    page = html.node_page(r)
    assert page.startswith("<!DOCTYPE html>") and "http://" not in page and "https://" not in page
    images = _images(page)
    assert len(images) >= 2 and all(i.startswith(PNG) for i in images)
    assert "matmul_mamf_tflops" in page


def test_plots_draw_only_what_the_report_has():
    empty = syn.report([])
    assert all(draw(empty) is None for _, draw in plots.NODE_PLOTS)
    r = syn.report([syn.matmul("float32", syn.samples(0.002))])
    assert plots.matmul_vs_size(r).startswith(PNG)
    assert plots.busbw_vs_size(r) is None and plots.telemetry(r) is None


def test_report_text_is_escaped():
    r = syn.report([syn.matmul("float32", syn.samples(0.002), status="invalid")])
    r.measurements[0].reason = "<script>alert(1)</script>"
    page = html.node_page(r)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_capacity_page_marks_defective_nodes():
    cap = run(fleet(6, slow=(2, 5, 500.0)))
    page = html.capacity_page(cap)
    assert "<h2>Defective</h2>" in page and "node00002" in page and "below the group median" in page
    (image,) = _images(page)
    assert image.startswith(PNG)
