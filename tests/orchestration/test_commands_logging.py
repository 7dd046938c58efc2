"""What every command shares: secrets never reach a log line, whichever library logs them."""
import logging
import uuid
from datetime import datetime, timedelta, timezone

from orchestration.commands import RedactSecrets, setup_logging
from tests.azurite import ACCOUNT, KEY
from tests.conftest import invoke
from tools.make_data import load_bundled, write_files


def test_credentials_in_urls_and_connection_strings_are_masked():
    record = logging.LogRecord("urllib3", logging.DEBUG, __file__, 1, "GET %s %s", (
        "https://a.blob.core.windows.net/c/x?sv=2024&sig=AbC%2Bd3f&se=2026", "AccountKey=s3cr3t==;x=1"), None)
    RedactSecrets().filter(record)
    message = record.getMessage()
    assert "AbC%2Bd3f" not in message and "s3cr3t" not in message
    assert "sig=<hidden>&se=2026" in message and "AccountKey=<hidden>;x=1" in message


def test_http_libraries_stay_quiet_at_debug():
    setup_logging("DEBUG")
    assert logging.getLogger("urllib3").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("azure.core.pipeline.policies.http_logging_policy").getEffectiveLevel() == \
        logging.WARNING


def test_upload_at_debug_with_a_sas_connection_string_never_logs_the_signature(azurite, tmp_path):
    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    sas = generate_account_sas(
        ACCOUNT, KEY, ResourceTypes(container=True, object=True),
        AccountSasPermissions(read=True, write=True, create=True, list=True),
        expiry=datetime.now(timezone.utc) + timedelta(hours=1))
    signature = dict(part.split("=", 1) for part in sas.split("&"))["sig"]
    write_files(load_bundled()[:20], tmp_path / "data", count=4)
    result = invoke(
        "orchestration.cloud.cli", "upload", "--data-dir", "data", cwd=tmp_path, LOGGING_LEVEL="DEBUG",
        AML_BLOB_CONTAINER_NAME=f"sas-{uuid.uuid4().hex[:10]}",
        AZURE_STORAGE_CONNECTION_STRING=(f"BlobEndpoint=http://127.0.0.1:{azurite}/{ACCOUNT};"
                                         f"SharedAccessSignature={sas}"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("exit 0: uploaded 4 files")
    assert signature not in result.stderr + result.stdout
