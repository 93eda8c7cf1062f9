"""Notebook 10, your captioner: the learner's parts gathered, trained into a captioner beside the package's,
scored, a broken part named, and the result ready to share.

    gather.my_parts(globals())      {name: function}: each part (`parts.PARTS`) defined in the notebook, else
                                    kept by its own notebook's checker, else left out, and the package's
                                    stands in: a table says which, and why (`gather.py`)
    trace(frozen, mine)             one batch through the parts, each one's output shape
    side_by_side(frozen, mine)      the package's captioner and one made of the learner's parts, trained
                                    on the same recipe and seed and scored on the same scenes: a
                                    `Comparison` (.table(), .identical, .bits(), .diagnosis(), .card())

Both captioners start from the same bridge (the package's random start; the learner's LoRA layers get its
values copied in), see the same batches in the same order and caption the same scenes, so the parts'
arithmetic is the only difference left: with the worked solutions the two are equal to the last bit. On
the way every part of the learner's is held against its stage on the model's own tensors
(`diagnosis.Watch`), which names the part that went wrong, and where, in words.

It always trains the `tiny` profile, on the CPU, in one thread: a short recipe (`RECIPE`, 500 steps over
8,000 Shapes World scenes) so that each run takes about half a minute on a laptop. One thread, because
the number of threads changes the float sums, and so the trained bridge: with one, every run on a
machine (the package's, the learner's, the grader's in its sandbox, which has one) adds in the same
order, and another program on the machine cannot stall it (`scale/threads.py`). A run is kept for the
kernel's life, keyed by the parts' code, so that a cell run again, or the checker after it, reuses it.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field

import torch

from .. import bridge, generate, metrics
from ..config import TINY, UserError
from ..features import processor_pixels, spec_features, tower_fingerprint
from ..loading import load_profile
from ..masks import attention_bias, joint_attention_mask, position_ids
from ..model import VisionGPT2
from ..plots import pyplot
from ..prefix import prefix_inputs, tokenize_captions
from ..train import CaptionData, train, warmup_cosine
from ..world import shapes
from ..world.scores import shapes_scores
from . import notebook, parts
from .diagnosis import Watch, compare_number, compare_tensor
from .parts import PARTS

# shortened: the tiny profile's own recipe is 7 epochs over 20,000 scenes at batch 64 (about 2,200 steps)
RECIPE = TINY.train.with_(epochs=1, batch_size=16, warmup_steps=50)
TRAIN_SCENES = 8000  # Shapes World training scenes, one caption each: 500 steps of 16
EVAL = {"test": 100, "compositional": 100}  # scenes captioned and scored per split
SEED = 0  # of the scenes, the bridge's random start and the data order
CHUNK = 512  # images per pass through the vision tower
KEPT_RUNS = 6  # runs kept per kernel


# ------------------------------------------------------------------ the learner's parts


def every_part(mine: dict) -> dict:
    """{name: function} for every part: the learner's where given, the package's elsewhere (for `trace`)."""
    from_package = {"clip_preprocess": None, "cider_d": None}  # no stage: the capstone's own (`_pixels`, `_cider`)
    return {p.name: mine.get(p.name, from_package.get(p.name)) for p in PARTS}


# ------------------------------------------------------------------ the data, the features


@dataclass
class Data:
    scenes: dict  # split -> Shapes World scenes ("train" and the EVAL splits)
    features: dict  # split -> (n, N, Dv) features from the package's image processor


_DATA: dict[str, Data] = {}


@contextlib.contextmanager
def one_thread():
    """torch in one CPU thread inside, as it was outside afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def data(frozen) -> Data:
    """The capstone's scenes and the package's features of them, computed once per kernel."""
    key = tower_fingerprint(frozen.vision)
    with one_thread():
        return _data(frozen, key)


def _data(frozen, key: str) -> Data:
    if key not in _DATA:
        scenes = {"train": shapes.generate("train", TRAIN_SCENES, seed=SEED)}
        scenes |= {split: shapes.generate(split, n, seed=SEED) for split, n in EVAL.items()}
        to_pixels = processor_pixels(frozen.image_processor)
        feats = {split: _features(frozen, s, to_pixels) for split, s in scenes.items()}
        _DATA[key] = Data(scenes, feats)
    return _DATA[key]


