"""Command-line parameters generated from the option declarations in `edgedet.config`.

`@with_options(RunConfig)` on a Typer command adds one keyword parameter per declared option (its flags, help
text and type come from the declaration) to the command's own parameters (arguments and command-only flags
such as --config or --json). The command receives those options as keyword arguments, None where the flag was
not given, and passes them to `build_config`, so a new option is one declaration and nothing here.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import typer

from edgedet.config import Option, options_of

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["cli_parameters", "flag_values", "with_options"]


def _cli_type(opt: Option, declared: Any) -> Any:
    """The type Typer parses: text for options with a parser, a list for repeatable ones, else the declared
    scalar (bool, int, float, str), always optional so that "not given" is None."""
    if opt.multiple:
        return list[str] | None
    if opt.parse is not None:
        return str | None
    union = get_origin(declared) in (Union, types.UnionType)
    args = [a for a in get_args(declared) if a is not type(None)] if union else [declared]
    return (args[0] if args else str) | None


def cli_parameters(cls: type, exclude: tuple[str, ...] = ()) -> list[inspect.Parameter]:
    """One keyword-only inspect.Parameter per option of `cls` that has a flag, annotated for Typer."""
    params = []
    for name, (opt, declared, _default) in options_of(cls).items():
        if not opt.cli or name in exclude:
            continue
        info = typer.Option(
            *opt.flag_names(name), help=opt.help, metavar="<NAME[:ARG]>" if opt.multiple else None
        )
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[_cli_type(opt, declared), info],
            )
        )
    return params


def flag_values(cls: type, given: dict[str, Any]) -> dict[str, Any]:
    """The generated parameters' values as config values: text parsed, repeated flags as a tuple, None kept."""
    declared = options_of(cls)
    out: dict[str, Any] = {}
    for name, value in given.items():
        opt = declared[name][0]
        if value is not None and opt.parse is not None:
            value = opt.parse(value)
        elif value is not None and opt.multiple:
            value = tuple(value) or None
        out[name] = value
    return out


def with_options(cls: type, exclude: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Decorate a command `f(own params..., **options)`: Typer sees f's own parameters plus one per option of
    `cls`; f gets the options (parsed, see flag_values) in `**options`."""

    def wrap(f: F) -> F:
        own = [
            p for p in inspect.signature(f, eval_str=True).parameters.values() if p.kind is not p.VAR_KEYWORD
        ]
        generated = cli_parameters(cls, exclude=tuple(p.name for p in own) + exclude)
        names = {p.name for p in generated}

        @functools.wraps(f)
        def command(**kwargs: Any) -> Any:
            options = flag_values(cls, {k: kwargs.pop(k) for k in list(kwargs) if k in names})
            return f(**kwargs, **options)

        sig = inspect.Signature([*(p.replace(kind=p.KEYWORD_ONLY) for p in own), *generated])
        command.__signature__ = sig  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in sig.parameters.values()}
        return command  # type: ignore[return-value]

    return wrap
