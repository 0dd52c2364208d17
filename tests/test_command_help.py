"""Every argument of every TitanFlow management command says what it does in --help."""

import argparse
from pathlib import Path

import pytest
from django.core.management import get_commands, load_command_class

ROOT = Path(__file__).resolve().parent.parent
OURS = sorted(
    (name, app)
    for name, app in get_commands().items()
    if (ROOT / app.replace(".", "/") / "management" / "commands" / f"{name}.py").exists()
)
# Django adds these to every command, with its own help.
DJANGO_OPTIONS = {
    "help",
    "version",
    "verbosity",
    "settings",
    "pythonpath",
    "traceback",
    "no_color",
    "force_color",
    "skip_checks",
}


def test_the_project_has_its_commands():
    names = {name for name, _ in OURS}
    assert {"import_contacts", "bench", "meta_simulator", "load_demo"} <= names


@pytest.mark.parametrize(("name", "app"), OURS, ids=[name for name, _ in OURS])
def test_every_argument_has_a_help_text(name, app):
    parser = load_command_class(app, name).create_parser("manage.py", name)
    actions = [a for a in parser._actions if a.dest not in DJANGO_OPTIONS]
    missing = [a.dest for a in actions if not a.help or a.help == argparse.SUPPRESS]
    assert missing == []
