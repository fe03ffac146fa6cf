"""bench.plans: what a suite config turns into (steps per workload and device, in the config's order, each from its
workload's descriptor). Building steps measures nothing: every check here runs without timing a kernel."""

from bench import plans, suite
from bench.hardware.devices import DeviceFacts
from bench.planning import matmul as matmul_plan
from bench.planning import membw as membw_plan
from bench.planning import train as train_plan

CPU = DeviceFacts("cpu", "cpu", "test cpu", "fp-a", 0, None, ("avx2", "fma"))
HOST = {"physical_cores": 2, "max_clock_mhz": 3000.0, "isa_flags": {"avx2": True, "fma": True}, "cpu_model": "test cpu"}


def _config(**sections):
    config = suite.defaults()
    for name, values in sections.items():
        config[name].update(values)
    return config


def test_suite_steps_follow_the_config_order_and_leave_comm_to_the_ranks():
    config = _config(suite={"workloads": ["train", "membw", "matmul", "comm"]}, matmul={"precisions": ["float32"]},
                     train={"models": ["mlp"], "presets": ["tiny"]})  # fmt: skip
    steps = plans.suite_steps(config, [CPU], HOST, {})
    assert [s.workload for s in steps] == ["train", "membw", "matmul"]
    assert [s.label for s in steps] == ["train mlp tiny on cpu", "membw cpu", "cpu float32 search"]
    assert all(s.device["id"] == "cpu" and s.lane is None for s in steps)  # the CPU never runs in a lane


def test_fixed_sizes_give_one_step_per_precision_and_size():
    config = _config(suite={"workloads": ["matmul"]},
                     matmul={"search": "none", "precisions": ["float32", "float64"], "sizes": [128, 256]})  # fmt: skip
    labels = [s.label for s in plans.suite_steps(config, [CPU], HOST, {})]
    assert labels == ["cpu float32 128x128x128", "cpu float32 256x256x256", "cpu float64 128x128x128",
                      "cpu float64 256x256x256"]  # fmt: skip


def test_every_step_builder_of_the_registry_is_what_suite_steps_calls():
    from bench import registry

    builders = {w.name: w.step_builder() for w in registry.workloads()}
    assert builders == {"matmul": matmul_plan.suite_steps, "membw": membw_plan.suite_steps,
                        "train": train_plan.suite_steps, "comm": None}  # fmt: skip


def test_plans_names_no_workload():
    """bench.plans orders what descriptors give: no workload module, no workload's name, no workload's planning."""
    import ast
    from pathlib import Path

    from bench import registry

    source = Path(plans.__file__).read_text()
    tree = ast.parse(source)
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m.startswith(("bench.workloads", "bench.planning", "torch"))}
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    named = {w for w in registry.names() if any(w in s.split() or f'"{w}"' in s for s in strings)}
    assert not named, f"bench/plans.py names {named}"
