"""Aggregation rules: the declarative thresholds (TOML, data only, never evaluated) a capacity report is built under."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from typing import Any

from bench import figures

DEFAULT_TOLERANCE = 0.10
#: The longest --max-age a rules file may hold (about 31 years): beyond it a duration is not a policy.
MAX_AGE_LIMIT_S = 1e9


class RulesError(ValueError):
    """Bad rules file; one line naming the key."""


@dataclass(frozen=True)
class Baseline:
    model: str  # substring of the device name, case-insensitive
    precision: str
    min_tflops: float


@dataclass(frozen=True)
class Rules:
    """Declarative thresholds (TOML): data only, never evaluated."""

    tolerance: float = DEFAULT_TOLERANCE
    baselines: tuple[Baseline, ...] = field(default_factory=tuple)
    max_age_s: float | None = None
    #: how a device's MAMF is chosen (bench.figures.mamf): 'steady' (the default), or 'best' (the rule before issue 25,
    #: which capacity reports without this key were built under)
    mamf_rule: str = figures.MAMF_RULE_STEADY

    def to_dict(self) -> dict[str, Any]:
        return {
            "tolerance": self.tolerance,
            "max_age_s": self.max_age_s,
            "baselines": [vars(b) for b in self.baselines],
            "mamf_rule": self.mamf_rule,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "rules", *, old: bool = False) -> Rules:
        """Rules from a rules file, or (old=True) from a capacity report, where a missing mamf_rule means the report
        predates it and was built under MAMF_RULE_BEST."""
        unknown = set(d) - {"tolerance", "baseline", "baselines", "max_age_s", "mamf_rule"}
        if unknown:
            raise RulesError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; valid: tolerance, baseline, "
                             "max_age_s, mamf_rule")  # fmt: skip
        mamf_rule = d.get("mamf_rule", figures.MAMF_RULE_BEST if old else figures.MAMF_RULE_STEADY)
        if mamf_rule not in figures.MAMF_RULES:
            raise RulesError(f"{where}: mamf_rule must be one of {', '.join(figures.MAMF_RULES)}, got {mamf_rule!r}")
        tol = d.get("tolerance", DEFAULT_TOLERANCE)
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 <= tol < 1:
            raise RulesError(f"{where}: tolerance must be a number in [0, 1), got {tol!r}")
        baselines = []
        listed = d.get("baseline", d.get("baselines", []))
        if not isinstance(listed, list):
            raise RulesError(f"{where}: baseline must be a list of [[baseline]] tables")
        for i, b in enumerate(listed):
            if not isinstance(b, dict) or set(b) != {"model", "precision", "min_tflops"}:
                raise RulesError(f"{where}: baseline[{i}] needs exactly model, precision and min_tflops")
            if not all(isinstance(b[k], str) for k in ("model", "precision")):
                raise RulesError(f"{where}: baseline[{i}].model and .precision must be strings")
            if (
                not isinstance(b["min_tflops"], (int, float))
                or isinstance(b["min_tflops"], bool)
                or not 0 <= b["min_tflops"] < 1e12
            ):
                raise RulesError(f"{where}: baseline[{i}].min_tflops must be a non-negative number")
            baselines.append(Baseline(str(b["model"]), str(b["precision"]), float(b["min_tflops"])))
        max_age = d.get("max_age_s")
        if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, (int, float))
                                    or not 0 < max_age <= MAX_AGE_LIMIT_S):  # fmt: skip
            raise RulesError(
                f"{where}: max_age_s must be a number of seconds in (0, {MAX_AGE_LIMIT_S:g}], got {max_age!r}"
            )
        return cls(float(tol), tuple(baselines), None if max_age is None else float(max_age), mamf_rule)


def load_rules(text: str, where: str) -> Rules:
    try:
        return Rules.from_dict(tomllib.loads(text), where)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{where}: not valid TOML: {exc}") from None
