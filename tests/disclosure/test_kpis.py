"""Inventory and tiers over time: a defective device (by its capacity report's rules) is not healthy, and a device
measured longer ago than --stale-after is stale and no more than 'reported'."""

import datetime as dt
import math
import random

import numpy as np
import pandas as pd
import pytest

from bench.disclosure import declaration as decl
from bench.disclosure import document as dd
from bench.disclosure import kpis as k
from bench.disclosure.leaves import Store
from bench.model import sign
from bench.report import aggregate as agg
from bench.report.capacity import memory_total
from bench.report.store import dumps
from tests.disclosure import world
from tests.report.fleet import NOW, node_report

K = world.KEYS


def _site(tmp_path, tflops_per_gpu, *, as_of=world.AS_OF):
    base = tmp_path / "s"
    base.mkdir()
    inputs = [(f"n{i}", node_report(i, t, K.node)) for i, t in enumerate(tflops_per_gpu)]
    cap = agg.aggregate(inputs, now=NOW, trusted={K.kid("node")}, rules=agg.Rules(max_age_s=7 * 86400))
    cap["signature"] = sign.sign(cap, K.aggregator)
    (base / "capacity.json").write_text(dumps(cap))
    text = world.DECLARATION.format(region="North", city="Alpha", site="A1")
    d = decl.check(text, decl.sign_text(text.encode(), K.operator, NOW), operator_ids=None, node_ids=None)
    store = Store()
    return dd.site(d, [("a", store.add(base / "capacity.json"))], store, policy=K.policy(), proof_docs=[], as_of=as_of,
                   claims_input=[], audit_input=None, now=NOW)  # fmt: skip


def _head(doc):
    return next(c for c in doc["capacity"] if c["category"] == "bf16/fp16")


def test_a_defective_device_is_counted_but_not_healthy(tmp_path):
    doc = _site(tmp_path, [[700.0, 701.0, 702.0, 500.0]])  # the fourth GPU is 29% below its group's median
    (inv,) = doc["inventory"]
    assert (inv["devices"], inv["healthy"], inv["defective"], inv["stale"]) == (4, 3, 1, 0)
    share = next(r for r in doc["readiness"] if r["id"] == "healthy_share")
    assert share["value"] == pytest.approx(0.75)
    assert _head(doc)["reported_pflops"] == pytest.approx((700 + 701 + 702 + 500) / 1e3, rel=1e-3)


def test_a_device_measured_before_the_staleness_window_is_stale_and_only_reported(tmp_path):
    doc = _site(tmp_path, [[700.0, 701.0]], as_of=world.AS_OF + dt.timedelta(days=45))
    (inv,) = doc["inventory"]
    assert (inv["stale"], inv["healthy"], inv["bounded_devices"]) == (2, 0, 0)
    assert _head(doc)["bounded_pflops"] == 0 and _head(doc)["reported_pflops"] > 1.4
    (tmp_path / "fresh").mkdir()
    fresh = _site(tmp_path / "fresh", [[700.0, 701.0]])
    assert _head(fresh)["bounded_pflops"] == pytest.approx(_head(fresh)["reported_pflops"])


def test_tree_by_factorized_names_is_tree_by_names():
    """tree() groups by integer codes of the sorted place names: the same nodes, counts and float sums (bit for bit)
    as grouping by the names, on rows whose sums depend on their order."""
    import random

    import pandas as pd

    from bench.disclosure import kpis as k

    r = random.Random("tree")
    rows = []
    for i in range(3000):
        region, city = r.choice(["R1", "R0", "Rz", "é"]), r.choice(["C2", "C10", "C1"])
        rows.append({"p0": "Land", "p1": region, "p2": city, "p3": f"S{r.randrange(7)}", "cluster": r.choice(["main", "b"]),
                     "device": f"GPU-{r.randrange(2500)}", "precision": r.choice(["bfloat16", "float16", "float32"]),
                     "mamf_tflops": r.choice([0.1, 1e16, 1.0, 700.0 + r.random(), 1e-300]),
                     "tier": r.choice(["reported", "bounded"])})  # fmt: skip
    counted = pd.DataFrame(rows).sort_values(["p3", "device"], kind="stable").reset_index(drop=True)
    counted = counted.sample(frac=1.0, random_state=1)  # an index out of order, as after a filter
    for depth, where in (
        (1, {}),
        (2, {"p1": "R1"}),
        (3, {"p1": "é", "p2": "C10"}),
        (4, {"p1": "R0", "p2": "C1", "p3": "S3"}),
    ):
        part = counted
        for column, name in where.items():
            part = part[part[column] == name]
        per_cat = {c: k._per_device(part[part["precision"].isin(ps)]) for c, ps in k.CATEGORIES}
        fast, plain = k.tree(part, per_cat, depth), k._tree_by_names(part, per_cat, depth)
        assert fast == plain and repr(fast) == repr(plain)
        numbered = k.tree(part, per_cat, depth, devices=pd.factorize(part["device"])[0])
        assert repr(numbered) == repr(plain)
        assert fast["children"] and fast["pflops"]