def _features(frozen, scenes, to_pixels) -> torch.Tensor:
    size = frozen.profile.model.image_size
    out = []
    for start in range(0, len(scenes), CHUNK):
        images = [s.render(size) for s in scenes[start : start + CHUNK]]
        with torch.no_grad():
            out.append(spec_features(frozen.vision, to_pixels(images), frozen.profile.model))
    return torch.cat(out)


def _learners_features(frozen, base: Data, preprocess, watch: Watch) -> dict:
    """Features from the learner's clip_preprocess: its pixels held against the processor's, chunk by chunk;
    where they are the processor's to the bit, the package's features are theirs too."""
    processor, size = frozen.image_processor, frozen.profile.model.image_size
    settings = (processor.size["shortest_edge"], processor.crop_size["height"], processor.image_mean,
                processor.image_std)  # fmt: skip
    to_pixels, out = processor_pixels(processor), {}
    for split, scenes in base.scenes.items():
        watch.phase = f"preprocessing the {split} images"
        chunks = []
        for start in range(0, len(scenes), CHUNK):
            images = [s.render(size) for s in scenes[start : start + CHUNK]]
            mine = []
            for image in images:
                try:
                    mine.append(preprocess(image, *settings))
                except Exception as err:
                    watch.raised("clip_preprocess", err)
                    raise
            theirs = to_pixels(images)
            if not all(torch.is_tensor(m) and m.shape == theirs.shape[1:] for m in mine):
                bad = next(m for m in mine if not torch.is_tensor(m) or m.shape != theirs.shape[1:])
                watch.compare("clip_preprocess", compare_tensor(bad, theirs[0], "the pixels of an image"))
                raise ValueError("clip_preprocess: the pixels do not fit the vision tower")
            mine = torch.stack(mine)
            outcome = compare_tensor(mine, theirs, f"the pixels of {split} images {start}..{start + len(images) - 1}")
            watch.compare("clip_preprocess", outcome)
            if outcome is None:
                chunks.append(base.features[split][start : start + len(images)])
            else:
                with torch.no_grad():
                    chunks.append(spec_features(frozen.vision, mine.float(), frozen.profile.model))
        out[split] = torch.cat(chunks)
    return out


# ------------------------------------------------------------------ one captioner, trained and scored


@dataclass
class Run:
    """One captioner trained on the capstone's recipe and scored."""

    label: str  # "yours" or "the package's"
    parts: dict  # the learner's parts it ran ({} for the package's)
    model: VisionGPT2 | None = None
    losses: list = field(default_factory=list)  # per optimizer step
    rows: dict = field(default_factory=dict)  # split -> caption token ids, one list per scene
    captions: dict = field(default_factory=dict)  # split -> caption texts
    scores: dict = field(default_factory=dict)  # split -> {"exact_match", "CIDEr-D"}
    seconds: float = 0.0
    failed: str | None = None  # where and why it stopped, if it did
    watch: Watch | None = None
    uses: int = 0  # times it was handed out: more than 1, it was kept from earlier in this kernel

    @property
    def exact_match(self) -> float | None:
        return self.scores.get("test", {}).get("exact_match")

    def weights(self) -> dict:
        """The trained bridge under one set of names for either kind of LoRA: projector + peft's adapter names."""
        if self.model is None:
            return {}
        state = {f"projector.{k}": v.detach() for k, v in self.model.projector.state_dict().items()}
        return state | bridge.adapter_state(self.model)


_RUNS: OrderedDict = OrderedDict()


