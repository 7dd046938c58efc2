"""Which values are secrets, in a leaf module: whoever logs, prints or passes on environments uses it."""
from __future__ import annotations

import re

# The secret settings (SecretStr in settings.py; a test keeps the two in step). Azure ML puts none of
# them in a compute node's environment, so the local runner's workers do not get them either.
SECRET_VARIABLES = ("AML_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_CONNECTION_STRING", "AZURE_CLIENT_SECRET")

# Credentials as they appear in URLs, connection strings, command lines, JSON and headers: the value is
# masked, the name kept. A name counts when it ends with one of these words (DB_PASSWORD=, SQL Pwd=).
_SECRET_WORDS = (r"sig|accountkey|sharedaccesssignature|sharedaccesskey|secret|password|passwd|pwd|passphrase"
                 r"|token|api[_-]?key|access[_-]?key")
SECRET_PATTERN = re.compile(rf"(?i)(?<![\w-])([\w.-]*?(?:{_SECRET_WORDS}))(\s*=\s*)([^&;\s'\"]+)")
SECRET_FLAG = re.compile(rf"(?i)(?<![\w-])(--?[\w-]*(?:{_SECRET_WORDS})[\w-]*)(\s+)"
                         r"(\"[^\"]*\"|'[^']*'|[^\s-]\S*)")
SECRET_JSON = re.compile(rf"(?i)(\"[\w-]*(?:{_SECRET_WORDS}|key)[\w-]*\"\s*:\s*)\"[^\"]*\"")
BEARER = re.compile(r"(?i)\b(Bearer|Basic)\s+[\w.~+/=-]+")
# A password in a URL: scheme://user:password@host.
URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+):([^@\s/]+)@")
# Names (environment variables, --flags) that say their value is a credential: it is never written down.
SECRET_NAME = re.compile(r"(?i)key|secret|token|passw(or)?d|passphrase|pwd|connection[_-]?string|credential"
                         r"|(^|[_-])(pass|sas)([_-]|$)")
HIDDEN = "<hidden>"


def mask(text: str) -> str:
    """`text` with every credential it shows replaced by <hidden>."""
    text = SECRET_PATTERN.sub(lambda m: f"{m.group(1)}{m.group(2)}{HIDDEN}", text)
    text = SECRET_FLAG.sub(lambda m: f"{m.group(1)}{m.group(2)}{HIDDEN}", text)
    text = SECRET_JSON.sub(lambda m: f'{m.group(1)}"{HIDDEN}"', text)
    text = BEARER.sub(lambda m: f"{m.group(1)} {HIDDEN}", text)
    return URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{HIDDEN}@", text)


def masked_arguments(arguments: tuple[str, ...] | list[str]) -> list[str]:
    """Command-line arguments as they may be written to a file: the value of a `--flag` whose name says
    it is a credential (`--api-key X`, `--password=X`, `--password -X`) is hidden, credentials in the
    others masked."""
    masked: list[str] = []
    for index, argument in enumerate(arguments):
        flag, equals, _ = argument.partition("=")
        previous = arguments[index - 1] if index else ""
        if argument.startswith("-") and equals and SECRET_NAME.search(flag.lstrip("-")):
            masked.append(f"{flag}={HIDDEN}")
        elif (previous.startswith("-") and "=" not in previous and SECRET_NAME.search(previous.lstrip("-"))
              and not argument.startswith("--")):
            masked.append(HIDDEN)
        else:
            masked.append(mask(argument))
    return masked


def masked_environment(variables: dict[str, str]) -> dict[str, str]:
    """Environment variables as they may be written to a file: a value whose name says it is a
    credential is hidden, and credentials inside other values are masked."""
    return {name: HIDDEN if SECRET_NAME.search(name) else mask(value) for name, value in variables.items()}
