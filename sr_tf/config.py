"""One small base for every config dataclass: from a dict or a file, `KEY=VALUE` overrides, to a dict.

`ConfigBase` adds `from_dict`, `from_file` (TOML or YAML), `with_overrides(["a.b=1", ...])` and
`to_dict()` to a (possibly frozen, possibly nested) dataclass. Unknown keys are errors that suggest the
nearest valid key (`did you mean 'data.batch_size'?`); values are checked against the field's type
annotation (ints are accepted for floats), and the dataclass's own `__post_init__` checks run on
every copy. Keys are the field names: library errors name them, the CLI maps its flags onto them.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

__all__ = ["CONFIG_SUFFIXES", "ConfigBase", "apply_overrides", "merge", "parse_override", "read_config_file"]


class ConfigBase:
    """Mixin for config dataclasses (see the module docstring)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any], base=None):
        """`base` (default: `cls()`) with the nested `data` applied."""
        return merge(cls() if base is None else base, data)

    @classmethod
    def from_file(cls, path: str | Path, base=None):
        """A TOML / YAML file's keys applied to `base` (default: `cls()`)."""
        path = Path(path)
        if path.suffix not in CONFIG_SUFFIXES:
            raise ValueError(f"config files are {' / '.join(CONFIG_SUFFIXES)}. Received: path={str(path)!r}")
        if not path.is_file():
            raise FileNotFoundError(f"no such config file: {str(path)!r}")
        return cls.from_dict(read_config_file(path), base)

    def with_overrides(self, overrides: list[str]):
        """A copy with `KEY=VALUE` strings applied (values parsed as TOML)."""
        return apply_overrides(self, overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _field_types(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _dataclass_of(tp) -> type | None:
    is_union = typing.get_origin(tp) in (typing.Union, types.UnionType)
    for arg in (tp, *(typing.get_args(tp) if is_union else ())):
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def _check_value(path: str, tp, value):
    """Checks (and converts int -> float) a leaf value against the field's annotation."""
    is_union = typing.get_origin(tp) in (typing.Union, types.UnionType)
    allowed = typing.get_args(tp) if is_union else (tp,)
    if value is None and type(None) in allowed:
        return None
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    for a in allowed:
        origin = typing.get_origin(a) or a
        if a is Any or (isinstance(origin, type) and isinstance(value, origin)):
            if origin is int and isinstance(value, bool):
                continue
            return value
    raise ValueError(f"Config key {path!r} expects {tp}. Received: {path}={value!r}")


def _key_paths(cls, prefix: str = "") -> list[str]:
    """Every settable key of the dataclass `cls`, dotted (`data.batch_size`), nested ones included."""
    paths = []
    for name, tp in _field_types(cls).items():
        paths.append(prefix + name)
        sub = _dataclass_of(tp)
        if sub is not None:
            paths += _key_paths(sub, f"{prefix}{name}.")
    return paths


def _nearest_keys(cls, key: str, prefix: str) -> str:
    """`did you mean 'data.batch_size'?` (same last part, or a close spelling), else the valid keys."""
    import difflib

    paths = _key_paths(cls, prefix)
    same_leaf = [p for p in paths if p.rsplit(".", 1)[-1] == key]
    close = same_leaf or difflib.get_close_matches(prefix + key, paths, n=3, cutoff=0.75)
    if close:
        return "did you mean " + " or ".join(repr(p) for p in close) + "?"
    return f"expected one of {sorted(_field_types(cls))}."


def merge(config, updates: dict[str, Any], prefix: str = ""):
    """Returns a copy of the dataclass `config` (frozen or not) with nested `updates` applied; unknown
    keys and values of the wrong type raise ValueError naming the dotted key."""
    if not isinstance(updates, dict):
        raise ValueError(f"Config {prefix.rstrip('.') or 'root'!r} must be a mapping of keys. Received: {updates!r}")
    types = _field_types(type(config))
    changes: dict[str, Any] = {}
    for key, value in updates.items():
        path = f"{prefix}{key}"
        if key not in types:
            raise ValueError(f"Unknown config key {path!r}; {_nearest_keys(type(config), key, prefix)}")
        sub_cls = _dataclass_of(types[key])
        current = changes.get(key, getattr(config, key))
        if sub_cls is not None and isinstance(value, dict):
            base = current if current is not None else sub_cls()
            changes[key] = merge(base, value, prefix=f"{path}.")
        elif isinstance(current, dict) and isinstance(value, dict) and key == "kwargs":
            changes[key] = {**current, **value}
        else:
            changes[key] = _check_value(path, types[key], value)
    return dataclasses.replace(config, **changes)


def parse_override(text: str) -> dict[str, Any]:
    """`"optim.g_lr=1e-4"` -> `{"optim": {"g_lr": 1e-4}}` (value parsed as TOML, else a string)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"Overrides look like KEY=VALUE (e.g. optim.g_lr=1e-4). Received: {text!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    if value == "none":
        value = None
    nested: dict[str, Any] = {}
    node = nested
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return nested


def apply_overrides(config, overrides: list[str]):
    """`config` with each `KEY=VALUE` string applied in order (see `parse_override`)."""
    for text in overrides:
        config = merge(config, parse_override(text))
    return config


CONFIG_SUFFIXES = (".toml", ".yaml", ".yml")


def _yaml_loader():
    """PyYAML's SafeLoader, also reading `1e-4` as a float (YAML 1.1 wants `1.0e-4`; YAML 1.2 and
    TOML do not, and a learning rate silently read as a string would only fail later)."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    pattern = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", pattern, list("-+0123456789"))
    return Loader


def read_config_file(path: Path) -> dict[str, Any]:
    """The tables of a TOML or YAML config file as nested dicts (a YAML file must hold a mapping)."""
    text = path.read_text()
    if path.suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"{path}: not valid TOML: {err}") from None
    import yaml

    try:
        data = yaml.load(text, Loader=_yaml_loader())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config file holds a mapping of keys. Received: {type(data).__name__}")
    return data
