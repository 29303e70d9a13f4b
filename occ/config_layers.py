"""Loading a settings Struct in layers: defaults ← TOML file ← environment ← overrides, each layer checked on its own
so that an error names the key and where its value came from (:func:`load_struct`). ``occ.settings`` (the server's
settings) and ``occ.cli.connection`` (a client's) are built with it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import msgspec

ENV_PREFIX = "OCC_"
T = TypeVar("T", bound=msgspec.Struct)


class SettingsError(ValueError):
    """A setting is unknown, has the wrong type or is out of range; the message names it and its source.

    Attributes:
        problems: (field, message) for each range problem found on construction; empty for other errors.
    """

    def __init__(self, message: str, problems: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


def load_struct(
    cls: type[T], path: Path | None, env: Mapping[str, str], overrides: Mapping[str, Any], *, prefix: str = ENV_PREFIX
) -> T:
    """Build ``cls`` (a Struct whose fields all have defaults) from a TOML file, ``env`` and ``overrides``.

    A field whose type is itself such a Struct is a section: a TOML table, and ``<prefix><SECTION>__<FIELD>`` in
    the environment. Raises :class:`SettingsError` naming the key and where its value came from.
    """
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}  # dotted key → where its current value came from
    layers: list[tuple[Mapping[str, Any], Callable[[str], str], bool]] = []
    if path is not None:
        layers.append((_read_toml(path), lambda key: f"config file {path}, key {key}", True))
    layers.append((_from_env(cls, env, prefix), _env_label(prefix), False))
    given = {key: value for key, value in overrides.items() if value is not None}
    layers.append((given, lambda key: f"override {key}", False))
    for raw, label, strict in layers:
        _merge(values, _converted(cls, raw, label, strict=strict), origins, label)
    try:
        return _build(cls, values)
    except SettingsError as error:
        if not error.problems:
            raise
        lines = [
            f"{message} (from {origins[field]})" if field in origins else message for field, message in error.problems
        ]
        raise SettingsError("invalid settings: " + "; ".join(lines), error.problems) from None


def _env_label(prefix: str) -> Callable[[str], str]:
    return lambda key: f"environment variable {prefix}{key.upper().replace('.', '__')}"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return msgspec.toml.decode(path.read_bytes())
    except OSError as error:
        raise SettingsError(f"config file {path}: cannot be read: {error.strerror or error}") from None
    except msgspec.DecodeError as error:
        raise SettingsError(f"config file {path}: not valid TOML: {error}") from None


def _section(field_type: Any) -> type[msgspec.Struct] | None:
    is_struct = isinstance(field_type, type) and issubclass(field_type, msgspec.Struct)
    return field_type if is_struct else None


def _from_env(cls: type[msgspec.Struct], env: Mapping[str, str], prefix: str) -> dict[str, Any]:
    """The ``cls`` values found in ``env`` as text, nested per section; unknown variables are left alone."""
    found: dict[str, Any] = {}
    for field in msgspec.structs.fields(cls):
        name = f"{prefix}{field.name.upper()}"
        section = _section(field.type)
        if section is not None:
            nested = _from_env(section, env, f"{name}__")
            if nested:
                found[field.name] = nested
        elif name in env:
            found[field.name] = env[name]
    return found


def _converted(
    cls: type[msgspec.Struct], raw: Mapping[str, Any], label: Callable[[str], str], *, strict: bool, under: str = ""
) -> dict[str, Any]:
    """``raw`` with every value converted to its field's type; unknown keys and bad values raise, naming both."""
    fields = {field.name: field for field in msgspec.structs.fields(cls)}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{under}{key}"
        field = fields.get(key)
        if field is None:
            raise SettingsError(f"{label(dotted)}: unknown setting (known: {', '.join(sorted(fields))})")
        section = _section(field.type)
        if section is not None:
            if not isinstance(value, Mapping):
                raise SettingsError(f"{label(dotted)}: must be a table of settings, got {type(value).__name__}")
            out[key] = _converted(section, value, label, strict=strict, under=f"{dotted}.")
            continue
        try:
            out[key] = msgspec.convert(value, field.type, strict=strict, dec_hook=_dec_hook)
        except msgspec.ValidationError as error:
            raise SettingsError(f"{label(dotted)}: {value!r} is not valid ({error})") from None
    return out


def _dec_hook(kind: type, value: Any) -> Any:
    if kind is Path and isinstance(value, str | os.PathLike):
        return Path(value)
    raise ValueError(f"Expected `{getattr(kind, '__name__', kind)}`, got `{type(value).__name__}`")


def _merge(
    into: dict[str, Any],
    layer: Mapping[str, Any],
    origins: dict[str, str],
    label: Callable[[str], str],
    under: str = "",
) -> None:
    for key, value in layer.items():
        dotted = f"{under}{key}"
        if isinstance(value, dict):
            _merge(into.setdefault(key, {}), value, origins, label, f"{dotted}.")
        else:
            into[key] = value
            origins[dotted] = label(dotted)


def _build(cls: type[T], values: Mapping[str, Any]) -> T:
    kwargs = dict(values)
    for field in msgspec.structs.fields(cls):
        section = _section(field.type)
        if section is not None and isinstance(kwargs.get(field.name), dict):
            kwargs[field.name] = _build(section, kwargs[field.name])
    return cls(**kwargs)
