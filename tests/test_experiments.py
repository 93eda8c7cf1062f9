"""Notebook 09's ablation runner: settings, the labels-by-token-id switch, and results cached by settings."""

import json

import pytest
import torch

from vgpt.course import experiments
from vgpt.course.experiments import BASE, NEUTRAL_COLORS, Settings, labels_by_token_id, run_ablation, settings_with
from vgpt.course.shape_probe import shape_probe
from vgpt.loading import load_profile
from vgpt.prefix import caption_labels, tokenize_captions
from vgpt.world import shapes


@pytest.fixture(scope="module")
def parts():
    return load_profile("tiny", verbose=False)


def test_settings_refuse_unknown_names_and_values():
    with pytest.raises(ValueError, match="unknown setting.*lora_rank.*known: projector"):
        settings_with({"lora_rank": 4})
    with pytest.raises(ValueError, match="labels='by_id'.*'position', 'token_id'"):
        settings_with({"labels": "by_id"})
    with pytest.raises(ValueError, match="lora_targets is empty"):
        settings_with({"lora_targets": []})
    with pytest.raises(ValueError, match="start='shipped'.*projector='mlp'"):
        settings_with({"start": "shipped", "projector": "linear"})


def test_the_key_follows_the_settings_not_the_name():
    assert settings_with({}) == BASE and settings_with({}).key() == Settings().key()
    assert settings_with({"lora_targets": ["c_attn"]}).lora_targets == ("c_attn",)  # a list reads as a tuple
    keys = {settings_with(c).key() for c in ({}, {"lora_r": 4}, {"layer": -2}, {"zero_features": True})}
    assert len(keys) == 4


def test_labels_by_token_id_hide_end_of_text_and_the_default_keeps_it(parts):
    tok = parts.tokenizer
    ids, mask = tokenize_captions(tok, ["a red circle at the top", "a blue square on the left of it"], 24)
    eos = tok.eos_token_id
    by_position = caption_labels(ids, mask, 3)
    by_id = labels_by_token_id(ids, mask, 3, eos)
    ends = mask.sum(1) - 1  # where each caption's own end-of-text sits
    for row, end in enumerate(ends.tolist()):
        assert by_position[row, 3 + end] == eos  # stage 03's rule: end-of-text is a label
        assert by_id[row, 3 + end] == -100  # the mistake: it is not
    assert torch.equal(by_id[by_id != -100], by_position[(by_position != -100) & (by_position != eos)])


def test_token_id_model_trains_without_end_of_text_and_is_scored_with_it(parts):
    """In training its loss equals the plain model's with end-of-text dropped from the text mask (the
    end-of-text is the last real token, so masking it changes only its own label: nothing later
    attends to it). In eval mode it is scored like every other run, end-of-text included."""
    plain = experiments.build_model(parts, BASE)
    by_id = experiments.build_model(parts, settings_with({"labels": "token_id"}))
    assert type(by_id) is experiments.TokenIdLabelsGPT2 and type(plain) is experiments.VisionGPT2
    ids, mask = tokenize_captions(parts.tokenizer, ["a red circle at the top", "a small blue square on the left"], 24)
    features = torch.randn(2, 17, 128)
    without_eos = mask.clone()
    without_eos[torch.arange(2), mask.sum(1) - 1] = 0
    with torch.no_grad():
        loss_by_id = by_id.train()(ids, mask, features=features).loss
        torch.testing.assert_close(loss_by_id, plain.train()(ids, without_eos, features=features).loss)
        assert not torch.allclose(loss_by_id, plain(ids, mask, features=features).loss)
        torch.testing.assert_close(by_id.eval()(ids, mask, features=features).loss,
                                   plain.eval()(ids, mask, features=features).loss)  # fmt: skip


def test_build_model_follows_the_settings_and_leaves_parts_alone(parts):
    model = experiments.build_model(parts, settings_with({"projector": "linear", "lora_r": 4,
                                                         "lora_targets": ("c_attn",)}))  # fmt: skip
    assert isinstance(model.projector, torch.nn.Linear)
    lora_a = [p for n, p in model.lm.named_parameters() if "lora_A" in n]
    assert lora_a and all(p.shape[0] == 4 for p in lora_a)
    assert len(lora_a) == parts.language_model.config.n_layer  # c_attn only: one per block
    assert not hasattr(parts.language_model, "peft_config")  # LoRA went into a copy


