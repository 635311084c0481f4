"""Reading a config file: strict YAML, ``MODEL_HEALTH_…`` overrides, one-line errors, path rebasing.

``load_config(path, AggregatorConfig)`` reads the YAML file, lets ``MODEL_HEALTH_…``
environment variables override it (nested keys joined by ``__``: ``MODEL_HEALTH_HTTP__PORT=9999``
sets ``http.port``; lists and sections also take JSON, e.g. ``MODEL_HEALTH_WINDOWS='[…]'``), and
validates the result. Precedence: environment > YAML file > defaults. Environment variables win
even over keyword arguments given to the classes directly, because the file arrives that way.

Every mistake surfaces as one ``UserError`` line naming the file, the dotted path of each bad
field and what is wrong with it, e.g. ``config.yaml: http.port: Input should be less than or
equal to 65535``. Unknown keys are errors, so a typo never silently falls back to a default.
Relative paths in the file (``models[].reference``, ``state.dir``) resolve against the
directory of the config file, so a config and its profiles can move together.

The environment is ``os.environ`` unless the caller passes one: ``load_config(path,
AggregatorConfig, environ={"MODEL_HEALTH_HTTP__PORT": "9999"})`` reads overrides from that mapping
alone, so tests and embedding code need not touch the process environment. ``Settings`` is the
base of every command's root model: it holds that precedence and takes the mapping.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from exporter.config.fields import unwrap
from exporter.errors import UserError

ENV_PREFIX = "MODEL_HEALTH_"
ENV_NESTED_DELIMITER = "__"
MAX_ERRORS_SHOWN = 10

# pydantic-settings builds a root model's sources inside its constructor, which takes no
# environment: load_config hands its mapping to settings_customise_sources through this
# variable, for the duration of that one constructor call, seen only by its own thread or task.
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("exporter_config_environ", default=None)


class Settings(BaseSettings):
    """The root model of one command's config file: the environment wins over the file."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        # Templated manifests often render unset values as "": treat them as not set.
        env_ignore_empty=True,
        extra="forbid",
        frozen=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file arrives as init kwargs; putting env first makes it win over the file.
        # No .env or secrets dir: a config should not change with the working directory.
        # Constructed directly, outside load_config, a model reads os.environ.
        environ = _ENVIRON.get()
        if environ is not None:
            env_settings = _MappingEnvSource(settings_cls, environ)
        return env_settings, init_settings


