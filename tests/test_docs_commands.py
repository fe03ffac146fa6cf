"""Every command the README and docs/ show parses against bench's own command line, so the docs cannot drift from it.

Each shell code block of README.md, configs/README.md and docs/*.md is cut into simple commands (continued lines
joined, comments, pipes, `&&`, `&` and redirections taken apart); in each, the bench invocation (`bench`, `.venv/bin/bench`,
`$(which bench)` after torchrun/srun, `python -m bench`, `./run_bench.sh ...`) is checked against the click command
tree without running it: the verb (and sub-verb) exists, every option exists for that verb, an option that takes a
value has one, a flag is given none, a Choice option's value is one of its choices, and the number of arguments
fits. Values are not converted otherwise (a path need not exist, a device need not be on this machine), and
placeholders such as REPORT, <run-id>, `[--json]` or `REPORT...` stand for what the reader fills in. Inline code in
prose that starts with bench (`bench verify --proof`) is a mention: its verbs, options and choices are checked.

`./run_bench.sh` takes `test` (then pytest's arguments) or bench's arguments; its sub-commands are read from
run_bench.sh itself."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from bench.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "configs" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGS = {"", "sh", "bash", "shell", "console"}
SEPARATORS = {"&&", "||", "|", ";", "&", "(", ")", "|&"}
REDIRECTS = {">", ">>", "<", "2>", "2>>", "&>"}


@dataclass(frozen=True)
class Shown:
    """One bench command as a doc shows it."""

    doc: str
    line: int
    text: str
    argv: tuple[str, ...]  # bench's arguments, after the program name
    via_run_bench: bool = False


def shell_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, body) of every fenced code block in a shell language (or none)."""
    blocks, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        fence = re.match(r"^\s*```(\S*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        lang, start, body = fence.group(1).lower(), i + 2, []
        i += 1
        while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
            body.append(lines[i])
            i += 1
        i += 1
        if lang in SHELL_LANGS:
            blocks.append((start, "\n".join(body)))
    return blocks


def logical_lines(first: int, body: str) -> list[tuple[int, str]]:
    """Lines with `\\` continuations joined, each with the doc line it starts on."""
    out: list[tuple[int, str]] = []
    pending, start = "", first
    for offset, line in enumerate(body.split("\n")):
        if not pending:
            start = first + offset
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append((start, pending + line))
        pending = ""
    if pending:
        out.append((start, pending))
    return out


def _prepare(line: str) -> str:
    """Shell forms shlex cannot take apart, made into words: `$(which bench)` is bench itself, any other `$(...)`
    and `<placeholder>` one word each."""
    line = re.sub(r"\$\(\s*which\s+bench\s*\)", "bench", line)
    line = re.sub(r"\$\([^()]*\)", "SUBST", line)
    return re.sub(r"<[\w.-]+>", "PLACEHOLDER", line)


def simple_commands(line: str) -> list[list[str]]:
    """A shell line cut into its simple commands (words), without comments and redirections."""
    lexer = shlex.shlex(_prepare(line), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands, words, skip = [], [], False
    for token in lexer:
        if skip:
            skip = False
            continue
        if token in SEPARATORS:
            commands.append(words)
            words = []
        elif token in REDIRECTS or re.fullmatch(r"\d?>{1,2}&?\d?", token):
            skip = not token.endswith(tuple("0123456789"))  # `2>&1` names its target itself
        else:
            words.append(token)
    commands.append(words)
    return [c for c in commands if c]


def bench_argv(words: list[str]) -> tuple[tuple[str, ...], bool] | None:
    """bench's own arguments in a simple command, and whether it came through ./run_bench.sh; None when the command
    runs no bench."""
    for i, word in enumerate(words):
        if word == "bench" or word.endswith("/bin/bench"):
            return tuple(words[i + 1 :]), False
        if word == "-m" and i + 1 < len(words) and words[i + 1] == "bench" and "python" in words[i - 1]:
            return tuple(words[i + 2 :]), False
        if word == "./run_bench.sh" or word.endswith("/run_bench.sh"):
            return tuple(words[i + 1 :]), True
    return None


def shown_commands() -> list[Shown]:
    found = []
    for doc in DOCS:
        rel = str(doc.relative_to(ROOT))
        for first, body in shell_blocks(doc.read_text(encoding="utf-8")):
            for number, line in logical_lines(first, body):
                for words in simple_commands(line):
                    hit = bench_argv(words)
                    if hit is not None:
                        found.append(Shown(rel, number, line.strip(), *hit))
    return found


# --- checking one command against the click tree --------------------------------------------------------------------


def _placeholder(word: str) -> bool:
    """A word the reader replaces: REPORT, FILE, PLACEHOLDER (from <run-id>), SUBST (from $(...)), $VAR."""
    return bool(re.fullmatch(r"[A-Z][A-Z0-9_]*", word)) or word.startswith("$")


def _clean(argv: tuple[str, ...]) -> list[str]:
    """Optional-syntax brackets and ellipses dropped: `[--threshold 5%]` -> --threshold 5%, `REPORT...` -> REPORT."""
    out = []
    for word in argv:
        if word in ("...", "…", "[", "]"):
            continue
        if word.startswith("[") and "]" not in word[1:-1] and (word[1:2] == "-" or _placeholder(word[1:].rstrip("]"))):
            word = word[1:]
        if word.endswith("]") and "[" not in word:
            word = word[:-1]
        word = word.removesuffix("...").removesuffix("…")
        if word:
            out.append(word)
    return out


def _check_choice(param: click.Parameter, value: str, ctx: click.Context) -> None:
    if isinstance(param.type, click.Choice) and not _placeholder(value):
        try:
            param.type.convert(value, param, ctx)
        except click.BadParameter as exc:
            raise AssertionError(f"{value!r} is not a choice of {param.opts[0]}: {exc.message}") from None


def _parse_options(
    command: click.Command, ctx: click.Context, words: list[str], mention: bool = False
) -> tuple[list[str], list[str]]:
    """Walk options (checking names, values and choices) up to the first positional word of a group, or through the
    whole line for a command. Returns (positional words, the rest after a group's sub-verb)."""
    by_name = {
        name: p for p in command.get_params(ctx) if isinstance(p, click.Option) for name in p.opts + p.secondary_opts
    }
    positional: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            positional.extend(words[i + 1 :])
            break
        if word.startswith("-") and len(word) > 1 and not re.fullmatch(r"-\d.*", word):
            name, eq, inline = word.partition("=")
            option = by_name.get(name)
            assert option is not None, f"{ctx.command_path} has no option {name}"
            takes_value = not (option.is_flag or option.count)
            if not takes_value:
                assert not eq, f"{name} of {ctx.command_path} is a flag and takes no value"
                i += 1
                continue
            if eq:
                values = [inline]
                i += 1
            else:
                values = words[i + 1 : i + 1 + option.nargs]
                assert mention or len(values) == option.nargs, f"{name} of {ctx.command_path} needs a value"
                i += 1 + option.nargs
            for value in values:
                _check_choice(option, value, ctx)
            continue
        if isinstance(command, click.Group):
            return positional, words[i:]
        positional.append(word)
        i += 1
    return positional, []


def check_argv(argv: tuple[str, ...], mention: bool = False) -> None:
    """Raise AssertionError naming what does not parse. A mention (inline code in prose, such as `bench verify
    --proof`) names a verb and its options without being a whole command: its verbs, options and choices are checked,
    not its arguments or a value it leaves out."""
    words = _clean(argv)
    command: click.Command = main
    ctx = click.Context(main, info_name="bench")
    while True:
        positional, rest = _parse_options(command, ctx, words, mention)
        if not isinstance(command, click.Group):
            break
        if not rest:
            return  # `bench --help`, `bench disclose --help`: a group with no sub-verb
        verb = rest[0]
        if mention and _placeholder(verb):
            return  # `bench VERB --help`
        sub = command.get_command(ctx, verb)
        assert sub is not None, f"{ctx.command_path} has no verb {verb!r} ({', '.join(command.list_commands(ctx))})"
        command, ctx, words = sub, click.Context(sub, info_name=verb, parent=ctx), rest[1:]
    arguments = [p for p in command.get_params(ctx) if isinstance(p, click.Argument)]
    if mention:
        return
    variadic = any(a.nargs == -1 for a in arguments)
    most = sum(a.nargs for a in arguments if a.nargs > 0)
    least = sum(a.nargs if a.nargs > 0 else 1 for a in arguments if a.required)
    asks_help = any(w in ("--help", "-h") for w in words)
    assert asks_help or len(positional) >= least, f"{ctx.command_path} needs {least} argument(s), got {positional}"
    assert variadic or len(positional) <= most, f"{ctx.command_path} takes {most} argument(s), got {positional}"
    for argument, value in zip(arguments, positional, strict=False):
        if argument.nargs == 1:
            _check_choice(argument, value, ctx)


def mentions() -> list[Shown]:
    """Inline code in prose that starts with bench (`bench verify --proof`, `bench disclose sample ... --size 60`)."""
    found = []
    for doc in DOCS:
        rel = str(doc.relative_to(ROOT))
        text = re.sub(r"^\s*```.*?^\s*```", lambda m: "\n" * m.group(0).count("\n"), doc.read_text(encoding="utf-8"),
                      flags=re.MULTILINE | re.DOTALL)  # fmt: skip
        for match in re.finditer(r"`((?:\.venv/bin/)?bench [^`]+)`", text):
            line = text.count("\n", 0, match.start()) + 1
            for words in simple_commands(match.group(1).replace("\n", " ")):
                hit = bench_argv(words)
                if hit is not None:
                    found.append(Shown(rel, line, match.group(1).replace("\n", " "), *hit))
    return found


def run_bench_subcommands() -> set[str]:
    """The first arguments run_bench.sh handles itself (`if [ "${1:-}" = "test" ]`)."""
    script = (ROOT / "run_bench.sh").read_text(encoding="utf-8")
    return set(re.findall(r'\[ "\$\{1:-\}" = "(\w+)" \]', script))


def check(shown: Shown) -> None:
    argv = shown.argv
    if shown.via_run_bench:
        if argv and argv[0] in run_bench_subcommands():
            return  # ./run_bench.sh test [pytest arguments]
        if not argv:
            return  # ./run_bench.sh: its default suite (checked below, from the script itself)
    check_argv(argv)


SHOWN = shown_commands()
MENTIONS = mentions()


def test_the_docs_show_the_commands_this_test_checks():
    """The extraction finds the docs' commands in every form they are written in (a test that checked nothing would
    pass): plain, continued with a backslash, via .venv/bin/bench, torchrun's $(which bench), ./run_bench.sh."""
    assert len(SHOWN) >= 80, len(SHOWN)
    texts = [s.text for s in SHOWN]
    assert any("$(which bench)" in t for t in texts)
    assert any(s.via_run_bench for s in SHOWN) and any(s.argv[:1] == ("challenge",) for s in SHOWN)
    assert any("\\" not in s.text and "--claim" in s.argv for s in SHOWN), "continued lines are joined"
    assert {s.doc for s in SHOWN} >= {"README.md", "docs/ops.md", "docs/auditing.md", "docs/disclosure.md"}


@pytest.mark.parametrize("shown", SHOWN, ids=[f"{s.doc}:{s.line}" for s in SHOWN])
def test_every_shown_command_parses_against_the_cli(shown: Shown):
    try:
        check(shown)
    except AssertionError as exc:
        pytest.fail(f"{shown.doc}:{shown.line}: {shown.text}\n  {exc}")


@pytest.mark.parametrize("shown", MENTIONS, ids=[f"{s.doc}:{s.line}" for s in MENTIONS])
def test_every_command_mentioned_in_prose_names_verbs_and_options_that_exist(shown: Shown):
    assert len(MENTIONS) >= 50
    try:
        check_argv(shown.argv, mention=True)
    except AssertionError as exc:
        pytest.fail(f"{shown.doc}:{shown.line}: `{shown.text}`\n  {exc}")


def test_run_bench_sh_default_and_subcommands_are_bench_commands_it_has():
    """run_bench.sh's default (DEFAULT_BENCH) parses as a bench command, and `test` is the sub-command it handles."""
    script = (ROOT / "run_bench.sh").read_text(encoding="utf-8")
    default = re.search(r"^DEFAULT_BENCH=\((.*)\)", script, flags=re.MULTILINE)
    assert default
    check_argv(tuple(shlex.split(default.group(1))))
    assert run_bench_subcommands() == {"test"}


@pytest.mark.parametrize(
    "argv, complaint",
    [
        ("verify r.json --trusted-key k", "no option --trusted-key"),
        ("verfy r.json", "no verb 'verfy'"),
        ("challenge isue -o c.json", "no verb 'isue'"),
        ("matmul --dtype bf17", "not a choice"),
        ("compare a.json", "needs 2 argument"),
        ("keys show extra", "takes 0 argument"),
        ("run --config", "needs a value"),
        ("doctor --json=yes", "takes no value"),
    ],
)
def test_what_does_not_parse_is_named(argv: str, complaint: str):
    """The checker itself refuses each kind of drift: an unknown option or verb, a bad choice, too few or too many
    arguments, a missing value, a value on a flag."""
    with pytest.raises(AssertionError, match=complaint):
        check_argv(tuple(shlex.split(argv)))


def test_placeholders_and_optional_syntax_are_allowed():
    check_argv(tuple(shlex.split("compare A/report.json B/report.json [--threshold 5%] [--json]")))
    check_argv(tuple(shlex.split("history [--node HOST] [--metric NAME] [--add REPORT...] [--json]")))
    check_argv(tuple(shlex.split("matmul --dtype DTYPE --device cuda:7")))
    check_argv(tuple(shlex.split("verify --proof")), mention=True)
    with pytest.raises(AssertionError, match="no option --prof"):
        check_argv(tuple(shlex.split("verify --prof")), mention=True)