def test_inventory_by_devices_unsorted_is_inventory_by_sorted_devices():
    """inventory() folds each device's flags by hashing alone (no sort of the device ids): the same figures as
    grouping by sorted device, including a model whose devices mix kinds (laid out sorted again there)."""
    import random

    import pandas as pd

    from bench.disclosure import kpis as k

    r = random.Random("inventory")
    for mixed in (False, True):
        rows = []
        for _ in range(2000):
            device = f"GPU-{r.randrange(900)}"
            model = r.choice(["H100", "A100", None])
            kind = "cpu" if mixed and r.random() < 0.3 else ("cuda" if model else r.choice(["cpu", None]))
            rows.append({"device": device, "model": model, "kind": kind, "host": f"h{r.randrange(40)}",
                         "tier": r.choice(["reported", "bounded"]), "defective": r.random() < 0.1,
                         "stale": r.random() < 0.1,
                         "measured": pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(minutes=r.randrange(9999))})  # fmt: skip
        counted = pd.DataFrame(rows)
        flags = counted.assign(bounded=counted["tier"] == "bounded")
        assert k._devices_unsorted(flags) is not None
        real = k._devices_unsorted
        try:
            k._devices_unsorted = lambda flags, codes=None: None  # the sorted form
            plain = k.inventory(counted)
        finally:
            k._devices_unsorted = real
        assert k.inventory(counted) == plain and plain
        assert k.inventory(counted, devices=pd.factorize(counted["device"])[0]) == plain  # numbered by the caller


def test_gpu_memory_counts_each_gpu_once_from_its_first_row():

    r = random.Random("memory")
    for trial in range(30):
        n = r.randrange(0, 300)
        counted = pd.DataFrame({
            "device": [f"GPU-{r.randrange(max(1, n // 2))}" for _ in range(n)],
            "kind": [r.choice(["cuda", "cuda", "cpu", None]) for _ in range(n)],
            "memory_bytes": [r.choice([80 * 2**30, 40 * 2**30, None, math.nan]) if trial % 2 else r.randrange(1, 2**37)
                             for _ in range(n)],
        })  # fmt: skip
        plain = memory_total(counted[counted["kind"] == "cuda"].drop_duplicates("device")["memory_bytes"])
        assert dd.gpu_memory(counted, pd.factorize(counted["device"])[0]) == plain


def test_per_device_ordered_by_numbers_is_ordered_by_pandas():
    """_per_device orders by -MAMF and precision codes (numpy): the frame sort_values gave, ties and -0.0 included."""
    r = random.Random("per device")
    for trial in range(40):
        n = r.randrange(0, 200)
        rows = pd.DataFrame({
            "device": [f"GPU-{r.randrange(max(1, n // 3))}" for _ in range(n)],
            "precision": [r.choice(["bfloat16", "float16", "Float16", "é"]) for _ in range(n)],
            "mamf_tflops": [r.choice([700.0, 700.5, 0.0, -0.0, 1e-300, 5e6, r.random()]) for _ in range(n)],
        })  # fmt: skip
        if trial % 5 == 4 and n:
            rows.loc[rows.index[0], "mamf_tflops"] = math.nan  # a gap: pandas sorts it
        rows = rows.sample(frac=1.0, random_state=trial)  # an index out of order, as after a filter
        plain = rows.sort_values(["mamf_tflops", "precision"], ascending=[False, True], kind="stable")
        pd.testing.assert_frame_equal(k._per_device(rows), plain.drop_duplicates("device"))


def test_categories_by_precision_codes_are_categories_by_isin():
    """categories() hashes the precisions once: each category's rows are the ones isin() picks, ordered alike."""
    r = random.Random("categories")
    for trial in range(20):
        n = r.randrange(0, 150)
        counted = pd.DataFrame({
            "device": [f"GPU-{r.randrange(60)}" for _ in range(n)],
            "precision": [r.choice(["bfloat16", "float16", "float32", "int8", "tf32", None]) for _ in range(n)],
            "mamf_tflops": [r.choice([1.0, 700.0, 700.5, r.random()]) for _ in range(n)],
        })  # fmt: skip
        got = k.categories(counted)
        for c, ps in k.CATEGORIES:
            plain = k._per_device(counted[counted["precision"].isin(ps)])
            assert got[c].empty == plain.empty
            if not plain.empty:
                pd.testing.assert_frame_equal(got[c], plain)


