"""Credentials are masked wherever they appear in text, and hidden wherever their name gives them away."""
import pytest

from orchestration.secrets import mask, masked_arguments, masked_environment


@pytest.mark.parametrize("text, masked", [
    ("DB_PASSWORD=hunter2 AZURE_CLIENT_SECRET=s3cr3t", "DB_PASSWORD=<hidden> AZURE_CLIENT_SECRET=<hidden>"),
    ("run --password hunter3 --factor 3", "run --password <hidden> --factor 3"),
    ('-H "Authorization: Bearer eyJtoken"', '-H "Authorization: Bearer <hidden>"'),
    ("Driver=x;Pwd=hunter4;AccountKey = k==;", "Driver=x;Pwd=<hidden>;AccountKey = <hidden>;"),
    ('{"clientSecret": "hunter6", "name": "x"}', '{"clientSecret": "<hidden>", "name": "x"}'),
    ("postgresql://etl:hunter5@db/prod", "postgresql://etl:<hidden>@db/prod"),
    ("https://a.blob.core.windows.net/c?sv=1&sig=S3CRET&se=2026",
     "https://a.blob.core.windows.net/c?sv=1&sig=<hidden>&se=2026"),
    ("tokens=5 config=1 --factor 3 http://host:80/x", "tokens=5 config=1 --factor 3 http://host:80/x"),
])
def test_a_credential_in_text_is_masked_and_the_rest_kept(text, masked):
    assert mask(text) == masked


def test_a_credentials_name_hides_its_value_in_arguments_and_variables():
    assert masked_arguments(["--passphrase", "h7", "--password", "-h8", "--api-key=h9", "--x", "1"]) == \
        ["--passphrase", "<hidden>", "--password", "<hidden>", "--api-key=<hidden>", "--x", "1"]
    assert masked_environment({"GPG_PASSPHRASE": "h5", "DB_PASS": "h", "BYPASS_CACHE": "1", "MODE": "a"}) == \
        {"GPG_PASSPHRASE": "<hidden>", "DB_PASS": "<hidden>", "BYPASS_CACHE": "1", "MODE": "a"}
