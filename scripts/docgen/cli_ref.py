"""docs/reference/cli.md: every `moa-gateway` command and flag, walked from the argparse parser."""

from __future__ import annotations

import argparse

from moa_gateway.cli import build_parser
from scripts.docgen.markdown import GENERATED_NOTE, code, table, value_text
from scripts.docgen.notes import CLI_NOTES

# What the parser cannot say: how a command is used beyond its flags.
USAGE_NOTES = {
    "serve": "Flags override the `MOA_*` variables ([Process settings](settings.md)); on SIGTERM the "
    "gateway drains ([Reliability](../operations/reliability.md)).",
    "check-config": "Exits 0 when the file is valid, 2 with a message naming the file and the field "
    "when it is not.",
    "simulate": "A standalone OpenAI-compatible server of the [simulator](simulator.md)'s models; point "
    "a `type: openai` provider at the URL it prints (`serving on http://127.0.0.1:9000/v1`). It logs one "
    "line per request (method, path, status, time) at `--log-level info`.",
    "hash-key": 'Reads the key from stdin, its first line (`printf %s "$GATEWAY_KEY" | moa-gateway '
    "hash-key`, or `moa-gateway hash-key < key.txt`; on a terminal it is prompted for without echo), so it "
    "stays out of the shell history, and prints the digest for `auth.api_key_sha256`.",
    "eval": "See [Evaluation](../guides/evaluation.md) for the report and how to read it.",
}


def commands() -> dict[str, tuple[str, argparse.ArgumentParser]]:
    """Each subcommand's name, its one-line help and its parser, in the order they were added."""
    parser = build_parser()
    found: dict[str, tuple[str, argparse.ArgumentParser]] = {}
    for action in parser._actions:  # argparse keeps its subcommands on this private list only
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                found[name] = (helps.get(name, ""), sub)
    return found


def arguments(sub: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in sub._actions if not isinstance(a, argparse._HelpAction)]


def _flag(action: argparse.Action) -> str:
    return ", ".join(action.option_strings) if action.option_strings else action.dest


def _value(action: argparse.Action) -> str:
    if action.nargs == 0:
        return "(a switch)"
    if action.choices:
        return " | ".join(code(str(c)) for c in action.choices)
    kind = getattr(action.type, "__name__", "string") if action.type else "string"
    return {"str": "string", "int": "integer", "float": "number", "Path": "path"}.get(kind, kind)


def _help(command: str, action: argparse.Action) -> str:
    key = f"{command} {_flag(action).split(', ')[0]}"
    if action.help and key in CLI_NOTES:
        raise SystemExit(f"scripts/docgen/notes.py: {key!r} has help in the parser now; drop its note")
    text = action.help or CLI_NOTES.get(key)
    if not text:
        raise SystemExit(f"moa-gateway {key}: no help; add `help=` to the argument (or a note)")
    return text


def _synopsis(command: str, sub: argparse.ArgumentParser) -> str:
    parts = [f"moa-gateway {command}"]
    for action in arguments(sub):
        if not action.option_strings:
            parts.append(action.dest.upper())
            continue
        flag = action.option_strings[0] + ("" if action.nargs == 0 else f" {action.dest.upper()}")
        parts.append(flag if action.required else f"[{flag}]")
    return " ".join(parts)


def render() -> str:
    out = [
        "# Command line reference\n",
        GENERATED_NOTE,
        "`moa-gateway` (also `python -m moa_gateway`) has one subcommand per job. Every flag below is read "
        "from the parser in `app/moa_gateway/cli/`.\n",
    ]
    for name, (summary, sub) in commands().items():
        out.append(f"## `moa-gateway {name}`\n")
        out.append(f"{summary[:1].upper()}{summary[1:]}. {USAGE_NOTES.get(name, '')}".rstrip() + "\n")
        out.append(f"```\n{_synopsis(name, sub)}\n```\n")
        rows = [
            [
                code(_flag(action)),
                _value(action),
                "required"
                if action.required or not action.option_strings
                else (
                    ""
                    if action.default is None or action.default is False
                    else code(value_text(action.default))
                ),
                _help(name, action),
            ]
            for action in arguments(sub)
        ]
        if rows:
            out.append(table(["argument", "value", "default", "description"], rows))
    return "\n".join(out)