def _identity(fn):
    """What a part's result depends on, as a key: its code and the objects its names refer to."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return ("object", id(fn))
    names = tuple((n, id(fn.__globals__[n])) for n in code.co_names if n in fn.__globals__)
    cells = tuple(id(c.cell_contents) for c in fn.__closure__ or ())
    return (code, repr(fn.__defaults__), names, cells)


def package_run(frozen, progress: bool = False) -> Run:
    """The package's own captioner on the capstone's recipe, trained once per kernel."""
    return _cached(frozen, {}, progress)


def learners_run(frozen, mine: dict, progress: bool = False) -> Run:
    """A captioner made of the learner's parts (the package's where `mine` has none), each part watched."""
    unknown = set(mine) - set(parts.BY_NAME)
    if unknown:
        raise UserError(f"not parts of the captioner: {', '.join(sorted(unknown))}; the parts are "
                        f"{', '.join(parts.BY_NAME)}")  # fmt: skip
    return _cached(frozen, dict(mine), progress)


def _cached(frozen, mine: dict, progress: bool) -> Run:
    if frozen.profile.name != "tiny":
        raise UserError(f"the capstone trains the tiny profile, not {frozen.profile.name}: load_profile('tiny')")
    key = (tower_fingerprint(frozen.vision), tuple((n, _identity(f)) for n, f in sorted(mine.items())))
    if key not in _RUNS:
        with one_thread():
            _RUNS[key] = _train_and_score(frozen, mine, progress)
        while len(_RUNS) > KEPT_RUNS:
            _RUNS.popitem(last=False)
    _RUNS.move_to_end(key)
    _RUNS[key].uses += 1
    return _RUNS[key]


def _train_and_score(frozen, mine: dict, progress: bool) -> Run:
    base, start_time = data(frozen), time.perf_counter()
    run = Run("yours" if mine else "the package's", mine)
    watch = run.watch = Watch(frozen.profile.model.visual_tokens, frozen.tokenizer.decode) if mine else None
    try:
        feats = _learners_features(frozen, base, mine["clip_preprocess"], watch) if "clip_preprocess" in mine \
            else base.features  # fmt: skip
        run.model = model = _build(frozen, mine, watch)
        if watch:
            watch.phase = "calibrating the projector"
        model.calibrate_projector(feats["train"][:256])
        pairs = [(f"s{i}", s.caption) for i, s in enumerate(base.scenes["train"])]
        train_feats = feats["train"]
        source = CaptionData(pairs, lambda ids: train_feats[[int(i[1:]) for i in ids]])
        history = train(model, source, RECIPE, device="cpu", progress=progress, checkpoint_every=None)
        run.losses = history["step_loss"]
        for split in EVAL:
            if watch:
                watch.phase = f"captioning the {split} scenes"
            run.rows[split] = _caption(model, feats[split])
            run.captions[split] = generate.decode(model, run.rows[split])
            run.scores[split] = {"exact_match": shapes_scores(run.captions[split], base.scenes[split])["exact_match"],
                                 "CIDEr-D": _cider(run, split, base, mine, watch)}  # fmt: skip
    except Exception as err:  # noqa: BLE001 (the learner's parts may fail any way: said, the notebook goes on)
        said = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
        run.failed = f"{watch.where() if watch else 'while training'}: {type(err).__name__}: {said}"
    run.seconds = time.perf_counter() - start_time
    return run


def _build(frozen, mine: dict, watch: Watch | None) -> VisionGPT2:
    """The captioner with the learner's stages (watched), started from the package's own random start."""
    start = VisionGPT2.from_parts(frozen, random_seed=SEED)
    if not mine:
        return start
    stages = {p.stage: watch.wrap(p.name, mine[p.name]) for p in PARTS if p.stage and p.name in mine}
    stages.setdefault("schedule", watch.step_counter(warmup_cosine))  # the watch learns the step from it
    model = VisionGPT2.from_parts(frozen, stages=stages, random_seed=SEED)
    if model.hand_lora is not None:
        watch.watch_lora(model.hand_lora)
        watch.check_trainable(model, start.parameter_report()["trainable"])
    with torch.no_grad():
        model.projector.load_state_dict(start.projector.state_dict())
        theirs = bridge.adapter_state(start)
        for key, tensor in bridge.adapter_state(model).items():
            if key not in theirs or tensor.shape != theirs[key].shape:
                watch.compare("lora_conv1d", compare_tensor(tensor, theirs.get(key, torch.empty(0)), key))
                raise ValueError(f"lora_conv1d: {key} does not fit the package's LoRA weights")
            tensor.copy_(theirs[key])
    return model


def _caption(model, feats: torch.Tensor) -> list[list[int]]:
    """Greedy captions' token ids, through the model's decode stage (the learner's loop, where written)."""
    model.eval()
    rows = []
    for start in range(0, feats.shape[0], 64):
        with torch.no_grad():
            prefix = model.visual_prefix(features=feats[start : start + 64])
        rows += generate.decode_greedy(model, prefix)
    return rows


def _cider(run: Run, split: str, base: Data, mine: dict, watch: Watch | None) -> float:
    """CIDEr-D of the run's captions: by the learner's cider_d where written (held against vgpt's), else vgpt's."""
    references = [[s.caption] for s in base.scenes[split]]
    theirs = metrics.cider_d(run.captions[split], references)
    if "cider_d" not in mine:
        return theirs
    words = [metrics.tokenize(c) for c in run.captions[split]]
    try:
        got = mine["cider_d"](words, [[metrics.tokenize(r) for r in refs] for refs in references])
    except Exception as err:
        watch.raised("cider_d", err)
        raise
    watch.compare("cider_d", compare_number(got, theirs, f"the CIDEr-D of the {split} captions", rel=1e-6))
    number = isinstance(got, (int, float)) and not isinstance(got, bool) or torch.is_tensor(got) and got.numel() == 1
    return float(got) if number else float("nan")


# ------------------------------------------------------------------ one batch, shapes printed


def trace(frozen, mine: dict, n: int = 4) -> None:
    """One batch of `n` training scenes through every stage (the learner's part where `mine` has one, the
    package's elsewhere): what each gives, and its shape."""
    use, base, spec, processor = every_part(mine), data(frozen), frozen.profile.model, frozen.image_processor
    scenes = base.scenes["train"][:n]
    images = [s.render(spec.image_size) for s in scenes]
    if use["clip_preprocess"]:
        settings = (processor.size["shortest_edge"], processor.crop_size["height"], processor.image_mean,
                    processor.image_std)  # fmt: skip
        pixels = torch.stack([use["clip_preprocess"](image, *settings) for image in images])
    else:
        pixels = processor_pixels(processor)(images)
    stages = {p.stage: use[p.name] for p in PARTS if p.stage and use[p.name]}
    model = VisionGPT2.from_parts(frozen, stages=stages, random_seed=SEED)
    ids, mask = tokenize_captions(frozen.tokenizer, [s.caption for s in scenes], spec.max_caption_tokens)
    with torch.no_grad():
        feats = model.features(pixels)
        prefix = model.visual_prefix(features=feats)
        embeds, labels = stages.get("prefix_inputs", prefix_inputs)(prefix, ids, mask, model.lm.get_input_embeddings())
        joint = joint_attention_mask(mask, prefix.shape[1])
        bias = stages.get("attention_bias", attention_bias)(joint)
        positions = stages.get("position_ids", position_ids)(joint)
        logits = model(ids, mask, features=feats, with_loss=False).logits
    a, b = next((m.lora_A, m.lora_B) for m in model.hand_lora.values()) if model.hand_lora else _peft_ab(model)
    rows = [
        ("clip_preprocess", "pixels", (pixels,)),
        ("(vision tower)", "features, frozen", (feats,)),
        ("mlp_projector", "the visual prefix", (prefix,)),
        ("prefix_inputs", "inputs_embeds, labels", (embeds, labels)),
        ("attention_bias", "the joint attention bias", (bias,)),
        ("position_ids", "position ids", (positions,)),
        ("lora_conv1d", "A and B of the first adapted layer", (a, b)),
        ("(GPT-2 + LoRA)", "logits", (logits,)),
    ]
    print(f"one batch: {n} training scenes, captions of at most {ids.shape[1]} tokens after {prefix.shape[1]} "
          f"visual tokens")  # fmt: skip
    for part, what, values in rows:
        print(f"  {part:<16} {what:<36} " + " and ".join(str(tuple(v.shape)) for v in values))


def _peft_ab(model) -> tuple[torch.Tensor, torch.Tensor]:
    named = dict(model.lm.named_parameters())
    a = next(n for n in named if "lora_A" in n)
    return named[a], named[a.replace("lora_A", "lora_B")]


# ------------------------------------------------------------------ the two, side by side


@dataclass
class Comparison:
    """The learner's captioner beside the package's, on the same recipe, seed and scenes."""

    mine: Run
    package: Run
    frozen: object  # the frozen models both ran on (`loading.load_profile("tiny")`)

    @property
    def identical(self) -> bool:
        """The same to the last bit: trained bridges, step losses and captions."""
        return all(self.bits().values())

    def bits(self) -> dict[str, bool]:
        """What is equal to the last bit, item by item."""
        a, b = self.mine.weights(), self.package.weights()
        return {
            "the trained bridges, tensor by tensor": bool(a) and a.keys() == b.keys()
            and all(torch.equal(a[k], b[k]) for k in a),
            f"the {len(self.package.losses)} step losses": self.mine.losses == self.package.losses,
            f"the {sum(map(len, self.package.rows.values()))} captions' token ids": self.mine.rows == self.package.rows,
        }  # fmt: skip

    def table(self) -> None:
        """Yours and the package's, side by side: exact match and CIDEr-D per split, the loss at the end."""
        runs = (self.mine, self.package)
        print(f"{'':<30}{'yours':>10}{'package':>10}")
        for split, n in EVAL.items():
            cells = ["stopped" if r.failed else f"{r.scores[split]['exact_match']:.1%}" for r in runs]
            print(f"{'exact match, ' + split:<30}{cells[0]:>10}{cells[1]:>10}   of {n} scenes")
        for split in EVAL:
            cells = ["stopped" if r.failed else f"{r.scores[split]['CIDEr-D']:.3f}" for r in runs]
            whose = "yours by your cider_d" if "cider_d" in self.mine.parts else "both by vgpt's cider_d"
            print(f"{'CIDEr-D, ' + split:<30}{cells[0]:>10}{cells[1]:>10}   {whose}")
        cells = [f"{sum(r.losses[-50:]) / len(r.losses[-50:]):.3f}" if r.losses else "-" for r in runs]
        floor = notebook.blind_floor(self.frozen)
        print(f"{'loss, mean of the last 50':<30}{cells[0]:>10}{cells[1]:>10}   nats/token; blind floor {floor:.3f}")
        cells = [f"{r.seconds:.0f} s" for r in runs]
        print(f"{'training and scoring':<30}{cells[0]:>10}{cells[1]:>10}   {len(self.package.losses)} steps each")

    def loss_curves(self, title: str | None = None, smooth: int = 20):
        """Both runs' training loss, a `smooth`-step running mean each, with the blind floor (notebook 00)."""
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(7.5, 3.4))
        styles = ((self.package, dict(color="tab:gray", lw=4, alpha=0.45)), (self.mine, dict(color="tab:blue", lw=1.3)))
        for run, style in styles:
            losses = run.losses
            if len(losses) >= smooth:
                mean = [sum(losses[i - smooth : i]) / smooth for i in range(smooth, len(losses) + 1)]
                ax.plot(range(smooth, len(losses) + 1), mean, label=f"{run.label}", **style)
        floor = notebook.blind_floor(self.frozen)
        ax.axhline(floor, color="black", ls="--", lw=1, label=f"blind floor (no image): {floor:.3f}")
        ax.set(xlabel="optimizer step", ylabel=f"loss, {smooth}-step mean (nats/token)", title=title)
        ax.legend()
        fig.tight_layout()
        return fig

    def diagnosis(self) -> list[str]:
        """Each part of the learner's against its stage, then the verdict, in words; printed and returned."""
        lines, watch = [], self.mine.watch
        width = max(len(p.name) for p in PARTS)
        for part in PARTS:
            if part.name not in self.mine.parts:
                lines.append(f"{part.name:<{width}}  the package's (not yours): nothing to compare")
            else:
                lines.append(f"{part.name:<{width}}  " + watch.record(part.name).summary())
        lines.append(self.verdict())
        for line in lines:
            print(line)
        return lines

    def verdict(self) -> str:
        """Which part broke the captioner, in one paragraph."""
        mine, theirs = self.mine, self.package
        if not mine.parts:
            return (
                "None of the parts is yours yet: both captioners are the package's (the table of your parts says why)."
            )
        wrong = mine.watch.wrong() if mine.watch else []
        if mine.failed:
            first = f" {wrong[0]} is the first part that went wrong: {_said(mine, wrong[0])}." if wrong else (
                " No part differed from its stage before it stopped: the parts do not fit together there.")  # fmt: skip
            return f"Your captioner stopped {mine.failed}.{first}"
        ours, yours = theirs.exact_match, mine.exact_match
        if not wrong:
            if self.identical:
                return ("Every part computed what its stage computes, to the last bit, at every call compared: "
                        "your captioner is the package's.")  # fmt: skip
            return (f"Every part agrees with its stage up to float rounding; over {len(mine.losses)} steps the "
                    f"roundings add up, so the two bridges differ a little: exact match {yours:.1%} against "
                    f"{ours:.1%}.")  # fmt: skip
        if len(wrong) == 1:
            name = wrong[0]
            if ours - yours >= 0.05:
                return (f"{name} broke the captioner: it is the only part that differs from its stage "
                        f"({_said(mine, name)}), and with it exact match on the test scenes fell from {ours:.1%} "
                        f"to {yours:.1%}.")  # fmt: skip
            return (f"{name} differs from its stage ({_said(mine, name)}), yet the captioner is about as good: "
                    f"exact match {yours:.1%} against {ours:.1%}. Here the difference costs little.")  # fmt: skip
        return (f"{len(wrong)} parts differ from their stages: {', '.join(wrong)}. Exact match {ours:.1%} -> "
                f"{yours:.1%}. To see which of them broke it, put each alone into the package's captioner: "
                f"capstone.side_by_side(frozen, {{'{wrong[0]}': my_parts['{wrong[0]}']}}).")  # fmt: skip

    def card(self) -> dict:
        """The model card's entries for `save_pretrained`: this run's metrics (CIDEr-D by vgpt's own), the
        recipe, and which parts were the learner's."""
        mine = self.mine
        if mine.failed:
            raise UserError(f"your captioner stopped {mine.failed}: nothing to share")
        theirs = [p.name for p in PARTS if p.name not in mine.parts]
        base = data(self.frozen)
        scores = {split: {"exact_match": mine.scores[split]["exact_match"],
                          "CIDEr-D": metrics.cider_d(mine.captions[split], [[s.caption] for s in base.scenes[split]])}
                  for split in EVAL}  # fmt: skip
        return {
            "title": "my captioner (vgpt, notebook 10)",
            "metrics": scores,
            "recipe": asdict(RECIPE) | {"training_scenes": TRAIN_SCENES, "evaluation_scenes": EVAL},
            "notes": [
                f"Trained with the learner's own parts: {', '.join(mine.parts) or 'none'}"
                + (f"; the package's: {', '.join(theirs)}." if theirs else "."),
                f"The capstone's short recipe ({len(mine.losses)} steps); the tiny profile's own reaches about 96% "
                "exact match on the test scenes.",
                "Loaded again, the bridge runs the package's stages: the weights are the learner's.",
            ],
        }


