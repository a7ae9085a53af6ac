"""End-to-end fixtures: each test module starts its own local stack as ``local_stack``."""

import boto3
import pytest


@pytest.fixture(scope="module")
def aws(local_stack):
    """Clients of any AWS SDK pointed at the local stack with dummy credentials."""
    def client(service: str):
        return boto3.client(service, endpoint_url=local_stack["endpoint_url"], region_name=local_stack["region"],
                            aws_access_key_id="dummy", aws_secret_access_key="dummy")
    return client
