"""Suite configuration: a TOML file under configs/ says what `bench run` measures and how long.

Every key is declared below with its type, default and allowed range, so a typo, a wrong type or an out-of-range value
is reported (file, section and key) before anything runs. Values are parsed as TOML data only; nothing from a config
or an override is ever evaluated as code.
"""

from __future__ import annotations

import copy
import json
import tomllib
import warnings
from pathlib import Path
from typing import Any

from bench import precision as prec
from bench import registry
from bench.registry import ConfigKey as Key

FORMATS = ("html", "md", "csv", "junit", "prometheus")


class ConfigError(ValueError):
    """A config or override that cannot be used; the message names the file, section and key."""


def _k(kind: str, default: Any, help: str, **kw: Any) -> Key:
    return Key(kind, default, help, **kw)


def workload_names() -> tuple[str, ...]:
    """Every workload bench knows now (bench.registry), in the order a suite runs them by default: read at each call,
    so that a workload registered after bench.suite was imported can be named in a config."""
    return registry.names()


def schema() -> dict[str, dict[str, Key]]:
    """Every section and key a config may hold, built from the registry as it is now (one section per workload, as
    each declares it), so a config is validated against the workloads registered when it is read."""
    workloads = workload_names()
    return {
        "suite": {
            "name": _k("str", "custom", "Name shown in reports and JUnit."),
            "description": _k("str", "", "What this suite is for."),
            "devices": _k("str-list", ["all"], "cpu, cuda:N or all (every GPU, else the CPU)."),
            "workloads": _k("str-list", list(workloads), "Workloads to run, in this order.", choices=workloads),
            "straggler_fraction": _k(
                "float",
                0.75,
                "Several ranks: name a rank in the job's report as a straggler when its "
                "own matmul is below this fraction of the job's median.",
                minimum=0.01,
                maximum=1.0,
            ),
            "concurrent_devices": _k(
                "bool",
                True,
                "Measure a node's GPUs at the same time (matmul, membw), each in its own process; false: one after another.",
            ),
        },
        # one section per workload, as each declares it (bench.registry)
        **{w.name: dict(w.config) for w in registry.workloads()},
        "gates": {
            "fail_below": _k(
                "table",
                {},
                "TFLOPS floor per precision, e.g. {float32 = 0.05}.",
                minimum=0.0,
                choices=tuple(prec.PRECISIONS),
            ),
            "baseline": _k(
                "str",
                None,
                "Node report to gate against, or a folder of several runs' reports (path, relative to the config file).",
                nullable=True,
            ),
            "max_regression": _k(
                "float", 0.05, "Largest tolerated slow-down against the baseline (0.05 = 5%).", minimum=0.0, maximum=1.0
            ),
            "alpha": _k(
                "float",
                0.01,
                "Unused by the regression gate, which judges between-run spread (kept so configs that set it load).",
                minimum=1e-9,
                maximum=0.5,
            ),
        },
        "outputs": {
            "formats": _k("str-list", list(FORMATS), "Files written next to report.json.", choices=FORMATS),
        },
    }


#: Keys renamed so that one name means one thing across sections and verbs (seconds end in _s, counts say what they
#: count). The old name is still read, with a warning, and refused when given together with the new one.
RENAMED: dict[tuple[str, str], str] = {
    ("train", "warmup"): "warmup_steps",
    ("comm", "warmup"): "warmup_iterations",
}


def defaults() -> dict[str, dict[str, Any]]:
    return {section: {name: copy.deepcopy(k.default) for name, k in keys.items()} for section, keys in schema().items()}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _range(v: float, key: Key) -> str | None:
    if key.minimum is not None and v < key.minimum:
        return f"must be >= {key.minimum:g}, got {v!r}"
    if key.maximum is not None and v > key.maximum:
        return f"must be <= {key.maximum:g}, got {v!r}"
    return None