def _said(run: Run, name: str) -> str:
    rec = run.watch.record(name)
    return rec.raised or rec.differs


def side_by_side(frozen, mine: dict, progress: bool = True) -> Comparison:
    """Train (once per kernel) the package's captioner and one made of the learner's parts, on the same
    recipe and seed; say what each is, and return them side by side."""
    package, yours = package_run(frozen, progress), learners_run(frozen, mine, progress)
    theirs = [p.name for p in PARTS if p.name not in mine]
    for label, run in (("the package's captioner", package), ("your captioner", yours)):
        said = (
            f"stopped {run.failed}"
            if run.failed
            else f"{len(run.losses)} steps, trained and scored in {run.seconds:.0f} s"
        )
        if run is yours and not mine:
            said = "none of the parts is yours: it is the package's captioner"
        elif run is yours:
            said += f"; your {len(mine)} parts" + (f", the package's {', '.join(theirs)}" if theirs else "")
        again = run.uses > 1 and not (run is yours and not mine)
        print(f"{label}: {said}" + (" (kept from earlier in this kernel: the same parts, the same recipe)"
                                    if again else ""))  # fmt: skip
    return Comparison(yours, package, frozen)


# ------------------------------------------------------------------ graded: the project check's call


def graded(mine: dict) -> dict:
    """What the project check needs of the learner's captioner, as data: which parts were the learner's,
    the test captions' token ids (or why it stopped), and the parts that went wrong, in words."""
    run = learners_run(load_profile("tiny", verbose=False), mine)
    wrong = run.watch.wrong() if run.watch else []
    return {
        "parts": sorted(mine),
        "rows": None if run.failed else run.rows["test"],
        "failed": run.failed,
        "wrong": [f"{name}: {_said(run, name)}" for name in wrong],
    }
