"""The notebooks' helpers build models on copies of GPT-2, so that a learner can run a cell again."""

import pytest

from vgpt.course import notebook
from vgpt.loading import load_profile


@pytest.fixture(scope="module")
def parts():
    return load_profile("tiny", verbose=False)


def test_load_trained_twice_leaves_the_loaded_gpt2_unwrapped(parts):
    first, second = notebook.load_trained(parts), notebook.load_trained(parts)
    assert first.lm is not second.lm
    assert not hasattr(parts.language_model, "peft_config")
    notebook.fresh_model(parts)  # and a fresh model can still be built from the same parts


def test_fresh_model_twice(parts):
    a, b = notebook.fresh_model(parts), notebook.fresh_model(parts)
    assert a.lm.base_model.model is not b.lm.base_model.model
    assert not hasattr(parts.language_model, "peft_config")
