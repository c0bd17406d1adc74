"""The command's parser (``cli/_parser``): the help lists the commands, shows no reST markup,
and every option of every command has help text."""

from __future__ import annotations

import argparse

import pytest

from yeastar_csss_async import cli

from tests._support.command import run


def all_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {
        "yeastar-csss": parser,
        **{f"yeastar-csss {name}": sub for name, sub in commands.choices.items()},
    }


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "export" in result.stdout
    assert "sandbox" in result.stdout


@pytest.mark.parametrize(
    "command", [[], ["export"], ["sandbox"]], ids=["main", "export", "sandbox"]
)
def test_help_shows_no_rest_markup(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: yeastar-csss")
    for markup in ("``", ":class:", ":func:", ":meth:", ":mod:", ":attr:", ".. ", "`"):
        assert markup not in result.stdout, (markup, result.stdout)


def test_every_option_of_every_command_has_help_text() -> None:
    for name, parser in all_parsers().items():
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help, (name, action.dest)
            assert action.help != argparse.SUPPRESS
            assert "`" not in action.help
