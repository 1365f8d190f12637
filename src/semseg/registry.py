"""The one registry class behind models, dataset formats, losses and augmentations.

A registry maps a name to a function (a model builder, a split reader, a loss, a
transform builder) plus a little data about it (a format's default split names, an
augmentation's default probability). Entries are added with a decorator that raises on a
duplicate name; the decorators are public (`semseg.register_model`, `register_format`,
`register_loss`, `register_augmentation`), so users extend semseg without editing it.
A failed lookup names the config key, suggests the closest name and lists all of them.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from semseg.errors import SemsegError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Entry(Generic[F]):
    name: str
    function: F
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """The first line of the function's docstring, for listings."""
        return (inspect.getdoc(self.function) or "").split("\n")[0].rstrip(".:")


class Registry(Generic[F]):
    """Names -> functions of one kind (`kind` names it in messages, e.g. "model").

    `info_defaults` lists the data each entry carries and its default values; `register`
    accepts exactly those keywords.
    """

    def __init__(self, kind: str, config_key: str, **info_defaults: Any) -> None:
        self.kind = kind
        self.config_key = config_key
        self.info_defaults = info_defaults
        self._entries: dict[str, Entry[F]] = {}
        self._aliases: dict[str, str] = {}

    def register(
        self, name: str | F | None = None, *, aliases: Iterable[str] = (), **info: Any
    ) -> Any:
        """Decorator adding a function under `name` (default: the function's own name).

        Usable bare (`@register_model`) or called (`@register_format("folder")`).

        Raises:
            RuntimeError: the name (or an alias) is taken; a programming error, not a
                user's.
            TypeError: `info` has a keyword this registry does not know.
        """
        if callable(name):  # used bare: @registry.register
            return self.register()(name)
        unknown = set(info) - set(self.info_defaults)
        if unknown:
            raise TypeError(f"{self.kind} registry takes no {', '.join(sorted(unknown))}")

        def add(function: F) -> F:
            entry_name = name or function.__name__
            for taken in (entry_name, *aliases):
                if taken in self._entries or taken in self._aliases:
                    raise RuntimeError(f"{self.kind} {taken!r} is already registered")
            self._entries[entry_name] = Entry(entry_name, function, self.info_defaults | info)
            self._aliases.update(dict.fromkeys(aliases, entry_name))
            return function

        return add

    def names(self) -> list[str]:
        """The registered names, sorted (aliases not included)."""
        return sorted(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def get(self, name: str, key: str | None = None) -> Entry[F]:
        """The entry for `name` or one of its aliases.

        Raises:
            SemsegError: no such name; the message names the config key (`key`, default
                this registry's), the closest registered name and all of them.
        """
        name = self._aliases.get(name, name)
        if name in self._entries:
            return self._entries[name]
        close = difflib.get_close_matches(str(name), [*self._entries, *self._aliases], n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise SemsegError(
            f"config key '{key or self.config_key}': unknown {self.kind} {name!r}; {hint}"
            f"available: {', '.join(self.names())}"
        )

    def check_parameters(
        self, name: str, given: Iterable[str], key: str, reserved: Iterable[str] = ()
    ) -> None:
        """Stop with one line when `given` names a parameter the function of `name` does
        not take; `reserved` are the parameters semseg itself passes (not config keys).

        Raises:
            SemsegError: naming the offending keys as `KEY.PARAMETER` and the allowed ones.
        """
        allowed = self.parameters(name, reserved)
        unknown = sorted(set(given) - set(allowed))
        if unknown:
            keys = ", ".join(f"'{key}.{parameter}'" for parameter in unknown)
            raise SemsegError(
                f"config key {keys}: {self.kind} {self.get(name).name!r} has no such "
                f"parameter; it takes {', '.join(allowed) or 'none'} (remove the key)"
            )

    def parameters(self, name: str, reserved: Iterable[str] = ()) -> list[str]:
        """The keyword parameters of `name`'s function, minus `reserved`."""
        signature = inspect.signature(self.get(name).function)
        skip = set(reserved)
        return [
            parameter.name
            for parameter in signature.parameters.values()
            if parameter.name not in skip
            and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
        ]
