"""Blob upload against the real Azurite emulator."""
import logging
import uuid

import pytest
from azure.storage.blob import ContainerClient

from orchestration.cloud.blob_store import BlobStoreError, container_for, upload_folder
from orchestration.settings import load_settings
from tests.azurite import KEY, connection_string


@pytest.fixture
def settings(azurite, monkeypatch):
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection_string(azurite))
    return load_settings(AML_BLOB_CONTAINER_NAME=f"test-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def folder(tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    for number in range(12):
        (data / f"f{number:02d}.txt").write_text(f"record {number}\n" * (number + 1))
    (data / "sub" / "nested.txt").write_bytes(bytes(range(256)) * 40)
    return data


def blobs(container: ContainerClient) -> dict[str, bytes]:
    return {b.name: container.download_blob(b.name).readall() for b in container.list_blobs()}


def test_upload_puts_every_file_in_place_creating_the_container(settings, folder):
    container = container_for(settings)
    report = upload_folder(container, folder, "raw")
    assert (report.transferred, report.skipped) == (13, 0)
    stored = blobs(container)
    assert sorted(stored) == sorted([f"raw/f{n:02d}.txt" for n in range(12)] + ["raw/sub/nested.txt"])
    assert stored["raw/f03.txt"] == (folder / "f03.txt").read_bytes()
    assert report.bytes == sum(len(v) for v in stored.values())


def test_second_upload_rewrites_nothing_and_a_changed_file_only_itself(settings, folder):
    container = container_for(settings)
    upload_folder(container, folder, "raw")
    etags = {b.name: b.etag for b in container.list_blobs()}
    again = upload_folder(container, folder, "raw")
    assert (again.transferred, again.skipped) == (0, 13)
    assert {b.name: b.etag for b in container.list_blobs()} == etags
    (folder / "f05.txt").write_text("changed\n")
    third = upload_folder(container, folder, "raw")
    assert (third.transferred, third.skipped) == (1, 12)
    changed = {b.name for b in container.list_blobs() if b.etag != etags[b.name]}
    assert changed == {"raw/f05.txt"}


def test_a_wrong_key_gives_a_clear_error_without_the_key(azurite, monkeypatch, folder, caplog):
    wrong = KEY[:-8] + "AAAAAAA="
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection_string(azurite, wrong))
    settings = load_settings(AML_BLOB_CONTAINER_NAME="wrong-key")
    with caplog.at_level(logging.DEBUG), pytest.raises(BlobStoreError) as caught:
        upload_folder(container_for(settings), folder, "raw")
    message = str(caught.value)
    assert "refused the credentials" in message and "AML_STORAGE_ACCOUNT_KEY" in message
    assert wrong not in message and wrong not in caplog.text and "AccountKey" not in message


def test_account_name_and_key_are_required_without_a_connection_string():
    from orchestration.settings import SettingsError

    with pytest.raises(SettingsError, match="AML_STORAGE_ACCOUNT_NAME.*\n.*AML_STORAGE_ACCOUNT_KEY"):
        container_for(load_settings())


def test_a_backslash_in_a_file_name_is_uploaded_once(settings, tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "a\\b.txt").write_text("x\n")  # the service stores it as a/b.txt
    container = container_for(settings)
    assert upload_folder(container, folder, "raw").transferred == 1
    assert [b.name for b in container.list_blobs()] == ["raw/a/b.txt"]
    again = upload_folder(container, folder, "raw")
    assert (again.transferred, again.skipped) == (0, 1)


def test_an_unreachable_account_is_reported_within_seconds_not_minutes(settings):
    """The SDK's default backoff (15 s, tripling) kept an unreachable account silent for 87 s."""
    policy = container_for(settings)._pipeline._impl_policies  # the client's own policy chain
    (retry,) = [p for p in policy if type(p).__name__ == "ExponentialRetry"]
    backoffs = [retry.initial_backoff + (retry.increment_base ** n if n else 0)
                for n in range(retry.total_retries)]  # ExponentialRetry.get_backoff_time
    assert retry.total_retries == 3 and sum(backoffs) + 3 * retry.random_jitter_range <= 20
