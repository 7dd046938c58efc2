"""CI logs in to Azure with azure/login (OpenID Connect federation, docs/ci.md): it leaves the Azure CLI
logged in and no client secret anywhere. Both SDKs' commands must take that login, and reach the service
with its tokens; a workflow that also exports the app's ids (no secret) must not change that."""
import pytest

from orchestration.cloud import cli as cloud
from tests.network import NetworkRefused
from tests.orchestration.cloud.fake_az import audience, fake_az
from tests.orchestration.cloud.offline_v1 import WORKSPACE


@pytest.fixture
def azure_login(wire, tmp_path, monkeypatch):
    """What azure/login leaves: `az` logged in; the app's ids exported by some workflows, no secret."""
    fake_az(tmp_path, monkeypatch)
    for name, value in {**WORKSPACE, "AZURE_CLIENT_ID": "app", "AZURE_TENANT_ID": "tenant",
                        "AZUREML_CURRENT_CLOUD": "AzureCloud"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AZURE_CLIENT_SECRET", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no cached login of anyone else
    return tmp_path / "az.log"


@pytest.mark.parametrize("sdk, resource", [("v1", "https://management.core.windows.net/"),
                                           ("v2", "https://management.azure.com")])
def test_the_commands_use_the_azure_cli_login_that_azure_login_leaves(azure_login, wire, capsys, sdk,
                                                                      resource):
    with pytest.raises(NetworkRefused):
        cloud.main(["--sdk", sdk, "logs", "--run-id", "run-1"])
    calls = azure_login.read_text().splitlines()
    assert calls[0] == "account show --output none"  # the toolkit's check that az is logged in
    # the tenant of the settings, where set, is the one asked for (an `az` may be logged in to several)
    assert f"account get-access-token --output json --resource {resource} --tenant tenant" in calls
    first = wire.sent[0]
    assert first.url.startswith("https://management.azure.com/subscriptions")
    assert audience(first.authorization) == resource  # az's token, for ARM
    assert "login.microsoftonline.com" not in " ".join(sent.url for sent in wire.sent)
    assert "authenticating with the Azure CLI login" in capsys.readouterr().err
