"""`${{...}}` data-binding expressions, as Azure ML substitutes them in commands, program arguments and paths.

`$[[ ... ]]` marks an optional part of a command: kept (without the brackets) when every input it names
has a value, dropped otherwise. Azure pastes values as they are; its paths never hold a space or a quote,
local ones may, so a value `quoted` says is a path is quoted for the place it lands in the shell text
(unquoted, inside '...', "..." or $'...', a comment, a here-document): one word, whatever it holds. Pure
functions: no file, no process.
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


HEREDOC = re.compile(r"<<(-?)[ \t]*(?:'([^'\n]*)'|\"([^\"\n]*)\"|\\?([^\s;&|<>()]+))")
WORD_START = " \t\n;&|()<>"


def shell_context(text: str) -> str:
    """The quoting in force at the end of the bash text `text`: "unquoted", "single", "double", "ansi"
    ($'...'), "comment", or inside a here-document's body: "heredoc" (expanded: `$` and backslashes
    matter) or "heredoc-literal" (its delimiter quoted). $(...) and `...` start unquoted again."""
    stack = ["unquoted"]
    heredocs: list[tuple[str, bool, bool]] = []  # (delimiter, literal, strip tabs), waiting for a newline
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
            elif char == "`":
                stack.append("backtick")
        elif char == "\n" and heredocs:  # the bodies start on the next line, one after another
            for delimiter, literal, strip in heredocs:
                end = _heredoc_end(text, index + 1, delimiter, strip)
                if end is None:
                    return "heredoc-literal" if literal else "heredoc"
                index = end
            heredocs = []
            continue
        elif char == "#" and (index == 0 or text[index - 1] in WORD_START):
            newline = text.find("\n", index)
            if newline == -1:
                return "comment"
            index = newline
            continue
        elif (top == "unquoted" and pair == "<<" and text[index:index + 3] != "<<<"
              and (match := HEREDOC.match(text, index))):
            strip, single, double, bare = match.groups()
            heredocs.append((single if single is not None else double if double is not None else bare,
                             single is not None or double is not None or text[match.start(4) - 1] == "\\",
                             bool(strip)))
            index = match.end()
            continue
        elif char == "`" and top == "backtick":
            stack.pop()
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
        elif char == "`":
            stack.append("backtick")
        elif char == "'":
            stack.append("single")
        elif char == '"':
            stack.append("double")
        index += 1
    top = stack[-1]
    return top if top in ("single", "double", "ansi") else "unquoted"


def _heredoc_end(text: str, start: int, delimiter: str, strip_tabs: bool) -> int | None:
    """Where the here-document whose body starts at `start` ends (the index of its closing line's
    newline, or the end of the text), or None when `text` ends inside the body."""
    position = start
    while True:
        newline = text.find("\n", position)
        line = text[position:] if newline == -1 else text[position:newline]
        if (line.lstrip("\t") if strip_tabs else line) == delimiter:
            return len(text) if newline == -1 else newline
        if newline == -1:
            return None
        position = newline + 1


def shell_quoted(value: str, context: str) -> str:
    """`value` as one word of bash text at a place quoted as `context` says."""
    if context == "single":
        return value.replace("'", "'\\''")
    if context == "double":
        return re.sub(r'([\\"$`])', r"\\\1", value)
    if context == "ansi":
        return re.sub(r"([\\'])", r"\\\1", value)
    if context == "heredoc":  # no word splitting there; expansion still happens
        return re.sub(r"([\\$`])", r"\\\1", value)
    if context in ("heredoc-literal", "comment"):
        return value
    return shlex.quote(value)


def substitute(text: str, lookup: Callable[[str], str | None],
               quoted: Callable[[str], bool] = lambda expression: False) -> str:
    """Replaces every expression with lookup(expression); optional parts whose inputs have no value go.
    Values for which `quoted(expression)` is true are quoted for bash where they land (shell_quoted).

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
        if quoted(match.group(1)):
            return shell_quoted(value, shell_context(match.string[:match.start()]))
        return value

    return EXPRESSION.sub(required, OPTIONAL.sub(optional, text))
