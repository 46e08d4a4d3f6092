"""``nentang-sdk new``: a new extension project, ready to test and to serve.

The project is a hook receiver built on :class:`~nentang_sdk.hooks.HookApp` for one workflow
state, with its settings read from the environment, a test that runs without a platform,
and a README that says how to run it and how to register the hook in a workflow::

    <directory>/
      pyproject.toml            depends on nentang-sdk and uvicorn
      README.md
      .gitignore
      src/<package>/__init__.py
      src/<package>/receiver.py  app = HookApp.from_env(); @app.on_enter("<state>") ...
      tests/test_receiver.py

The templates live in ``nentang_sdk/templates/extension`` (``*.tmpl``, with ``{{name}}``
placeholders), so they read as the files they become.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from nentang_sdk._version import __version__

__all__ = ["DEFAULT_STATE", "Project", "ScaffoldError", "new_project"]

DEFAULT_STATE = "kiem_tra_tu_dong"
STATE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")  # as the workflow meta-schema has it
PROJECT_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
# (template, where it goes): ``{package}`` is the package's directory name.
FILES = (
    ("pyproject.toml.tmpl", "pyproject.toml"),
    ("README.md.tmpl", "README.md"),
    ("gitignore.tmpl", ".gitignore"),
    ("package/__init__.py.tmpl", "src/{package}/__init__.py"),
    ("package/receiver.py.tmpl", "src/{package}/receiver.py"),
    ("tests/test_receiver.py.tmpl", "tests/test_receiver.py"),
)


class ScaffoldError(Exception):
    """The project cannot be made as asked (the command exits with code 2)."""


@dataclass(frozen=True)
class Project:
    """What :func:`new_project` made."""

    directory: Path
    name: str
    package: str
    state: str
    files: list[Path] = field(default_factory=list)


def project_name(text: str) -> str:
    """A distribution name from a directory name: lower case, words joined by ``-``."""
    return "-".join(w for w in re.split(r"[^a-z0-9]+", text.lower()) if w)


def _render(template: str, values: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        return values[match.group(1)]  # a KeyError here is a bug in a template

    return _PLACEHOLDER.sub(fill, template)


def _check_target(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise ScaffoldError(f"{directory} exists and is not a directory")
    if directory.is_dir() and any(directory.iterdir()):
        raise ScaffoldError(f"{directory} is not empty; refusing to overwrite it (choose a new "
                            "directory, or empty this one)")


def new_project(directory: str | Path, *, name: str | None = None,
                state: str = DEFAULT_STATE) -> Project:
    """Create the project in ``directory`` (which must not exist, or be empty).

    ``name`` is the distribution name (default: from the directory's name); the package is
    the same with ``_`` for ``-``. ``state`` is the workflow state whose ``on_enter`` hook
    the receiver handles. Raises :class:`ScaffoldError` before writing anything if the
    directory is taken or a name is unusable.
    """
    target = Path(directory)
    chosen = name if name is not None else project_name(target.resolve().name)
    if not PROJECT_NAME.match(chosen):
        raise ScaffoldError(f"{chosen!r} is not a usable project name: lower-case letters, "
                            "digits and single '-', starting with a letter (use --name)")
    if not STATE_NAME.match(state):
        raise ScaffoldError(f"{state!r} is not a workflow state name (^[a-z][a-z0-9_]*$)")
    _check_target(target)
    package = chosen.replace("-", "_")
    major, minor = __version__.split(".")[:2]
    values = {"name": chosen, "package": package, "state": state,
              "sdk_version": __version__, "sdk_series": f"{major}.{minor}"}
    root = resources.files("nentang_sdk").joinpath("templates", "extension")
    rendered = [(target / where.format(package=package),
                 _render(root.joinpath(*source.split("/")).read_text(encoding="utf-8"), values))
                for source, where in FILES]
    written = []
    for path, text in rendered:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8", newline="\n") as out:  # never overwrite
            out.write(text)
        written.append(path)
    return Project(target, chosen, package, state, written)
