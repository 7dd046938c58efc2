"""`${{...}}` data-binding expressions, as Azure ML substitutes them in commands, program arguments and paths.

`$[[ ... ]]` marks an optional part of a command: kept (without the brackets) when every input it names
has a value, dropped otherwise. Azure pastes values as they are; its paths never hold a space or a quote,
local ones may, so a path that needs quoting is quoted for the place it lands in the shell text
(unquoted, inside '...', "..." or $'...'), and refused where the command uses syntax whose quoting is
not followed here (comments, here-documents, backticks, ${...}): one word, or exit 2. Pure functions.
"""
from __future__ import annotations

import re
import shlex
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


SHELL_SAFE = re.compile(r"[\w@%+=:,./-]+")  # what shlex.quote leaves bare: one word anywhere in bash
# Bash syntax whose quoting the scanner below does not follow: a path that needs quoting is refused there.
UNMODELLED = re.compile(r"<<|#|`|\$\{(?![A-Za-z_]\w*\})|\$\(\(|\bcase\b|\\\n")


class UnsafePlacement(BindingError):
    """A path that needs quoting lands in bash syntax whose quoting is not followed here."""


def shell_context(text: str) -> str:
    """The quoting in force at the end of the bash text `text`: "unquoted", "single", "double" or "ansi"
    ($'...'); $(...) starts unquoted again. Only for text UNMODELLED does not match."""
    stack = ["unquoted"]
    index = 0
    while index < len(text):
        char, top = text[index], stack[-1]
        pair = text[index:index + 2]
        if top == "single":
            if char == "'":
                stack.pop()
        elif top == "ansi":
            if char == "\\":
                index += 1
            elif char == "'":
                stack.pop()
        elif char == "\\":
            index += 1
        elif top == "double":
            if char == '"':
                stack.pop()
            elif pair == "$(":
                stack.append("substitution")
                index += 1
        elif char == ")" and top in ("substitution", "group"):
            stack.pop()
        elif pair == "$'":
            stack.append("ansi")
            index += 1
        elif pair == "$(":
            stack.append("substitution")
            index += 1
        elif char == "(":
            stack.append("group")
        elif char == "'":
            stack.append("single")
        elif char == '"':
            stack.append("double")
        index += 1
    top = stack[-1]
    return top if top in ("single", "double", "ansi") else "unquoted"


def shell_quoted(value: str, context: str) -> str:
    """`value` as one word of bash text at a place quoted as `context` says."""
    if context == "single":
        return value.replace("'", "'\\''")
    if context == "double":
        return re.sub(r'([\\"$`])', r"\\\1", value)
    if context == "ansi":
        return re.sub(r"([\\'])", r"\\\1", value)
    return shlex.quote(value)


HELD = re.compile(r"\0(\d+)\0")  # a held value's stand-in: no meaning to bash or shlex, one word piece


def _hold(text: str, lookup: Callable[[str], str | None],
          quoted: Callable[[str], bool]) -> tuple[str, list[str]]:
    """`text` with every expression replaced by its value and the optional parts whose inputs have no
    value dropped; a value `quoted` says is a path that needs quoting is held back, standing in as
    \0N\0, so that what is around it can be read first. Returns the text and the held values.

    Raises:
        BindingError: an expression outside an optional part has no value.
    """
    def optional(match: re.Match[str]) -> str:
        part = match.group(1)
        if any(lookup(name) is None for name in references(part)):
            return ""
        return part

    held: list[str] = []

    def required(match: re.Match[str]) -> str:
        value = lookup(match.group(1))
        if value is None:
            raise BindingError(f"${{{{{match.group(1)}}}}} has no value")
        if quoted(match.group(1)) and not SHELL_SAFE.fullmatch(value):
            held.append(value)
            return f"\0{len(held) - 1}\0"
        return value

    return EXPRESSION.sub(required, OPTIONAL.sub(optional, text)), held


def substitute(text: str, lookup: Callable[[str], str | None],
               quoted: Callable[[str], bool] = lambda expression: False) -> str:
    """Replaces every expression with lookup(expression); optional parts whose inputs have no value go.
    A value `quoted(expression)` says is a path lands as one word of bash: pasted as it is when it needs
    no quoting (as Azure's own paths), else quoted for where it lands, once every other value is in
    place (a pasted literal can open or close a quote).

    Raises:
        BindingError: an expression outside an optional part has no value.
        UnsafePlacement: a path that needs quoting lands in syntax not followed here (UNMODELLED).
    """
    text, held = _hold(text, lookup, quoted)
    if not held:
        return text
    construct = UNMODELLED.search(text.replace("\0", ""))
    if construct:
        raise UnsafePlacement(f"the path {held[0]!r} needs quoting, and the command uses "
                              f"{construct.group().strip() or 'a line continuation'!r}, where this runner "
                              "cannot tell how to quote it; use folders without spaces or shell characters")
    return HELD.sub(lambda m: shell_quoted(held[int(m.group(1))], shell_context(m.string[:m.start()])), text)


def split_words(text: str, lookup: Callable[[str], str | None], quoted: Callable[[str], bool]) -> list[str]:
    """`text` split into words as a shell splits them (shlex), its expressions replaced: literals are
    pasted before the split, as Azure pastes them; a path `quoted` names is one word, or one piece of a
    word, whatever it holds.

    Raises:
        BindingError: an expression outside an optional part has no value.
        ValueError: a quote is not closed.
    """
    text, held = _hold(text, lookup, quoted)
    return [HELD.sub(lambda m: held[int(m.group(1))], word) for word in shlex.split(text)]
