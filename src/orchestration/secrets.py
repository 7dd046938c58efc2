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


def mask(text: str) -> str:
    return SECRET_PATTERN.sub(lambda m: f"{m.group(1)}=<hidden>", text)
