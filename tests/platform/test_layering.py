"""`make lint` holds the house's arrows and types (issue 12); these tests show that it can fail.

The contracts in pyproject.toml must name every top-level package, and `lint-imports` must refuse an arrow
against them: each case copies the packages into a temporary directory, adds one forbidden import there and
runs `lint-imports` with the project's own contracts (a fraction of a second). One `mypy` run with the
project's config over small modules placed under the checked packages' names shows that strictness reaches
each package and that tests are relaxed only as configured.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from commands.base import AREAS

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())
CONTRACTS = {c["id"]: c for c in CONFIG["tool"]["importlinter"]["contracts"]}
NOT_THE_BOT = {"tests", "bench", "scripts", "deploy"}


def _packages() -> set[str]:
    return {p.parent.name for p in ROOT.glob("*/__init__.py")} - NOT_THE_BOT


def test_the_contracts_name_every_package() -> None:
    packages = _packages()
    assert set(CONFIG["tool"]["importlinter"]["root_packages"]) == packages
    assert set(CONTRACTS["layers"]["layers"]) == packages - {"sandbox"}
    assert CONTRACTS["sandbox"]["source_modules"] == ["sandbox"]
    assert set(CONTRACTS["sandbox"]["forbidden_modules"]) == packages - {"sandbox"}
    # every help area's module (or each module of its package) is independent of the others
    named = {m.removeprefix("commands.").removesuffix(".*") for m in CONTRACTS["command-modules"]["modules"]}
    assert named == set(AREAS.values())
    for module in CONTRACTS["command-modules"]["modules"]:
        is_package = (ROOT / module.removesuffix(".*").replace(".", "/") / "__init__.py").exists()
        assert module.endswith(".*") == is_package, module


def test_make_lint_runs_every_check() -> None:
    lint = (ROOT / "Makefile").read_text().split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "ruff check ." in lint and "lint-imports" in lint
    mypy_line = next(line for line in lint.splitlines() if "/mypy " in line)
    assert set(mypy_line.split()[1:]) == _packages() | {"tests"}


def _copy_tree(dest: Path) -> None:
    for package in _packages():
        shutil.copytree(ROOT / package, dest / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")


@pytest.mark.parametrize(("module", "line", "refusal"), [
    ("integrations/errors.py", "import bot.errors", "integrations is not allowed to import bot"),
    ("commands/checks.py", "import incidents.playbooks", "commands is not allowed to import incidents"),
    ("base/text.py", "import integrations.errors", "base is not allowed to import integrations"),
    ("sandbox/errors.py", "import base.text", "sandbox is not allowed to import base"),
    ("base/text.py", "import sandbox.errors", "base is not allowed to import sandbox"),
    ("commands/nodes.py", "import commands.cache.redis", "commands.nodes is not allowed to import commands.cache"),
])
def test_lint_imports_refuses_an_arrow_against_the_layers(tmp_path: Path, module: str, line: str,
                                                          refusal: str) -> None:
    _copy_tree(tmp_path)
    with (tmp_path / module).open("a") as f:
        f.write(f"\n{line}  # the arrow under test\n")
    run = subprocess.run([BIN / "lint-imports", "--no-cache"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=30)
    assert run.returncode != 0, run.stdout
    assert refusal in run.stdout, run.stdout


def test_mypy_is_strict_in_every_package_and_relaxed_only_in_tests(tmp_path: Path) -> None:
    untyped = "def double(x):\n    return x * 2\n"
    wrong = "def name() -> str:\n    return 42\n"
    files = []
    for package in [*sorted(_packages()), "tests"]:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
        for stem, text in (("untyped_probe", untyped), ("wrong_probe", wrong)):
            (tmp_path / package / f"{stem}.py").write_text(text)
            files.append(f"{package}/{stem}.py")
    run = subprocess.run([BIN / "mypy", "--config-file", ROOT / "pyproject.toml", "--cache-dir", tmp_path / "cache",
                          "--no-incremental", *files], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run.stdout
    errors = {line.split(":", 1)[0] for line in run.stdout.splitlines() if ": error:" in line}
    # a type error fails everywhere; an unannotated function everywhere but in tests
    assert errors == set(files) - {"tests/untyped_probe.py"}, run.stdout
