"""One meaning per option name: every time option reads a time span the same way (plain seconds, or a number with
s/m/h/d/w), and challenge issue's matrix size is --size as in matmul (its old --n, matmul's grid range, is an alias)."""

from __future__ import annotations

import datetime as dt
import json

import click
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.cli.params import DurationParam, SecondsParam, parse_seconds


@pytest.mark.parametrize(("text", "seconds"), [("2", 2.0), ("0.5", 0.5), ("90s", 90.0), ("10m", 600.0),
                                               ("1.5h", 5400.0), ("7d", 604800.0), (" 30 ", 30.0)])  # fmt: skip
def test_a_time_span_is_seconds_or_a_number_with_a_unit(text, seconds):
    assert parse_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "ten", "5 minutes", "-1", "inf", "nan", "1e400", "10x", "1_0s"])
def test_what_is_not_a_time_span_is_refused_with_the_forms_accepted(text):
    with pytest.raises(ValueError, match="time span"):
        parse_seconds(text)


def test_a_time_option_below_its_minimum_is_a_usage_error():
    with pytest.raises(click.BadParameter, match="at least 0.001 s"):
        SecondsParam(0.001).convert("0", None, None)
    assert DurationParam().convert("300", None, None) == dt.timedelta(seconds=300)
    assert DurationParam().convert("5m", None, None) == dt.timedelta(minutes=5)


@pytest.mark.parametrize("verb", [["matmul"], ["membw"], ["comm"], ["train"], ["challenge", "issue"],
                                  ["challenge", "answer"], ["challenge", "collect"]])  # fmt: skip
def test_every_time_option_of_the_measuring_verbs_takes_a_time_span(verb):
    """--budget, --window, --settle, --warmup-s, --timeout, --wait, --grace, --interval: one reader, one meaning."""
    command = main
    for word in verb:
        command = command.get_command(click.Context(command), word)
    time_names = {"--budget", "--window", "--settle", "--warmup-s", "--timeout", "--wait", "--grace", "--interval"}
    found = [p for p in command.params if isinstance(p, click.Option) and time_names & set(p.opts)]
    assert found, verb
    assert all(isinstance(p.type, SecondsParam) for p in found), [(p.opts, p.type) for p in found]


def test_a_bad_time_span_exits_2_naming_the_forms(tmp_path):
    res = CliRunner().invoke(main, ["matmul", "--device", "cpu", "--search", "auto", "--window", "ten"])
    assert res.exit_code == 2 and "time span" in res.output


def _issue(tmp_path, *args):
    auditor = tmp_path / "auditor.pem"
    if not auditor.exists():
        assert CliRunner().invoke(main, ["keys", "init", "--key", str(auditor)]).exit_code == 0
    out = tmp_path / "ch.json"
    res = CliRunner().invoke(main, ["challenge", "issue", "-o", str(out), "--auditor-key", str(auditor), *args])
    assert res.exit_code == 0, res.output
    return json.loads(out.read_text())


def test_challenge_size_is_size_as_in_matmul_and_the_old_n_still_works(tmp_path):
    assert _issue(tmp_path, "--size", "128", "--window", "300")["n"] == 128
    assert _issue(tmp_path, "--n", "96")["n"] == 96
    doc = _issue(tmp_path, "--size", "64", "--window", "300")
    issued = dt.datetime.fromisoformat(doc["issued_utc"])
    deadline = dt.datetime.fromisoformat(doc["deadline_utc"])
    assert deadline - issued == dt.timedelta(seconds=300)  # plain seconds, as --window in matmul
