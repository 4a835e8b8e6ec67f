"""Plain option values, read without the validation library.

typer checks every parameter's value (an option not given included) through a pydantic
`TypeAdapter` built on first use; loading pydantic and building the adapters is a large
part of a short command's start. The command line's parameters are almost all plain
(text, a path, a whole number, a flag, a list of these): `plain` gives each of those a
converter of its own, and leaves the rest (a choice of words) to typer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

from typer._click.core import Context
from typer._click.exceptions import BadParameter
from typer._coercion import RuntimeParam
from typer.core import _TyperParameter

__all__ = ["plain"]

_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"", "0", "false", "f", "no", "n", "off"})
#: Path options that ask typer to check the file system stay with typer.
_PATH_DEFAULTS = {
    "exists": False,
    "resolve_path": False,
    "dir_okay": True,
    "file_okay": True,
    "writable": False,
    "allow_dash": False,
    "path_type": None,
}


def _text(value: Any, _info: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text")
    return value


def _path(value: Any, _info: Any) -> Path:
    if not isinstance(value, str | Path):
        raise ValueError(f"{value!r} is not a path")
    return Path(value)


def _flag(value: Any, _info: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise ValueError(f"{value!r} is not a yes or no (use true or false)")


def _whole(value: Any, info: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{value!r} is not a whole number")
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number") from None
    if info.min is not None and number < info.min:
        raise ValueError(f"{number} is less than the least allowed, {info.min}")
    if info.max is not None and number > info.max:
        raise ValueError(f"{number} is more than the most allowed, {info.max}")
    return number


_CONVERTERS: dict[Any, Callable[[Any, Any], Any]] = {
    str: _text,
    Path: _path,
    bool: _flag,
    int: _whole,
}


@dataclass(frozen=True)
class _Plain(RuntimeParam):
    """typer's coercion contract, met by one converter (over each item of a list)."""

    convert: Callable[[Any, Any], Any]
    many: bool

    def _coerce_value(self, value: Any, param: _TyperParameter, ctx: Context) -> Any:
        try:
            if self.many:
                items = value if isinstance(value, list | tuple) else [value]
                return [self.convert(item, self.parameter_info) for item in items]
            return self.convert(value, self.parameter_info)
        except ValueError as exc:
            raise BadParameter(str(exc), ctx=ctx, param=param) from None


def _converter(param: _TyperParameter) -> _Plain | None:
    descriptor = param.type_descriptor
    info = descriptor.parameter_info
    annotation: Any = descriptor.annotation
    many = False
    if get_origin(annotation) is list:
        (annotation,), many = get_args(annotation), True
    convert = _CONVERTERS.get(annotation)
    if convert is None or descriptor.is_file or descriptor.is_choice or info.parser is not None:
        return None
    if annotation is Path and any(getattr(info, k) != v for k, v in _PATH_DEFAULTS.items()):
        return None
    if annotation is int and info.clamp:
        return None
    return _Plain(info, descriptor.annotation, convert, many)


def plain(params: Iterable[Any]) -> None:
    """Give each plain typer parameter of a command its own converter (once)."""
    for param in params:
        if isinstance(param, _TyperParameter) and param._runtime_param is None:
            param._runtime_param = _converter(param)
