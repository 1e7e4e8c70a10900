"""The command house: `/cf help`'s areas, the README's command tables and the modules of commands/ list
the same names in the same order, and every `/cf …` the bot writes in its own messages names a real
command."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from commands.base import AREAS
from commands.bot import AREA_ORDER
from commands.catalog import MODULES, REGISTRY

ROOT = Path(__file__).resolve().parents[2]


def test_help_areas_readme_sections_and_modules_agree() -> None:
    used = list(dict.fromkeys(spec.area for spec in REGISTRY))
    assert sorted(used) == sorted(AREAS) and AREA_ORDER == list(AREAS)
    readme = (ROOT / "README.md").read_text()
    commands_section = readme.split("## Commands", 1)[1].split("\n## ", 1)[0]
    sections = re.findall(r"^\*\*(.+?)\*\*", commands_section, flags=re.M)
    assert sections == list(AREAS)
    assert [m.__name__ for m in MODULES] == [f"commands.{name}" for name in AREAS.values()]
    for spec in REGISTRY:  # each command lives in its area's module (or a module of its area's package)
        home = f"commands.{AREAS[spec.area]}"
        assert spec.fn.__module__ == home or spec.fn.__module__.startswith(home + "."), (spec.title, spec.fn.__module__)


def test_no_module_of_commands_is_left_outside_the_areas_support_and_framework() -> None:
    framework = {p.stem for p in (ROOT / "commands").glob("*.py")} - set(AREAS.values())
    # the framework is the registry machinery beside the areas; a stray command module would register here
    registered_from = {spec.fn.__module__.split(".")[1] for spec in REGISTRY}
    assert not registered_from & (framework - {"bot", "nodes"}), registered_from & framework
    packages = {p.name for p in (ROOT / "commands").iterdir() if (p / "__init__.py").exists()}
    assert packages <= set(AREAS.values()) | {"support"}, packages - set(AREAS.values())


# `/cf words` in a code span, or a string that is a command line (a button's value): prose ("run /cf
# commands here") and docstrings are not command references.
_CF = re.compile(r"(?:^|`)/cf ((?:[a-z][a-z0-9-]*)(?: [a-z][a-z0-9-]*){0,3})")


def _strings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_every_cf_command_the_bot_names_exists() -> None:
    """About 70 `/cf …` strings in the bot's own messages (hints, buttons, checklists): none may go stale."""
    named: dict[str, set[str]] = {}
    for package in ("bot", "incidents", "commands", "demo"):
        for path in (ROOT / package).rglob("*.py"):
            for text in _strings(path):
                for match in _CF.finditer(text):
                    named.setdefault(match.group(1), set()).add(str(path.relative_to(ROOT)))
    assert len(named) > 40, sorted(named)  # the scan finds the bot's hints (it is not looking at nothing)
    unknown = {words: where for words, where in named.items() if REGISTRY.resolve(words.split()) is None}
    assert not unknown, unknown
