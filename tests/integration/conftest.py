import pytest


@pytest.fixture
def moto_config() -> dict:
    return {"stepfunctions": {"execute_state_machine": True}}
