"""``nentang-sdk``: the SDK's command line, for people extending the platform.

::

    nentang-sdk new my-province-check [--name NAME] [--state STATE]
    nentang-sdk --version

Exit codes: 0 done; 2 the command cannot do what was asked (a non-empty directory, a bad
name), with the reason on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nentang_sdk._version import __version__
from nentang_sdk.scaffold import DEFAULT_STATE, ScaffoldError, new_project

USAGE_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nentang-sdk", description="Tools for extending the Nentang platform.")
    parser.add_argument("--version", action="version", version=f"nentang-sdk {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    new = commands.add_parser(
        "new", help="create an extension project (a hook receiver for a workflow state)",
        description="Create an extension project: a hook receiver built on "
                    "nentang_sdk.hooks.HookApp, its test, and a README saying how to run it "
                    "and register the hook in a workflow.")
    new.add_argument("directory", help="where to create it (must not exist, or be empty)")
    new.add_argument("--name", help="the project's name (default: from the directory)")
    new.add_argument("--state", default=DEFAULT_STATE,
                     help=f"the workflow state whose on_enter hook it handles "
                          f"(default: {DEFAULT_STATE})")
    return parser


def _new(args: argparse.Namespace) -> int:
    try:
        project = new_project(args.directory, name=args.name, state=args.state)
    except ScaffoldError as exc:
        print(f"nentang-sdk new: {exc}", file=sys.stderr)
        return USAGE_ERROR
    print(f"Created {project.name} in {project.directory}:")
    for path in project.files:
        print(f"  {path.relative_to(project.directory).as_posix()}")
    print(f"\nNext: cd {project.directory} && pip install -e '.[test]' && pytest\n"
          f"Then read README.md: how to serve it, and how to point the on_enter hook of "
          f"'{project.state}' at it.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The console script's entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "new":
        return _new(args)
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse allows no other


if __name__ == "__main__":
    raise SystemExit(main())
