"""`needs` is the injection: a command reaches exactly the clients it declared.

Two holds on it. At run time `Context` refuses an undeclared client with `Undeclared` (shown here), and
the dispatcher and the approval flow always build the context from the spec's `needs`, so every
command test that runs a command also checks its declaration on the paths it takes. Statically, this
module reads every command's source (and every status check's), follows the helpers it calls in its
own module and in `commands.*` (transitively, closures included), collects each `ctx.<client>` it
touches, and holds that set equal to `needs`: nothing used undeclared, nothing declared unused.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import sys
from functools import cache
from types import ModuleType

import pytest

from base.settings import Settings
from commands.base import REGISTRY, CommandSpec, Context, NotConfigured, Undeclared, command
from commands.catalog import REGISTRY as CATALOG
from commands.checks import STATUS_CHECKS, CheckSpec, run_checks, status_check
from commands.clients import SERVICE_NAMES, Services

assert CATALOG is REGISTRY  # importing the catalog registers every command


class _Defs:
    """The functions (and module-level tables) of one module, and where its `commands.*` names come from."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        tree = ast.parse(inspect.getsource(module))
        self.funcs: dict[str, ast.AST] = {
            node.name: node for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        for node in tree.body:  # module-level tables of helpers (`CHECKS = [("name", _fn), ...]`)
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        self.funcs.setdefault(target.id, node.value)
        self.imports: dict[str, tuple[str, str]] = {}  # local name -> (module, name)
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("commands"):
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = (node.module, alias.name)


@cache
def _defs(module_name: str) -> _Defs:
    return _Defs(importlib.import_module(module_name))


def _touched(node: ast.AST) -> tuple[set[str], set[str]]:
    """(clients read as `ctx.<name>`, names called) anywhere in a function, nested functions included."""
    clients, calls = set(), set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and sub.attr in SERVICE_NAMES and isinstance(sub.value, ast.Name) \
                and sub.value.id == "ctx":
            clients.add(sub.attr)
        elif isinstance(sub, ast.Name):
            calls.add(sub.id)  # called, or passed on (a helper handed to gather, a check list)
    return clients, calls


def _clients_of(module_name: str, func: str, seen: set[tuple[str, str]] | None = None) -> set[str]:
    seen = set() if seen is None else seen
    if (module_name, func) in seen:
        return set()
    seen.add((module_name, func))
    defs = _defs(module_name)
    node = defs.funcs.get(func)
    if node is None:
        return set()
    clients, names = _touched(node)
    for name in names:
        if name in defs.funcs:
            clients |= _clients_of(module_name, name, seen)
        elif name in defs.imports:
            other, real = defs.imports[name]
            if other in sys.modules or importlib.util.find_spec(other) is not None:
                clients |= _clients_of(other, real, seen)
    return clients


def _where(fn: object) -> tuple[str, str]:
    return fn.__module__, fn.__name__  # type: ignore[attr-defined]


def _spec_id(spec: CommandSpec) -> str:
    return spec.title


@pytest.mark.parametrize("spec", list(REGISTRY), ids=_spec_id)
def test_every_command_declares_exactly_the_clients_it_touches(spec: CommandSpec) -> None:
    used = _clients_of(*_where(spec.fn))
    declared = set(spec.needs)
    assert used - declared == set(), f"/cf {spec.title} uses {sorted(used - declared)} without declaring them"
    assert declared - used == set(), f"/cf {spec.title} declares {sorted(declared - used)} but never uses them"


@pytest.mark.parametrize("check", STATUS_CHECKS, ids=lambda c: c.name)
def test_every_status_check_declares_exactly_the_clients_it_touches(check: CheckSpec) -> None:
    used = _clients_of(*_where(check.fn))
    assert used == set(check.needs), f"status check {check.name!r} uses {sorted(used)}, declares {list(check.needs)}"


def test_the_static_reader_sees_a_use_through_a_helper() -> None:
    """The reader is not vacuous: it finds `ctx.kube` two calls down and in a nested closure."""
    assert "kube" in _clients_of(__name__, "_sample_command")
    assert _clients_of(__name__, "_sample_helper") == {"kube"}


async def _sample_command(ctx: Context) -> None:
    async def later() -> None:
        await _sample_helper(ctx)
    await later()


async def _sample_helper(ctx: Context) -> None:
    await ctx.kube.list_nodes()


# --- at run time --------------------------------------------------------------------------------


class _Kube:
    async def list_nodes(self) -> list[dict[str, object]]:
        return [{"metadata": {"name": "n1"}}]


def _settings() -> Settings:
    return Settings(incident_channel="C0")


async def test_an_undeclared_client_is_refused_even_when_configured() -> None:
    services = Services(kube=_Kube())  # type: ignore[typeddict-item]  # a stand-in with the one method used
    ctx = Context("U1", "C1", "ns", _settings(), services, needs=frozenset({"aws"}))
    with pytest.raises(Undeclared, match=r"'kube'.*declared \['aws'\]"):
        _ = ctx.kube
    declared = Context("U1", "C1", "ns", _settings(), services, needs=frozenset({"kube"}))
    assert await declared.kube.list_nodes() == [{"metadata": {"name": "n1"}}]
    with pytest.raises(NotConfigured, match="AWS is not configured"):
        _ = Context("U1", "C1", "ns", _settings(), services, needs=frozenset({"aws"})).aws


async def test_a_bare_context_reaches_no_client() -> None:
    ctx = Context("U1", "C1", "ns", _settings(), Services(kube=_Kube()))  # type: ignore[typeddict-item]
    with pytest.raises(Undeclared):
        _ = ctx.kube
    assert ctx.configured("kube") and not ctx.configured("aws")  # asking uses nothing


async def test_each_status_check_runs_with_its_own_needs() -> None:
    seen: list[bool] = []

    async def check(ctx: Context) -> list[object]:
        seen.append(ctx.needs == frozenset({"kube"}))
        await ctx.kube.list_nodes()
        return []

    spec = CheckSpec("sample", check, 0, ("kube",), 1.0)  # type: ignore[arg-type]
    ctx = Context("U1", "C1", "ns", _settings(), Services(kube=_Kube()))  # type: ignore[typeddict-item]
    assert await run_checks(ctx, [spec]) == [] and seen == [True]


def test_needs_must_name_a_known_client() -> None:
    with pytest.raises(ValueError, match=r"unknown clients \['kubernetes'\]"):
        command("sample unknown", summary="-", area="Bot", needs=["kubernetes"])
    with pytest.raises(ValueError, match="unknown clients"):
        status_check("sample unknown", needs=["k8s"])


def test_no_any_in_the_context_or_the_service_builders() -> None:
    """Issue 12's line: what a command receives, and what start-up builds, is typed all the way."""
    import typing

    import bot.services

    def mentions_any(hint: object) -> bool:
        return hint is typing.Any or any(mentions_any(a) for a in typing.get_args(hint))

    hints = dict(typing.get_type_hints(Context))
    for name, member in vars(Context).items():
        if isinstance(member, property) and member.fget is not None:
            hints[name] = typing.get_type_hints(member.fget)["return"]
    hints.update({f"bot.services.{f.__name__}": typing.get_type_hints(f)["return"]
                  for f in (bot.services.kube, bot.services.aws, bot.services.postgres, bot.services.redis,
                            bot.services.statuspage, bot.services.pagerduty, bot.services.build_services)})
    hints.update({f"Services.{k}": v for k, v in typing.get_type_hints(Services).items()})
    assert {"kube", "aws", "postgres", "redis", "settings", "services"} <= hints.keys()
    assert [name for name, hint in hints.items() if mentions_any(hint)] == []
