"""A logged-in `az` on the PATH, as a person's `az login` or CI's azure/login leaves it: what the toolkit's
Azure CLI authentication runs (`az account show`, `az account get-access-token --resource R`)."""
from __future__ import annotations

import base64
import json
import os
import stat
import sys

from orchestration.paths import ROOT

FAKE_AZ = """#!{python}
import json, sys, time
args = sys.argv[1:]
with open({log!r}, "a") as log:
    log.write(" ".join(args) + "\\n")
if args[:2] == ["account", "get-access-token"]:  # a token for the resource asked for, as az gives it
    resource = args[args.index("--resource") + 1]
    sys.path.insert(0, {tests!r})
    from tests.orchestration.cloud.offline_v1 import fake_jwt
    print(json.dumps({{"accessToken": fake_jwt(resource), "expiresOn": "2099-01-01 00:00:00.000000",
                      "expires_on": int(time.time()) + 3600, "subscription": "s", "tenant": "t",
                      "tokenType": "Bearer"}}))
else:
    print(json.dumps({{"id": "s", "tenantId": "t", "user": {{"name": "someone", "type": "user"}}}}))
"""


def fake_az(tmp_path, monkeypatch) -> None:
    """An `az` on the PATH that is logged in: `az account show`, and `az account get-access-token
    --resource R` answered with a token whose audience is R, as AzureCliCredential runs them."""
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "az"
    script.write_text(FAKE_AZ.format(python=sys.executable, log=str(tmp_path / "az.log"),
                                     tests=str(ROOT)))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


def audience(authorization: str) -> str:
    claims = authorization.removeprefix("Bearer ").split(".")[1]
    return json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["aud"]