def test_run_ablation_trains_once_then_reads_the_cache(parts, tmp_path):
    small = {"n_train": 48, "epochs": 1, "n_eval": 6, "warmup_steps": 1}
    logged = []
    first = run_ablation("tiny run", small, parts, tmp_path, log=logged.append)
    assert first["cached"] is False and len(logged) == 1 and "tiny run" in logged[0]
    assert len(first["step_loss"]) == 3  # 48 captions at batch 16
    assert first["calibration_factor"] > 0
    for split in ("test", "compositional"):
        assert 0 <= first[split]["exact_match"] <= 1 and 0 <= first[split]["eos_rate"] <= 1
    files = list(tmp_path.glob("*.json"))
    assert [f.name for f in files] == [f"{settings_with(small).key()}.json"]
    assert json.loads(files[0].read_text())["settings"]["n_train"] == 48

    again = run_ablation("same settings, another name", small, None, tmp_path)  # no models needed
    assert again["cached"] is True and again["name"] == "same settings, another name"
    assert again["val_loss"] == first["val_loss"] and again["step_loss"] == first["step_loss"]
    with pytest.raises(ValueError, match="no cached result"):
        run_ablation("new settings", {**small, "lora_r": 2}, None, tmp_path)


def test_shipped_results_are_read_when_the_folder_lacks_them_and_never_written_back(tmp_path):
    shipped, mine = tmp_path / "shipped", tmp_path / "mine"
    key = settings_with({"lora_r": 4}).key()
    shipped.mkdir()
    (shipped / f"{key}.json").write_text(json.dumps({"val_loss": 0.5, "settings": {}}))
    result = run_ablation("rank 4", {"lora_r": 4}, None, mine, shipped=shipped)
    assert result["shipped"] is True and result["cached"] is True and result["val_loss"] == 0.5
    assert not mine.exists()  # a shipped result is not copied into the learner's folder
    (mine / f"{key}.json").parent.mkdir()
    (mine / f"{key}.json").write_text(json.dumps({"val_loss": 0.25}))  # the learner's own run wins
    assert run_ablation("rank 4", {"lora_r": 4}, None, mine, shipped=shipped)["val_loss"] == 0.25
    with pytest.raises(ValueError, match="no cached result"):  # shipped=None: train, and no models given
        run_ablation("rank 4", {"lora_r": 4}, None, tmp_path / "empty", shipped=None)


def test_every_shipped_result_is_filed_under_the_key_of_its_settings():
    """A shipped result is found only by its settings: a file under another name would never be read."""
    shipped = sorted(experiments.SHIPPED_RESULTS.glob("*.json"))
    assert len(shipped) >= 15
    for path in shipped:
        result = json.loads(path.read_text())
        if path.name.startswith("probe-") or path == experiments.BASELINE_SPREAD:
            continue
        assert (
            path.stem
            == Settings(**{**result["settings"], "lora_targets": tuple(result["settings"]["lora_targets"])}).key()
        )


def test_zeroed_features_reach_the_model_as_zeros():
    cache = type("Cache", (), {"get": lambda self, ids: torch.ones(len(ids), 17, 128, dtype=torch.float16)})()
    assert experiments.feature_lookup(cache, zero=True)(["a", "b"]).abs().sum() == 0
    assert experiments.feature_lookup(cache, zero=False)(["a"]).dtype == torch.float32


def test_the_shipped_bridge_scored_without_training(parts, tmp_path):
    """epochs=0 scores a bridge as it starts: the shipped one captions test scenes well."""
    result = run_ablation("shipped", {"start": "shipped", "epochs": 0, "n_eval": 6}, parts, tmp_path, log=None)
    assert result["step_loss"] == [] and result["val_loss"] < 0.2
    assert result["test"]["exact_match"] >= 4 / 6 and result["test"]["eos_rate"] == 1.0


def test_balanced_and_counterfactual_data_keep_held_out_pairs_out():
    assert NEUTRAL_COLORS == ("red", "yellow", "blue")
    for data in ("balanced", "counterfactual"):
        scenes = experiments.training_scenes(settings_with({"data": data, "n_train": 200}))
        assert len(scenes) == 200 and all(s.split == "train" for s in scenes)
    balanced = experiments.training_scenes(settings_with({"data": "balanced", "n_train": 200}))
    assert all(o.color in NEUTRAL_COLORS for s in balanced for o in s.objects)


def test_shape_probe_scores_every_layer_for_both_probes_and_caches(parts, tmp_path):
    result = shape_probe(parts, n_train=90, n_test=12, folder=tmp_path, log=None)
    assert result["layers"] == list(range(parts.vision.config.num_hidden_layers + 1))
    for probe in ("all", "neutral"):
        scores = result[probe]
        assert len(scores["test"]) == len(scores["compositional"]) == len(result["layers"])
        assert all(0 <= a <= 1 for a in scores["test"] + scores["compositional"])
        held_out = {f"{c} {s}" for c, s in shapes.COMPOSITIONAL_PAIRS}
        assert set(scores["pairs"][str(result["layers"][-1])]) <= held_out
    assert result["neutral"]["n_train"] < result["all"]["n_train"] == 90
    assert shape_probe(None, n_train=90, n_test=12, folder=tmp_path) == result  # read back, no models needed


