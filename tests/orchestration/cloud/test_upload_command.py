"""`make upload` against Azurite: every file in place, and a second run rewrites nothing."""
import uuid

from azure.storage.blob import ContainerClient

from tests.azurite import connection_string
from tests.conftest import invoke
from tools.make_data import load_bundled, write_files


def test_upload_twice_against_azurite(azurite, tmp_path):
    write_files(load_bundled()[:200], tmp_path / "data", count=20)
    env = dict(AZURE_STORAGE_CONNECTION_STRING=connection_string(azurite),
               AML_BLOB_CONTAINER_NAME=f"up-{uuid.uuid4().hex[:10]}", INPUT_DIR="raw")
    first = invoke("orchestration.cloud.cli", "upload", "--data-dir", "data", cwd=tmp_path, **env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("exit 0: uploaded 20 files") and "0 already up to date" in first.stdout
    container = ContainerClient.from_connection_string(
        connection_string(azurite), env["AML_BLOB_CONTAINER_NAME"]
    )
    names = sorted(b.name for b in container.list_blobs())
    assert names == [f"raw/housing-{i:02d}.txt" for i in range(20)]
    stored = container.download_blob("raw/housing-07.txt").readall()
    assert stored == (tmp_path / "data" / "housing-07.txt").read_bytes()
    second = invoke("orchestration.cloud.cli", "upload", "--data-dir", "data", cwd=tmp_path, **env)
    assert second.stdout.startswith("exit 0: uploaded 0 files (0 bytes), 20 already up to date")
    assert "AccountKey" not in first.stderr + second.stderr


def test_a_malformed_connection_string_is_a_setting_error_that_hides_it(tmp_path):
    write_files(load_bundled()[:10], tmp_path / "data", count=2)
    result = invoke("orchestration.cloud.cli", "upload", "--data-dir", "data", cwd=tmp_path,
                    AZURE_STORAGE_CONNECTION_STRING="garbage-sentinel")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "AZURE_STORAGE_CONNECTION_STRING: expected" in result.stderr
    assert "garbage-sentinel" not in result.stderr


def test_a_folder_that_publish_would_refuse_is_refused_before_uploading(tmp_path):
    write_files(load_bundled()[:10], tmp_path / "data", count=2)
    result = invoke("orchestration.cloud.cli", "upload", "--data-dir", "data", cwd=tmp_path,
                    INPUT_DIR="raw files", AML_BLOB_CONTAINER_NAME="Bad_Name",
                    AZURE_STORAGE_CONNECTION_STRING="UseDevelopmentStorage=true")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "INPUT_DIR: expected a folder" in result.stderr
    assert "AML_BLOB_CONTAINER_NAME: expected 3-63" in result.stderr
