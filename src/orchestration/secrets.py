"""Which values are secrets, in a leaf module: whoever logs, prints or passes on environments uses it."""
from __future__ import annotations

import re

# The secret settings (SecretStr in settings.py; a test keeps the two in step). Azure ML puts none of
# them in a compute node's environment, so the local runner's workers do not get them either.
SECRET_VARIABLES = ("AML_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_CONNECTION_STRING", "AZURE_CLIENT_SECRET")

# Credentials as they appear in URLs, connection strings and token requests: the value is masked.
SECRET_PATTERN = re.compile(
    r"(?i)\b(sig|AccountKey|SharedAccessSignature|SharedAccessKey|client_secret|password|access_token"
    r"|refresh_token)=[^&;\s'\"]+"
)


# Environment variables whose names say they hold a credential: their values are never written down.
SECRET_NAME = re.compile(r"(?i)key|secret|token|password|passwd|pwd|connection_?string|credential|\bsas")
HIDDEN = "<hidden>"


def mask(text: str) -> str:
    return SECRET_PATTERN.sub(lambda m: f"{m.group(1)}={HIDDEN}", text)


def masked_environment(variables: dict[str, str]) -> dict[str, str]:
    """Environment variables as they may be written to a file: a value whose name says it is a
    credential is hidden, and credentials inside other values are masked."""
    return {name: HIDDEN if SECRET_NAME.search(name) else mask(value) for name, value in variables.items()}