# ------------------------------------------------------------------ seeds, spread and the baseline check


def test_run_seeds_runs_each_seed_and_reports_mean_and_sd(tmp_path):
    figures = {"val_loss": 0.0, "test": {"exact_match": 0.0, "color_accuracy": 0.5, "eos_rate": 1.0},
               "compositional": {"exact_match": 0.0, "heldout_shape_accuracy": 0.5, "color_accuracy": 0.5}}  # fmt: skip
    for seed, (loss, exact) in enumerate([(0.2, 0.4), (0.3, 0.5), (0.25, 0.6)]):
        key = settings_with({"lora_r": 4, "seed": seed}).key()
        result = {**figures, "val_loss": loss, "test": {**figures["test"], "exact_match": exact}}
        (tmp_path / f"{key}.json").write_text(json.dumps(result))
    row = experiments.run_seeds("rank 4", {"lora_r": 4}, None, tmp_path, shipped=None)
    assert [r["val_loss"] for r in row["runs"]] == [0.2, 0.3, 0.25] and row["changes"] == {"lora_r": 4}
    assert row["mean"]["final loss"] == pytest.approx(0.25) and row["sd"]["final loss"] == pytest.approx(0.05)
    assert row["mean"]["test exact"] == pytest.approx(0.5) and row["sd"]["test exact"] == pytest.approx(0.1)
    lines = experiments.table({"rank 4": row})
    assert "0.250 ± 0.050" in lines[1] and "50.0 ± 10.0" in lines[1]


def test_differences_call_a_finding_only_beyond_twice_the_noise():
    def row(mean, sd):
        return {"mean": {"test exact": mean}, "sd": {"test exact": sd}}

    base, noise = row(0.40, 0.08), {"test exact": 0.05}  # a 3-seed sd can be far off; the noise was measured apart
    assert experiments.differences(row(0.52, 0.09), base, noise)["test exact"] == (pytest.approx(0.12), True)
    assert experiments.differences(row(0.48, 0.01), base, noise)["test exact"][1] is False
    assert experiments.differences(row(0.30, 0.02), base, noise)["test exact"][1] is True  # either way
    # no noise given: the two rows' sd pooled, sqrt((0.03^2 + 0.04^2) / 2) = 0.035
    assert experiments.differences(row(0.48, 0.03), row(0.40, 0.04))["test exact"][1] is True
    assert experiments.differences(row(0.46, 0.03), row(0.40, 0.04))["test exact"][1] is False


def test_the_shipped_spread_covers_seeds_kernel_paths_threads_and_builds():
    spread = experiments.load_spread()
    runs = spread["runs"]
    assert {r["seed"] for r in runs} == set(experiments.SEEDS)
    assert {r["cpu_capability"] for r in runs} >= {"DEFAULT", "AVX2"} and {r["threads"] for r in runs} == {1, 2}
    assert len({r["torch"].split("+")[0] for r in runs}) >= 2
    assert spread["settings"] == {k: v for k, v in json.loads(json.dumps(vars(BASE))).items() if k != "seed"}
    assert spread["sd"]["final loss"] > 0 and spread["sd"]["test exact"] > 0  # the chaos is real


def test_the_baseline_check_passes_every_machine_and_fails_broken_code():
    """Every shipped baseline run (another kernel path, thread count or build) passes the check; the
    shipped runs of a wrong change (labels by token id, an image the bridge cannot see) fail it."""
    spread = experiments.load_spread()
    for run in spread["runs"]:
        as_result = {"val_loss": run["final loss"], "test": {"exact_match": run["test exact"]}}
        assert experiments.check_baseline(as_result, spread) == [], run
    for changes in ({"labels": "token_id"}, {"zero_features": True}):
        for seed in experiments.SEEDS:
            broken = run_ablation("broken", {**changes, "seed": seed}, None, None)  # shipped
            wrong = experiments.check_baseline(broken, spread)
            assert wrong and "final loss" in wrong[0], changes


@pytest.mark.slow
def test_a_broken_mask_fails_the_baseline_check(parts, tmp_path, monkeypatch):
    """The learner's mistake in stage 04: the mask leaves the visual prefix out (zeros over it). The
    baseline trains and scores, and notebook 09's check refuses it."""
    from vgpt import model as model_module

    def prefix_hidden(text_mask, n_prefix):
        return torch.cat([torch.zeros(text_mask.shape[0], n_prefix, dtype=text_mask.dtype), text_mask], dim=1)

    monkeypatch.setattr(model_module, "joint_attention_mask", prefix_hidden)
    broken = run_ablation("baseline, prefix masked", {}, parts, tmp_path, shipped=None, log=None)
    wrong = experiments.check_baseline(broken, experiments.load_spread())
    assert wrong and broken["val_loss"] > 0.5, broken["val_loss"]
