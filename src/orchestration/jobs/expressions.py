"""`${{...}}` data-binding expressions, as Azure ML substitutes them in commands, program arguments and paths.

`$[[ ... ]]` marks an optional part of a command: kept (without the brackets) when every input it names
has a value, dropped otherwise. Pure functions: no file, no process.
"""
from __future__ import annotations

import re
from collections.abc import Callable

EXPRESSION = re.compile(r"\$\{\{\s*([^{}]+?)\s*\}\}")
OPTIONAL = re.compile(r"\$\[\[(.*?)\]\]", re.DOTALL)


class BindingError(Exception):
    """An expression names something that does not exist."""


def references(text: str) -> list[str]:
    """The expressions in `text`, stripped: `${{ parent.inputs.x }}` -> `parent.inputs.x`."""
    return EXPRESSION.findall(text)


def whole_reference(value: object) -> str | None:
    """The expression when `value` is exactly one `${{...}}` and nothing else."""
    if isinstance(value, str):
        match = EXPRESSION.fullmatch(value.strip())
        if match:
            return match.group(1)
    return None


def substitute(text: str, lookup: Callable[[str], str | None]) -> str:
    """Replaces every expression with lookup(expression); optional parts whose inputs have no value go.

    Raises:
        BindingError: an expression outside an optional part has no value.
    """
    def optional(match: re.Match[str]) -> str:
        part = match.group(1)
        if any(lookup(name) is None for name in references(part)):
            return ""
        return part

    def required(match: re.Match[str]) -> str:
        value = lookup(match.group(1))
        if value is None:
            raise BindingError(f"${{{{{match.group(1)}}}}} has no value")
        return value

    return EXPRESSION.sub(required, OPTIONAL.sub(optional, text))