def check_value(key: Key, value: Any) -> tuple[Any, str | None]:
    """(normalized value, None) or (None, what is wrong)."""
    if value is None:
        return (None, None) if key.nullable else (None, "must be set (null is not allowed)")
    choices = f"; valid: {', '.join(key.choices)}" if key.choices else ""
    if key.kind == "str":
        if not isinstance(value, str):
            return None, f"must be a string, got {type(value).__name__}"
        if key.choices and value not in key.choices:
            return None, f"{value!r} is not allowed{choices}"
        return value, None
    if key.kind == "bool":
        return (
            (value, None) if isinstance(value, bool) else (None, f"must be true or false, got {type(value).__name__}")
        )
    if key.kind in ("int", "float"):
        if key.kind == "int" and not (isinstance(value, int) and not isinstance(value, bool)):
            return None, f"must be an integer, got {type(value).__name__} {value!r}"
        if not _is_number(value):
            return None, f"must be a number, got {type(value).__name__} {value!r}"
        bad = _range(value, key)
        return (None, bad) if bad else (float(value) if key.kind == "float" else value, None)
    if key.kind in ("str-list", "int-list"):
        if not isinstance(value, list):
            return None, f"must be a list, got {type(value).__name__}"
        out = []
        for i, item in enumerate(value):
            element = Key(key.kind.split("-")[0], None, "", key.choices, key.minimum, key.maximum)
            item, bad = check_value(element, item)
            if bad:
                return None, f"item {i}: {bad}"
            out.append(item)
        return out, None
    if key.kind == "table":
        if not isinstance(value, dict):
            return None, f"must be a table like {{float32 = 0.05}}, got {type(value).__name__}"
        table = {}
        for name, item in value.items():
            if key.choices and name not in key.choices:
                return None, f"{name!r} is not allowed{choices}"
            item, bad = check_value(Key("float", None, "", (), key.minimum, key.maximum), item)
            if bad:
                return None, f"{name}: {bad}"
            table[name] = item
        return table, None
    raise AssertionError(key.kind)


def validate(raw: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    """Defaults overlaid with `raw` (parsed TOML), every section and key checked; ConfigError names where."""
    known = schema()
    config = defaults()
    for section, values in raw.items():
        if section not in known:
            raise ConfigError(f"{where}: unknown section [{section}]; valid: {', '.join(known)}")
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: [{section}] must be a table")
        for name, value in values.items():
            if (section, name) in RENAMED:
                new = RENAMED[section, name]
                if new in values:
                    raise ConfigError(
                        f"{where}: [{section}] {name} and {new} are the same key (the old and the new name); keep {new}"
                    )
                warnings.warn(f"{where}: [{section}] {name} is deprecated; call it {new}", FutureWarning, stacklevel=2)
                name = new
            if name not in known[section]:
                raise ConfigError(f"{where}: [{section}] unknown key {name!r}; valid: {', '.join(known[section])}")
            checked, bad = check_value(known[section][name], value)
            if bad:
                raise ConfigError(f"{where}: [{section}] {name}: {bad}")
            config[section][name] = checked
    return config


def load(path: Path | None) -> dict[str, dict[str, Any]]:
    """The validated config from a TOML file (None: every default)."""
    if path is None:
        return defaults()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return validate(raw, str(path))


def parse_override(text: str) -> tuple[str, str, Any]:
    """'section.key=VALUE' -> (section, key, value). VALUE is read as a TOML value (5, 0.5, true, ["a", "b"],
    {float32 = 1}); a bare word that is not TOML is taken as a string."""
    target, sep, value_text = text.partition("=")
    section, dot, name = target.strip().partition(".")
    if not sep or not dot or not name:
        raise ConfigError(f"--set {text!r}: expected SECTION.KEY=VALUE, e.g. matmul.budget_s=5")
    try:
        value = tomllib.loads(f"v = {value_text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = value_text.strip()
    return section, name.strip(), value


def apply_overrides(config: dict[str, dict[str, Any]], overrides: list[tuple[str, str, Any]], where: str = "command line"
                    ) -> dict[str, dict[str, Any]]:  # fmt: skip
    """`config` with each (section, key, value) set and checked like a file's."""
    raw: dict[str, dict[str, Any]] = {}
    for section, name, value in overrides:
        raw.setdefault(section, {})[name] = value
    checked = validate(raw, where)
    out = copy.deepcopy(config)
    for section, values in raw.items():
        for name in values:
            out[section][name] = checked[section][name]
    return out


def toml_text(value: Any) -> str:
    """A default as it would be written in a config file (TOML), not as Python prints it; None is "unset"."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_text(v)}" for k, v in value.items()) + "}"
    return repr(value)


def describe() -> str:
    """Every section and key with its default (as TOML) and meaning: the reference docs/configuration.md shows."""
    lines = []
    for section, keys in schema().items():
        lines.append(f"[{section}]")
        for name, k in keys.items():
            extra = f" ({', '.join(k.choices)})" if k.choices else ""
            lines.append(f"  {name} = {toml_text(k.default)}: {k.help}{extra}")
    return "\n".join(lines)
