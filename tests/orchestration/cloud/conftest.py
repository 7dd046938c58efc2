"""The offline Azure ML services, SDK v1 and v2, for the harness tests."""
from tests.orchestration.cloud.offline_v1 import aml  # noqa: F401
from tests.orchestration.cloud.offline_v2 import offline  # noqa: F401
