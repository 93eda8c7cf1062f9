"""Sharing a bridge the way the Hugging Face ecosystem does: save_pretrained, from_pretrained (a folder
or a Hub id), push_to_hub, and the model card with the Hub's metadata.

No Hub is reachable from here: the upload runs against a stand-in of `huggingface_hub.HfApi` that
records what would be sent, and a Hub id is resolved through a stand-in of `snapshot_download`.
"""

import pytest
import torch
import yaml

from vgpt import bridge
from vgpt.bridge import BridgeMismatch
from vgpt.config import SEED, TINY
from vgpt.loading import load_profile
from vgpt.lora import LoRAConv1D
from vgpt.model import VisionGPT2
from vgpt.prefix import tokenize_captions
from vgpt.train import TrainConfig

BRIDGE_FILES = {"README.md", "bridge.json", "projector.safetensors", "adapter_model.safetensors", "adapter_config.json"}
CARD = {"metrics": {"test": {"exact_match": 0.96, "CIDEr-D": 9.5}}, "recipe": TINY.train, "title": "my captioner"}


@pytest.fixture(scope="module")
def parts():
    return load_profile("tiny", verbose=False)


@pytest.fixture
def trained(parts, randomize_lora):
    """A bridge whose weights are not the starting ones (B of LoRA starts at zero)."""
    model = VisionGPT2.from_parts(parts, random_seed=0)
    randomize_lora(model)
    with torch.no_grad():
        for p in model.projector.parameters():
            p.add_(0.01)
    return model.eval()


def logits(model, parts):
    ids, mask = tokenize_captions(parts.tokenizer, ["a small red circle at the top left", "a large blue square"], 24)
    with torch.no_grad():
        return model(ids, mask, features=torch.randn(2, 17, 128, generator=torch.Generator().manual_seed(0))).logits


def front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_round_trip_through_a_folder_loads_the_frozen_models_by_itself(trained, parts, tmp_path):
    folder = trained.save_pretrained(tmp_path / "bridge", CARD)
    assert {p.name for p in folder.iterdir()} == BRIDGE_FILES
    loaded = VisionGPT2.from_pretrained(folder)  # no parts: the profile the bridge names is loaded
    assert loaded.profile.name == "tiny" and loaded.spec == trained.spec
    torch.testing.assert_close(logits(loaded, parts), logits(trained, parts), atol=0, rtol=0)


def test_the_model_card_carries_the_hubs_metadata_the_metrics_and_the_recipe(trained, tmp_path):
    card = (trained.save_pretrained(tmp_path / "bridge", CARD) / "README.md").read_text()
    meta = front_matter(card)
    assert meta["license"] == "mit" and meta["pipeline_tag"] == "image-to-text" and "vgpt" in meta["tags"]
    assert "base_model" not in meta  # tiny's frozen models are not on the Hub
    results = meta["model-index"][0]["results"]
    assert {(r["dataset"]["split"], m["name"], m["value"]) for r in results for m in r["metrics"]} == {
        ("test", "exact_match", 0.96), ("test", "CIDEr-D", 9.5)}  # fmt: skip
    assert "# my captioner" in card and "lr_projector: 0.002" in card  # the recipe
    assert "## Limitations" in card and "VisionGPT2.from_pretrained(" in card
    assert f"fingerprint `{trained.spec.vision_fingerprint}`" in card


def test_a_seed_bridges_card_names_its_base_models_and_dataset():
    spec = SEED.model.with_(vision_fingerprint="abc", vocab_size=50257)
    meta = front_matter(bridge.model_card("seed", spec, {"data": "ariG23498/flickr8k", "recipe": SEED.train}))
    assert meta["base_model"] == ["openai/clip-vit-large-patch14", "gpt2"]
    assert meta["datasets"] == ["ariG23498/flickr8k"]


class StandInHub:
    """What push_to_hub hands `huggingface_hub.HfApi`: the repo it makes, the files it uploads."""

    def __init__(self):
        self.calls, self.files = [], {}

    def create_repo(self, repo_id, repo_type, private, exist_ok):
        self.calls.append(("create_repo", repo_id, repo_type, private, exist_ok))

    def upload_folder(self, repo_id, repo_type, folder_path, commit_message):
        from pathlib import Path

        self.calls.append(("upload_folder", repo_id, repo_type, commit_message))
        self.files = {p.name: p.read_bytes() for p in Path(folder_path).iterdir()}
        return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/0"})()


def test_push_to_hub_uploads_the_bridge_and_its_card(trained):
    hub = StandInHub()
    url = trained.push_to_hub("learner/my-captioner", CARD, api=hub)
    assert url == "https://huggingface.co/learner/my-captioner/commit/0"
    assert hub.calls[0] == ("create_repo", "learner/my-captioner", "model", False, True)
    assert hub.calls[1][:3] == ("upload_folder", "learner/my-captioner", "model")
    assert set(hub.files) == BRIDGE_FILES
    assert b'VisionGPT2.from_pretrained("learner/my-captioner")' in hub.files["README.md"]


def test_from_pretrained_takes_a_hub_id(trained, parts, tmp_path, monkeypatch):
    folder = trained.save_pretrained(tmp_path / "snapshot", CARD)
    asked = []
    monkeypatch.setattr(bridge, "snapshot_download", lambda repo, repo_type: asked.append(repo) or str(folder))
    loaded = VisionGPT2.from_pretrained("learner/my-captioner", parts)
    assert asked == ["learner/my-captioner"]
    torch.testing.assert_close(logits(loaded, parts), logits(trained, parts), atol=0, rtol=0)


def test_a_hub_id_that_cannot_be_fetched_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        BridgeMismatch, match="learner/nothing-here: cannot fetch this bridge from the Hugging Face Hub"
    ):
        VisionGPT2.from_pretrained("learner/nothing-here")
    with pytest.raises(BridgeMismatch, match="not a bridge folder, nor a Hugging Face Hub id"):
        VisionGPT2.from_pretrained("no-such-folder")


def test_frozen_models_that_do_not_match_are_refused_saying_which(trained, parts, tmp_path):
    folder = trained.save_pretrained(tmp_path / "bridge")
    other = load_profile("tiny", verbose=False)
    with torch.no_grad():
        other.vision.embeddings.patch_embedding.weight.mul_(1.01)
    with pytest.raises(BridgeMismatch, match="trained for vision tower [0-9a-f]{16}.*the loaded frozen models have"):
        VisionGPT2.from_pretrained(folder, other)


def test_a_hand_written_lora_is_saved_as_peft_loads_it(parts, randomize_lora, tmp_path):
    """A learner's captioner (LoRA by hand) shares like any other: peft reads its adapter."""
    mine = VisionGPT2.from_parts(parts, stages={"lora_layer": LoRAConv1D}, random_seed=0)
    randomize_lora(mine)
    folder = mine.save_pretrained(tmp_path / "bridge")
    loaded = VisionGPT2.from_pretrained(folder, parts)
    assert loaded.hand_lora is None and hasattr(loaded.lm, "peft_config")
    torch.testing.assert_close(logits(loaded, parts), logits(mine.eval(), parts), atol=1e-6, rtol=1e-5)


def test_recipe_may_be_a_train_config_or_a_dict(trained, tmp_path):
    card = bridge.model_card("tiny", trained.spec, {"recipe": {"epochs": 2}})
    assert "- epochs: 2" in card
    assert "- epochs: 3" in bridge.model_card("tiny", trained.spec, {"recipe": TrainConfig()})
