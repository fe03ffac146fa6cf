"""The HTML pages: stand-alone (figures embedded as PNG data URIs), the plots present when the report has their data,
and the capacity page with its per-node distribution and defective nodes."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser

import pytest

from bench import registry
from bench.model.reports import NodeReport
from bench.report import gates, html, plots
from bench.report.store import dumps
from tests.report import synthetic as syn
from tests.report.test_aggregate import fleet, run

PNG = b"\x89PNG\r\n\x1a\n"


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_node_page_is_standalone_with_decodable_figures():
    r = syn.report(
        [syn.matmul("float32", syn.samples(0.002)), syn.matmul("float32", syn.samples(0.0015), role="final", mamf=True)]
    )
    page = html.node_page(r)
    assert page.startswith("<!DOCTYPE html>") and "http://" not in page and "https://" not in page
    images = _images(page)
    assert len(images) >= 2 and all(i.startswith(PNG) for i in images)
    assert "MAMF GFLOPS" in page and "<h2>Gates</h2>" in page


def test_plots_draw_only_what_the_report_has():
    empty = syn.report([])
    assert all(png is None for _, png in plots.node_figures(empty))
    r = syn.report([syn.matmul("float32", syn.samples(0.002))])
    assert plots.matmul_vs_size(r).startswith(PNG)
    assert plots.vs_size(r, registry.get("comm").plots[0]) is None and plots.telemetry(r) is None


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


class _Tables(HTMLParser):
    """Every <table> of a page as (title of the <h3> before it, header cells, rows of cell texts)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[tuple[str, list[str], list[list[str]]]] = []
        self._title, self._tag, self._row, self._cell = "", None, None, None

    def handle_starttag(self, tag, attrs):
        if tag == "h3":
            self._tag, self._title = "h3", ""
        elif tag == "table":
            self.tables.append((self._title, [], []))
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "h3":
            self._tag = None
        elif tag in ("td", "th") and self._row is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self.tables:
            _title, head, rows = self.tables[-1]
            if not head:
                head.extend(self._row)
            else:
                rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._tag == "h3":
            self._title += data
        elif self._cell is not None:
            self._cell += data


def _search_report():
    final = syn.matmul("float32", syn.samples(0.0015), role="final", mamf=True)
    final.summary["efficiency"] = 0.16
    final.peak = {"tflops": final.summary["tflops_median"] / 0.16}
    better_candidate = syn.matmul("float32", syn.samples(0.0006), role="candidate")  # a fast but noisy sweep figure
    better_candidate.spec["m"] = 1024
    stream = syn.simple("membw", {"kernel": "triad", "elements": 1 << 20, "dtype": "float64"},
                        {"gbps_median": 24.0, "gbps_best": 25.0})  # fmt: skip
    return syn.report([better_candidate, final, stream])


def test_the_figures_in_the_page_are_report_json_s():
    """The MAMF cells of the page are the report's MAMF (not the best candidate's), in the table's unit."""
    r = _search_report()
    data = json.loads(dumps(r.to_dict()))  # what report.json holds
    final = data["measurements"][1]
    parser = _Tables()
    parser.feed(html.node_page(NodeReport.from_dict(data)))
    (search,) = [t for t in parser.tables if t[0].startswith("matmul search")]
    title, head, rows = search
    assert "GFLOPS" in title
    (row,) = rows
    cell = dict(zip(head, row, strict=True))
    assert float(cell["MAMF GFLOPS"]) == float(f"{final['summary']['tflops_median'] * 1e3:.4g}")
    assert cell["of peak"] == "16.0%" and cell["best shape"] == "512x512x512"
    (best,) = [t for t in parser.tables if t[0].startswith("best shapes")]
    assert [row_[best[1].index("role")] for row_ in best[2]] == ["candidate", "MAMF"]  # ranked by median, MAMF marked


def test_achieved_vs_peak_draws_the_mamf_not_the_best_candidate():
    r = _search_report()
    (row,) = plots.achieved_vs_peak_data(r)
    assert row["tflops"] == r.measurements[1].summary["tflops_median"] and row["source"] == "search"
    assert row["tflops"] / row["peak_tflops"] == pytest.approx(0.16)
    assert plots.achieved_vs_peak(r).startswith(PNG)