class _MappingEnvSource(EnvSettingsSource):
    """``EnvSettingsSource`` over a given mapping instead of ``os.environ``; same prefix and rules."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)  # prefix, delimiter, case and empty-value rules from model_config

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {
            name if self.case_sensitive else name.lower(): value
            for name, value in self._environ.items()
            if not (self.env_ignore_empty and value == "")
        }


C = TypeVar("C", bound=Settings)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, which plain YAML loading resolves silently."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:  # unhashable: construct_mapping reports it with its own message
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a config file") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: {_yaml_problem(exc)}") from None
    if data is None:  # an empty file: every value from the environment or defaults
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of sections at the top level, got {_yaml_kind(data)}")
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return " ".join(f"{where}invalid YAML: {problem}".split())


def _yaml_kind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


def load_config(path: str | Path, model_cls: type[C], environ: Mapping[str, str] | None = None) -> C:
    """Read ``path`` (YAML), apply the ``MODEL_HEALTH_…`` overrides in ``environ``, validate as ``model_cls``.

    ``environ`` is the whole environment the overrides come from; ``None`` means ``os.environ``.
    Raises ``UserError`` with one line naming the file and every bad field.
    """
    path = Path(path)
    environ = os.environ if environ is None else environ
    data = _read_yaml(path)
    unknown = [key for key in data if not isinstance(key, str) or key.startswith("_")]
    if unknown:
        # Keys like ``_env_file`` would otherwise reach pydantic-settings as its own options.
        raise UserError(f"{path}: {unknown[0]}: unknown key")
    token = _ENVIRON.set(environ)
    try:
        config = model_cls(**data)
    except ValidationError as exc:
        raise UserError(f"{path}: {_describe_errors(exc.errors(), model_cls, environ)}") from None
    except SettingsError as exc:  # e.g. an environment variable that should hold JSON doesn't
        raise UserError(f"{path}: {_settings_problem(exc)}") from None
    finally:
        _ENVIRON.reset(token)
    return _rebase(config, path.absolute().parent)


def _settings_problem(exc: SettingsError) -> str:
    """pydantic-settings names the field but not the variable; users set the variable."""
    found = re.search(r'field "([^"]+)"', str(exc))
    if found is None:
        return " ".join(str(exc).split())
    field = found.group(1)
    variable = ENV_PREFIX + field.upper()
    cause = exc.__cause__
    problem = "is not valid JSON" if isinstance(cause, json.JSONDecodeError) else "cannot be parsed"
    detail = f": {cause}" if cause is not None else ""
    return " ".join(f"{field}: environment variable {variable} {problem}{detail}".split())


def _rebase(value: Any, base: Path) -> Any:
    """``value`` with relative paths made relative to ``base``; untouched objects stay shared."""
    if isinstance(value, Path):
        return value if value.is_absolute() else base / value
    if isinstance(value, BaseModel):
        updates = {}
        for name in type(value).model_fields:
            old = getattr(value, name)
            new = _rebase(old, base)
            if new is not old:
                updates[name] = new
        return value.model_copy(update=updates) if updates else value
    if isinstance(value, tuple):
        items = tuple(_rebase(item, base) for item in value)
        return items if any(a is not b for a, b in zip(items, value)) else value
    if isinstance(value, dict):
        rebased = {key: _rebase(item, base) for key, item in value.items()}
        return rebased if any(rebased[k] is not value[k] for k in value) else value
    return value


def _describe_errors(
    errors: Sequence[Mapping[str, Any]], model_cls: type[BaseModel], environ: Mapping[str, str]
) -> str:
    parts = [_describe_error(error, model_cls, environ) for error in errors[:MAX_ERRORS_SHOWN]]
    if len(errors) > MAX_ERRORS_SHOWN:
        parts.append(f"and {len(errors) - MAX_ERRORS_SHOWN} more")
    return "; ".join(parts)


def _describe_error(error: Mapping[str, Any], model_cls: type[BaseModel], environ: Mapping[str, str]) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    message = str(error["msg"])
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
    elif kind == "extra_forbidden":
        message = _unknown_key_message(str(loc[-1]), _field_names_at(model_cls, loc[:-1]))
    # Sequences are tuples inside (immutability); to someone writing YAML they are lists.
    message = message.replace("a valid tuple", "a list").replace("Tuple should", "List should")
    source = _env_source(loc, environ)
    if source:
        message += f" (from environment variable {source})"
    where = ".".join(str(part) for part in loc)
    return " ".join(f"{where}: {message}".split()) if where else " ".join(message.split())


def _unknown_key_message(key: str, allowed: list[str] | None) -> str:
    if not allowed:
        return "unknown key"
    close = difflib.get_close_matches(key, allowed, n=1)
    if close:
        return f"unknown key (did you mean {close[0]!r}?)"
    return f"unknown key (expected one of: {', '.join(allowed)})"


def _env_source(loc: tuple[Any, ...], environ: Mapping[str, str]) -> str | None:
    """The variable of ``environ`` that supplied the value at ``loc``, if one did."""
    names = {key.upper() for key in environ}
    for end in range(len(loc), 0, -1):
        name = ENV_PREFIX + ENV_NESTED_DELIMITER.join(str(part) for part in loc[:end]).upper()
        if name in names:
            return name
    return None


def _field_names_at(model_cls: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """Field names of the section at ``loc``, walking through lists and mappings."""
    current: Any = model_cls
    for part in loc:
        current = unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) in (tuple, list):
            current = get_args(current)[0]
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return None
    current = unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return None
