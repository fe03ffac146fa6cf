"""Benchmark, not a test: the CPU cost of reading one signed capacity report and checking its signature, as
`bench disclose tree` and `bench verify --from` read each (bench.disclosure.leaves._read_one: intake.read_json, then
sign.inspect), by intake's path (bench.model.written.parse_signed: msgspec's C parse and sorted C write), by the
json one it replaced (written.parse_written: the standard library's C parse and C write) and by the slow one
(strict_json.parse_json, then canonicalizing the parsed report), alternating report by report so that all three see the
same load.

    .venv/bin/python tests/perf/capacity_read_cost.py [GLOB] [--count 20] [--passes 3]

GLOB defaults to the 10,000-node country that `tests/perf/disclose_country.py --nodes 10000 --sites 20 --out
/tmp/country-before-levels` writes (20 capacity reports of 3.1 MB). Prints the load, then per path the median, min and
max CPU time (process_time) per report over all passes, and how many reads took the fast path.
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.model import intake, sign, strict_json, written


def _fast(path: Path) -> tuple[tuple[bool, str, str | None], bool]:
    doc = intake.read_json(path)
    return sign.inspect(doc.data, body=doc.signed_body), doc.signed_body is not None


def _json(path: Path) -> tuple[tuple[bool, str, str | None], bool]:
    read = written.parse_written(intake.read_bytes(path))
    if read is None:
        return _slow(path)
    return sign.inspect(read[0], body=read[1]), True


def _slow(path: Path) -> tuple[tuple[bool, str, str | None], bool]:
    data = strict_json.parse_json(intake.read_bytes(path), str(path))
    return sign.inspect(data), False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("glob", nargs="?", default="/tmp/country-before-levels/site*/capacity.json")
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--passes", type=int, default=3)
    args = ap.parse_args()
    paths = [Path(p) for p in sorted(glob.glob(args.glob))[: args.count]]
    if not paths:
        sys.exit(f"no file matches {args.glob}: write the country first (tests/perf/disclose_country.py)")
    size = statistics.mean(p.stat().st_size for p in paths) / 1e6
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs; "
          f"{len(paths)} reports of {size:.2f} MB, {args.passes} passes")  # fmt: skip
    times: dict[str, list[float]] = {"slow": [], "json": [], "fast": []}
    taken = 0
    for _ in range(args.passes):
        for path in paths:
            for name, read in (("slow", _slow), ("json", _json), ("fast", _fast)):
                start = time.process_time()
                (valid, why, _), hit = read(path)
                times[name].append(time.process_time() - start)
                taken += hit and name == "fast"
                if not valid:
                    sys.exit(f"{path}: {why}")
    for name, label in (
        ("slow", "strict parse + canonical JSON"),
        ("json", "written.parse_written"),
        ("fast", "intake.read_json: written.parse_signed"),
    ):
        t = sorted(times[name])
        print(f"{name} ({label}): median {statistics.median(t) * 1e3:.1f} ms CPU per report, min {t[0] * 1e3:.1f}, "
              f"max {t[-1] * 1e3:.1f}")  # fmt: skip
    print(
        f"fast path taken {taken} of {len(times['fast'])} reads; "
        f"median saving {1 - statistics.median(times['fast']) / statistics.median(times['slow']):.0%}"
    )
    print(f"load average after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