def test_roofline_places_stream_in_bytes():
    r = _search_report()
    (stream,) = [p for p in plots.roofline_points(r) if p[2] == "STREAM triad"]
    assert stream[0] == pytest.approx(2 / 24)  # triad: 2 FLOPs per 24 bytes moved
    assert stream[1] == pytest.approx(24.0 * (2 / 24) / 1e3)  # TFLOPS = GB/s x FLOP/byte / 1000


def test_gate_results_are_on_the_page():
    r = _search_report()
    page = html.node_page(r, [gates.Gate("fail-below float32", False, "cpu float32: 0.1 TFLOPS < floor 1")])
    assert "<h2>Gates</h2>" in page and "FAIL" in page and "floor 1" in page


def test_the_training_table_takes_its_unit_from_the_device_class():
    """A CPU's training run reads 0.00193 in TFLOPS: the table is in GFLOPS when every run in it was on a CPU, and its
    cells are report.json's figures in that unit."""
    run = syn.simple("train", {"model": "gpt", "preset": "tiny", "precision": "float32"},
                     {"tflops_median": 0.00193, "items_per_s": 701.2, "mfu": 0.006})  # fmt: skip
    parser = _Tables()
    parser.feed(html.node_page(syn.report([run])))
    (train,) = [t for t in parser.tables if t[0].startswith("train")]
    title, head, (row,) = train
    assert "GFLOPS" in title and "GFLOPS" in head and "TFLOPS" not in head
    assert float(dict(zip(head, row, strict=True))["GFLOPS"]) == 1.93
    gpu_run = syn.on_gpu(syn.simple("train", dict(run.spec), dict(run.summary)), 0)
    parser = _Tables()
    parser.feed(html.node_page(syn.gpu_report([gpu_run])))
    (train,) = [t for t in parser.tables if t[0].startswith("train")]
    assert "TFLOPS" in train[1]


def test_pages_read_by_people_name_their_unit_and_their_columns():
    """Issue 25: the headline first, one FLOPS unit per page named in every caption (GFLOPS on a CPU page), and the
    fleet page's columns in words, precision first, large figures without exponents."""
    r = syn.report([syn.matmul("float32", syn.samples(0.002), role="final", mamf=True)])
    page = html.node_page(r)
    assert page.index("headline (CPU, GFLOPS") < page.index("<h2>Gates</h2>")
    captions = re.findall(r"<figcaption>([^<]*)</figcaption>", page)
    assert "Matmul GFLOPS vs size" in captions and not any("TFLOPS" in c for c in captions)
    page = html.capacity_page(run(fleet(6)))
    heads = re.findall(r"<th>([^<]*)</th>", page)
    assert heads[0] == "precision" and "reported MAMF PFLOPS" in heads and "accelerator" in heads
    assert not any("_" in h for h in heads)
    assert not re.search(r'<td class="num">[0-9.]+e\+', page)


def test_collectives_are_summarised_one_row_and_one_panel_per_op():
    from bench import figures
    from bench.model.reports import Measurement
    from bench.registry.comm import busbw_grid

    def comm(op: str, size: int, seconds: float) -> Measurement:
        samples = syn.samples(seconds)
        return Measurement(workload="comm", spec={"op": op, "bytes": size, "world_size": 2}, device=dict(syn.DEVICE),
                           status="ok", work_per_iteration=size, work_unit="byte", samples_s=samples,
                           summary=figures.comm_summary(samples, size, op, 2))  # fmt: skip

    ms = [comm(op, 1 << k, 1e-4 * k) for op in ("all_reduce", "broadcast") for k in range(10, 22)]
    grid = busbw_grid(ms)
    assert [r["op"] for r in grid.records()] == ["all_reduce", "broadcast"]
    best = max((m for m in ms if m.spec["op"] == "broadcast"), key=lambda m: m.summary["busbw_gbps"])
    assert grid.records()[1]["at bytes"] == str(best.spec["bytes"])
    assert len(busbw_grid(ms, full=True).rows) == len(ms) + 2  # bench comm's own table: every size, and peaks
    assert plots.vs_size(syn.report(ms), registry.get("comm").plots[0]).startswith(PNG)
