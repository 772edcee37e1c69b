"""Every ``fedsync`` command in docs/operations.md exists and parses as written (at once, without nodes:
``tests/e2e/test_operations_walkthrough.py`` runs them); the deploy files hold together (the container ones
are not run: no container engine here)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer.main
import yaml

from api.cli import app

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()
COMMANDS = [line for block in re.findall(r"```bash\n(.*?)```", OPERATIONS, re.S) for line in block.splitlines()
            if line.startswith("fedsync ")]


def test_the_operations_doc_shows_commands():
    assert len(COMMANDS) >= 15


@pytest.mark.parametrize("line", COMMANDS)
def test_each_command_in_the_operations_doc_parses_as_written(line: str):
    words = shlex.split(line, comments=True)[1:]
    parse(words)


def parse(words: list[str]) -> None:
    """Parse a command line as the CLI would, without running it: an unknown command or option, or a
    missing argument, raises."""
    command = typer.main.get_command(app)  # typer's own click: its groups are not click.Group
    path = ["fedsync"]
    while hasattr(command, "commands") and words and words[0] in command.commands:
        path.append(words[0])
        command = command.commands[words.pop(0)]
    assert not hasattr(command, "commands"), f"{' '.join(path + words)!r} names no command"
    command.make_context(" ".join(path), list(words))


@pytest.mark.parametrize("line", ["fedsync peer add https://x --sned item", "fedsync tokens list",
                                  "fedsync token revoke --bogus", "fedsync restore"])
def test_a_command_that_does_not_exist_as_written_is_caught(line: str):
    with pytest.raises(Exception):  # noqa: B017, PT011 - typer's vendored click exceptions, or the assert
        parse(shlex.split(line)[1:])


def test_the_deploy_files_use_what_exists():
    alerts = yaml.safe_load((ROOT / "deploy" / "prometheus-alerts.yml").read_text())
    metrics = (ROOT / "api" / "metrics.py").read_text()
    for rule in alerts["groups"][0]["rules"]:
        for name in re.findall(r"fedsync_[a-z_]+", rule["expr"]):
            assert name.removesuffix("_total") in metrics, name
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    assert {"db", "hub", "platform"} <= set(compose["services"])
    containerfile = (ROOT / "deploy" / "Containerfile").read_text()
    for package in re.findall(r'"([a-z]+)\*"', (ROOT / "pyproject.toml").read_text()):
        assert f"COPY {package} ./{package}" in containerfile  # every package the install needs
    assert "ExecStart=/opt/fedsync/.venv/bin/fedsync serve" in (ROOT / "deploy" / "fedsync.service").read_text()
