import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach for the Hub


@pytest.fixture(scope="session")
def seed_random():
    """The seed's full-size architectures with random weights (built once per run)."""
    from vgpt import loading, profiles

    return loading.build_seed_random()
