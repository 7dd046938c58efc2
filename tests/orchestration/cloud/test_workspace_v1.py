"""Authentication choice and the real SDK authentication objects, built offline."""
import logging

from orchestration.cloud.workspace_v1 import (
    AZURE_CLI, INTERACTIVE, SERVICE_PRINCIPAL, _idle_seconds, authentication, authentication_kind,
)
from orchestration.settings import load_settings

PRINCIPAL = dict(AZURE_TENANT_ID="tenant", AZURE_CLIENT_ID="app", AZURE_CLIENT_SECRET="s3cret-sentinel")


def test_service_principal_when_all_three_are_set_else_cli_else_interactive():
    principal = load_settings(env_file=None, **PRINCIPAL)
    assert authentication_kind(principal, cli_logged_in=True) == SERVICE_PRINCIPAL
    partial = load_settings(env_file=None, AZURE_TENANT_ID="t", AZURE_CLIENT_ID="a")
    assert authentication_kind(partial, cli_logged_in=True) == AZURE_CLI
    assert authentication_kind(partial, cli_logged_in=False) == INTERACTIVE


def test_the_chosen_authentication_is_named_in_the_log_and_its_secret_is_not(caplog):
    from azureml.core.authentication import ServicePrincipalAuthentication

    with caplog.at_level(logging.INFO):
        auth = authentication(load_settings(env_file=None, **PRINCIPAL), SERVICE_PRINCIPAL)
    assert isinstance(auth, ServicePrincipalAuthentication)
    assert "authenticating with the service principal" in caplog.text
    assert "s3cret-sentinel" not in caplog.text


def test_idle_time_is_read_in_both_of_the_services_formats():
    assert _idle_seconds("PT300S") == 300 and _idle_seconds(120) == 120
