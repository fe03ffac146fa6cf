"""Suite configs: every shipped config validates; every kind of mistake names the file, section and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import suite

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.toml"))


def test_the_shipped_suites_exist_and_validate():
    names = {p.name for p in CONFIGS}
    assert {"smoke-cpu.toml", "node.toml", "audit.toml"} <= names
    for path in CONFIGS:
        config = suite.load(path)
        assert set(config) == set(suite.schema())


def test_defaults_fill_what_a_file_leaves_out(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[matmul]\nbudget_s = 2\n")
    config = suite.load(path)
    assert config["matmul"]["budget_s"] == 2.0 and isinstance(config["matmul"]["budget_s"], float)
    assert config["membw"]["budget_s"] == suite.schema()["membw"]["budget_s"].default
    assert config["suite"]["workloads"] == list(suite.workload_names())


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[matmull]\nbudget_s = 1\n", "unknown section [matmull]; valid: suite, matmul"),
        ("[matmul]\nbudjet_s = 1\n", "[matmul] unknown key 'budjet_s'; valid: search, precisions"),
        ('[matmul]\nbudget_s = "fast"\n', "[matmul] budget_s: must be a number, got str 'fast'"),
        ("[matmul]\nbudget_s = -1\n", "[matmul] budget_s: must be >= 0.001, got -1"),
        ("[matmul]\nmin_iterations = 2.5\n", "[matmul] min_iterations: must be an integer"),
        ("[matmul]\nmin_iterations = true\n", "[matmul] min_iterations: must be an integer"),
        (
            '[matmul]\nprecisions = ["float32", "fp7"]\n',
            "[matmul] precisions: item 1: 'fp7' is not allowed; valid: float64",
        ),
        ('[matmul]\nsearch = "grid"\n', "[matmul] search: 'grid' is not allowed; valid: auto, none"),
        ('[suite]\nworkloads = "matmul"\n', "[suite] workloads: must be a list, got str"),
        ("[gates]\nfail_below = { float33 = 1 }\n", "[gates] fail_below: 'float33' is not allowed"),
        ("[gates]\nfail_below = { float32 = -1 }\n", "[gates] fail_below: float32: must be >= 0"),
        ("[gates]\nmax_regression = 2\n", "[gates] max_regression: must be <= 1, got 2"),
        ("suite = 3\n", "[suite] must be a table"),
        ("[matmul\n", "not valid TOML"),
    ],
)
def test_each_mistake_names_file_section_and_key(tmp_path, text, needle):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(suite.ConfigError) as exc:
        suite.load(path)
    assert str(exc.value).startswith(str(path))
    assert needle in str(exc.value)


def test_a_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(suite.ConfigError, match="cannot read"):
        suite.load(tmp_path / "absent.toml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("matmul.budget_s=5", ("matmul", "budget_s", 5)),
        ("matmul.window_s = 0.5", ("matmul", "window_s", 0.5)),
        ('matmul.precisions=["float32"]', ("matmul", "precisions", ["float32"])),
        ("gates.fail_below={float32 = 0.1}", ("gates", "fail_below", {"float32": 0.1})),
        ("matmul.search=none", ("matmul", "search", "none")),  # a bare word is a string
        ("suite.name=my suite", ("suite", "name", "my suite")),
    ],
)
def test_overrides_are_toml_values(text, expected):
    assert suite.parse_override(text) == expected


@pytest.mark.parametrize("text", ["budget_s=5", "matmul.budget_s", "=5", "matmul.=5"])
def test_malformed_overrides_say_the_expected_form(text):
    with pytest.raises(suite.ConfigError, match="expected SECTION.KEY=VALUE"):
        suite.parse_override(text)


def test_overrides_win_over_the_file_and_are_checked_like_it(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[matmul]\nbudget_s = 2\nwindow_s = 1\n")
    config = suite.apply_overrides(suite.load(path), [suite.parse_override("matmul.budget_s=7")])
    assert config["matmul"]["budget_s"] == 7.0 and config["matmul"]["window_s"] == 1.0
    with pytest.raises(suite.ConfigError, match=r"command line: \[matmul\] budget_s: must be >= 0.001"):
        suite.apply_overrides(config, [suite.parse_override("matmul.budget_s=0")])
    with pytest.raises(suite.ConfigError, match="unknown key 'nope'"):
        suite.apply_overrides(config, [suite.parse_override("matmul.nope=1")])


def test_config_text_is_never_evaluated(tmp_path):
    marker = tmp_path / "pwned"
    payload = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    with pytest.raises(suite.ConfigError):
        suite.apply_overrides(suite.defaults(), [suite.parse_override(f"matmul.budget_s={payload}")])
    path = tmp_path / "c.toml"
    path.write_text(f'[suite]\nname = """{payload}"""\n')
    assert suite.load(path)["suite"]["name"] == payload
    assert not marker.exists()


def test_describe_lists_every_key():
    text = suite.describe()
    for section, keys in suite.schema().items():
        assert f"[{section}]" in text
        for name in keys:
            assert f"  {name} = " in text


def test_renamed_keys_are_read_under_their_old_name_with_a_warning(tmp_path):
    path = tmp_path / "old.toml"
    path.write_text("[train]\nwarmup = 2\n[comm]\nwarmup = 3\n")
    with pytest.warns(FutureWarning, match=r"\[comm\] warmup is deprecated; call it warmup_iterations"):
        config = suite.load(path)
    assert config["train"]["warmup_steps"] == 2 and config["comm"]["warmup_iterations"] == 3
    assert "warmup" not in config["train"] and "warmup" not in config["comm"]


def test_old_and_new_name_of_one_key_together_are_refused(tmp_path):
    path = tmp_path / "both.toml"
    path.write_text("[comm]\nwarmup = 3\nwarmup_iterations = 4\n")
    with pytest.raises(suite.ConfigError, match="warmup and warmup_iterations are the same key"):
        suite.load(path)


def test_describe_prints_defaults_as_toml_not_python():
    text = suite.describe()
    defaults = [line.split(" = ", 1)[1].split(": ", 1)[0] for line in text.splitlines() if " = " in line]
    assert len(defaults) == sum(len(keys) for keys in suite.schema().values())
    assert not [d for d in defaults if "None" in d or "True" in d or "False" in d or "'" in d]
    assert '  devices = ["all"]:' in text and "  concurrent_devices = true:" in text and "  budget_s = unset:" in text
