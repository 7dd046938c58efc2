"""The offline Azure ML SDK v1 service, for the harness tests."""
from tests.orchestration.cloud.offline_v1 import aml  # noqa: F401