def test_inventory_by_model_codes_is_inventory_by_groupby():
    """inventory()'s rows by model folded from numbered models (numpy) are the groupby's: counts, flags, distinct
    hosts (a missing host not counted), each model's first kind and its rows' date range; a model whose devices have
    no kind at all is left to the groupby."""
    import random

    import pandas as pd

    from bench.disclosure import kpis as k

    r = random.Random("inventory by codes")
    fast = 0
    for trial in range(40):
        rows = []
        for _ in range(r.randrange(1, 400)):
            model = r.choice(["H100", "A100", "Zeta", "é", None])
            kind = (
                None
                if model == "Zeta" and trial % 3 == 0
                else r.choice(["cuda", "cpu", None] if trial % 4 else ["cuda"])
            )
            rows.append({"device": f"GPU-{r.randrange(150)}", "model": model, "kind": kind,
                         "host": r.choice([None, f"h{r.randrange(30)}"]), "tier": r.choice(["reported", "bounded"]),
                         "defective": r.random() < 0.1, "stale": r.random() < 0.2,
                         "measured": pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(minutes=r.randrange(9999))})  # fmt: skip
        counted = pd.DataFrame(rows)
        real, calls = k._by_model_codes, []
        try:
            k._by_model_codes = lambda *a, real=real, calls=calls: calls.append(
                real(*a)
            )  # the groupby, after the codes
            plain = k.inventory(counted)
        finally:
            k._by_model_codes = real
        assert k.inventory(counted) == plain and plain
        fast += calls[0] is not None
    assert 10 < fast < 40  # both paths taken


def test_site_pflops_by_numbers_is_site_pflops_by_names():
    """Each site's headline PFLOPS from numbered sites and (site, device) pairs: the same floats as grouping by site
    name and dropping each group's repeated devices (a device in two sites counts in each; NaN MAMF as pandas sums it)."""
    import math
    import random

    import pandas as pd

    from bench.disclosure import document as dd

    r = random.Random("site pflops")
    for trial in range(40):
        n = r.randrange(0, 300)
        counted = pd.DataFrame({
            "site": [r.choice(["L/R/C/S1", "L/R/C/S2", "L/R/D/S10", "L/Q/C/é"]) for _ in range(n)],
            "device": [f"GPU-{r.randrange(80)}" for _ in range(n)],
            "precision": [r.choice(["bfloat16", "float16", "float32"]) for _ in range(n)],
            "mamf_tflops": [r.choice([700.1, 1e-3, 3e6, r.random() * 1000]) for _ in range(n)],
        })  # fmt: skip
        if trial % 7 == 6 and n:
            counted.loc[counted.index[0], "mamf_tflops"] = math.nan
        devices = pd.factorize(counted["device"])[0]
        assert dd.site_pflops(counted, devices) == dd._site_pflops_by_names(counted)


def test_categories_from_device_numbers_are_categories_by_pandas():
    """categories(devices=...) orders each category's rows by numbers and keeps each device's first row by its number,
    in one take: the frames _per_device gives (ties, -0.0, a NaN MAMF and a missing device left to pandas)."""
    r = random.Random("categories by numbers")
    fast = 0
    for trial in range(60):
        n = r.randrange(0, 300)
        counted = pd.DataFrame({
            "device": [None if trial % 9 == 8 and i == 0 else f"GPU-{r.randrange(max(1, n // 2))}" for i in range(n)],
            "precision": [r.choice(["bfloat16", "float16", "float32", "int8", "float8_e4m3", "float8_e5m2", None])
                          for _ in range(n)],
            "mamf_tflops": [r.choice([700.0, 700.5, 0.0, -0.0, 1e-300, 5e6, r.random()]) for _ in range(n)],
            "tier": [r.choice(["bounded", "reported"]) for _ in range(n)],
        })  # fmt: skip
        if trial % 7 == 6 and n:
            counted.loc[counted.index[0], "mamf_tflops"] = math.nan
        counted = counted.sample(frac=1.0, random_state=trial)  # an index out of order
        devices = pd.factorize(counted["device"])[0]
        plain, numbered = k.categories(counted), k.categories(counted, devices=devices)
        for c, ps in k.CATEGORIES:
            pd.testing.assert_frame_equal(numbered[c], plain[c])
            pd.testing.assert_frame_equal(plain[c], k._per_device(counted[counted["precision"].isin(ps)]))
            fast += k._per_device_at(counted, np.flatnonzero(counted["precision"].isin(ps).to_numpy()),
                                     *pd.factorize(counted["precision"]), devices) is not None  # fmt: skip
    assert fast > 100
