"""Verifiers: named checks that tell whether an applied change did what it meant in the live system.

A change's `apply` returns an `Outcome` whose `verify` names a verifier and gives its JSON params
(`Verification`). The approval flow calls the verifier again and again until it says done or the time
runs out, posting its progress line to the request's thread, and ends with *Verified* or *Not verified*.

Verifiers are declared like commands — one decorated async function, registered at import, returned
unchanged — and receive a `Context` holding only the clients they declare in `needs`. They are looked
up by name, so a verification that a restart interrupted can be resumed from the store by any replica.
A verifier must only read: it runs many times.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from commands.clients import SERVICE_NAMES
from commands.reply import Probe

VerifyFn = Callable[..., Awaitable[Probe]]


@dataclass(frozen=True)
class VerifierSpec:
    name: str
    fn: VerifyFn
    needs: tuple[str, ...]


class DuplicateVerifier(Exception):
    """Two verifiers claim the same name: a programming error, raised at import."""


VERIFIERS: dict[str, VerifierSpec] = {}


def verifier(name: str, *, needs: Iterable[str]) -> Callable[[VerifyFn], VerifyFn]:
    """Declare a verifier; the function is registered and returned unchanged."""
    declared = tuple(needs)
    unknown = sorted(set(declared) - SERVICE_NAMES)
    if unknown:
        raise ValueError(f"verifier {name!r} needs unknown clients {unknown}")

    def decorate(fn: VerifyFn) -> VerifyFn:
        other = VERIFIERS.get(name)
        if other is not None and other.fn is not fn:
            raise DuplicateVerifier(f"verifier {name!r} is declared by both {other.fn.__module__} and {fn.__module__}")
        VERIFIERS[name] = VerifierSpec(name, fn, declared)
        return fn

    return decorate


__all__ = ["VERIFIERS", "DuplicateVerifier", "Probe", "VerifierSpec", "verifier"]
