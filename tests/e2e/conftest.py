"""End-to-end fixtures: each test module starts its own local stack as ``local_stack``."""

import pytest

from tests.e2e.local import client


@pytest.fixture(scope="module")
def aws(local_stack):
    """Clients of the local stack: ``aws("s3")``."""
    return lambda service: client(local_stack, service)
