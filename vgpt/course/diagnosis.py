"""Which part broke the captioner: each of the learner's parts held against its stage on the model's own tensors.

While notebook 10 trains and captions with the learner's parts, each part is wrapped (`Watch.wrap`): the
wrapper calls the learner's function and hands its result to the model as it is, and beside it computes
what the package's stage gives on the very same inputs, then records whether the two agree: to the last
bit, up to float rounding, or not, and then the first call where they did not, in words. The model runs
on the learner's tensors throughout, so every part is judged on the inputs it really met, and a wrong
part is named where it first went wrong, whatever the parts before it did.

Cheap parts are held against their stage at every call. Two cost more: the LoRA layers (the package's
formula, conv(x) + (alpha / r) x A^T B^T with the layer's own A and B, on every adapted layer's input) and
the optimizer step (the package's `train_step` is taken first, then undone: weights, optimizer state and
gradients put back). Those two are compared at the first three steps and every 50th (`due`); the words
say which steps were checked. The comparisons change nothing: the learner's captioner trains exactly as
it would unwatched (the capstone's tests hold the worked solutions to the package, bit for bit, watched).

`clip_preprocess` and `cider_d` are not stages of the model: the capstone compares their results itself
(`Watch.compare`), on every image and every score.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass

import torch

from ..generate import greedy
from ..masks import attention_bias, position_ids
from ..prefix import prefix_inputs
from ..projector import mlp_projector, rms_scale
from ..train import train_step, warmup_cosine
from .exercises.wire import kind
from .parts import BY_NAME

EVERY = 50  # after the first three steps, the costly comparisons run every EVERY-th step
BLOCKED = -1e4  # an attention bias at or below this blocks (exp underflows to 0), as the checker counts it


def due(step: int | None) -> bool:
    """Whether the costly comparisons (LoRA layers, the optimizer step) run at this training step."""
    return step is None or step < 3 or step % EVERY == 0


@dataclass
class Record:
    """What one part did, over every call compared."""

    calls: int = 0  # calls compared with the package's stage
    exact: bool = True  # every one gave the package's bits
    rounding: float = 0.0  # the largest difference within float rounding
    differs: str | None = None  # the first call that disagreed, in words
    raised: str | None = None  # the exception it raised, in words

    @property
    def wrong(self) -> bool:
        return self.differs is not None or self.raised is not None

    def summary(self) -> str:
        if self.raised:
            return self.raised
        if self.differs:
            return f"DIFFERS {self.differs}"
        if not self.calls:
            return "never called"
        calls = "its one call" if self.calls == 1 else f"all {self.calls:,} calls"
        if self.exact:
            return f"the package's result to the last bit, at {calls} compared"
        return f"the package's result up to float rounding (at most {self.rounding:.2g} apart), at {calls} compared"


class Differs(str):
    """A comparison's verdict: the words for how the part's result differs."""


def compare_tensor(got, expected: torch.Tensor, what: str, atol: float = 1e-5, rtol: float = 1e-4):
    """None when `got` is `expected` to the bit, a float (the largest difference) within rounding, else Differs."""
    if not torch.is_tensor(got):
        return Differs(f"{what}: {kind(got)}, where the package's stage gives a tensor {tuple(expected.shape)}")
    if got.shape != expected.shape:
        return Differs(f"{what} of shape {tuple(got.shape)}, where the package's stage gives {tuple(expected.shape)}")
    if got.is_floating_point() != expected.is_floating_point():
        return Differs(f"{what} of dtype {got.dtype}, where the package's stage gives {expected.dtype}")
    if torch.equal(got, expected):
        return None
    g, e = got.detach().double().cpu(), expected.detach().double().cpu()
    same_inf = torch.isinf(g) & torch.isinf(e) & (g.sign() == e.sign())
    gap = torch.where(same_inf, torch.zeros_like(g), (g - e).abs()).nan_to_num(nan=math.inf)
    allowed = atol + rtol * torch.where(torch.isfinite(e), e.abs(), torch.zeros_like(e))
    if bool((gap <= allowed).all()):
        return float(gap.max())
    at = tuple(int(i) for i in torch.unravel_index((gap - allowed).argmax(), gap.shape))
    return Differs(f"{what}: at index {at} {g[at].item():.4g}, where the package's stage gives {e[at].item():.4g}")


def compare_number(got, expected: float, what: str, rel: float = 1e-5, absolute: float = 1e-9):
    if isinstance(got, bool) or not isinstance(got, (int, float)) and not (torch.is_tensor(got) and got.numel() == 1):
        return Differs(f"{what}: {kind(got)}, where the package's stage gives the number {expected:.4g}")
    if float(got) == float(expected):
        return None
    if math.isclose(float(got), expected, rel_tol=rel, abs_tol=absolute):
        return abs(float(got) - expected)
    return Differs(f"{what}: {float(got):.4g}, where the package's stage gives {expected:.4g}")


class Watch:
    """The records of one captioner's parts, and the wrappers that fill them."""

    def __init__(self, n_prefix: int, decode_text=None):
        self.records: dict[str, Record] = {}
        self.n_prefix = n_prefix  # visual tokens: the first slots of every sequence
        self.decode_text = decode_text  # token ids -> text, for the decoding loop's words
        self.step: int | None = None
        self.phase = "building the captioner"
        self.lora_layers: list[tuple] = []  # (the learner's module, the Conv1D it wraps, r, alpha)

    def where(self) -> str:
        return f"at step {self.step}" if self.phase == "training" else f"while {self.phase}"

    def record(self, name: str) -> Record:
        return self.records.setdefault(name, Record())

    def compare(self, name: str, outcome) -> None:
        """Note one call's outcome (None: the package's bits; a float: rounding; Differs: the words)."""
        rec = self.record(name)
        rec.calls += 1
        if isinstance(outcome, Differs):
            rec.exact = False
            if rec.differs is None:
                rec.differs = f"{self.where()}: {outcome}"
        elif outcome is not None:
            rec.exact, rec.rounding = False, max(rec.rounding, float(outcome))

    def raised(self, name: str, err: BaseException) -> None:
        rec = self.record(name)
        if rec.raised is None:
            rec.raised = f"RAISED {type(err).__name__} {self.where()}: {str(err).strip().splitlines()[0][:200]}"

    def wrong(self) -> list[str]:
        """The parts whose results differed from their stage's, or that raised, in pipeline order."""
        return [name for name in BY_NAME if name in self.records and self.records[name].wrong]

    # ------------------------------------------------------------------ wrappers, one per stage

    def wrap(self, name: str, fn):
        """`fn`, the learner's part `name`, wrapped so that each call is compared with the package's stage."""
        compare = getattr(self, f"_{name}")

        @functools.wraps(fn)
        def watched(*args, **kwargs):
            return compare(fn, *args, **kwargs)

        return watched

    def _call(self, name: str, fn, *args):
        try:
            return fn(*args)
        except Exception as err:
            self.raised(name, err)
            raise

    def _rms_scale(self, fn, prefix, table):
        self.phase = "calibrating the projector"
        got = self._call("rms_scale", fn, prefix, table)
        self.compare("rms_scale", compare_number(got, rms_scale(prefix, table), "the scale factor"))
        return got

    def _mlp_projector(self, fn, features, w1, b1, w2, b2):
        got = self._call("mlp_projector", fn, features, w1, b1, w2, b2)
        with torch.no_grad():
            self.compare("mlp_projector", compare_tensor(got, mlp_projector(features, w1, b1, w2, b2), "the prefix"))
        return got

    def _prefix_inputs(self, fn, prefix, ids, text_mask, embedding):
        got = self._call("prefix_inputs", fn, prefix, ids, text_mask, embedding)
        with torch.no_grad():
            want, labels = prefix_inputs(prefix, ids, text_mask, embedding)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            self.compare("prefix_inputs", Differs(f"{kind(got)}, where the stage returns (inputs_embeds, labels)"))
            return got
        outcome = compare_tensor(got[0], want, "inputs_embeds")
        if not isinstance(outcome, Differs):
            label_outcome = self._labels(got[1], labels, text_mask)
            outcome = label_outcome if label_outcome is not None else outcome
        self.compare("prefix_inputs", outcome)
        return got

    def _labels(self, got, expected: torch.Tensor, text_mask: torch.Tensor):
        outcome = compare_tensor(got, expected, "the labels")
        if not isinstance(outcome, Differs) or not torch.is_tensor(got) or got.shape != expected.shape:
            return outcome
        row, slot = (int(i) for i in (got != expected).nonzero()[0])
        n = self.n_prefix
        what = ("a prefix slot: nothing to predict there" if slot < n else
                "padding: nothing to predict there" if not text_mask[row, slot - n] else "a caption token")  # fmt: skip
        return Differs(f"the labels: caption {row}, slot {slot} ({what}) is labelled {int(got[row, slot])}, where the "
                       f"package's stage says {int(expected[row, slot])}")  # fmt: skip

    def _slot(self, i: int) -> str:
        return f"image slot {i}" if i < self.n_prefix else f"caption slot {i - self.n_prefix}"

    def _attention_bias(self, fn, mask):
        got = self._call("attention_bias", fn, mask)
        if torch.is_tensor(got) and got.dim() == 4 and got.shape[1] == 1:
            got = got[:, 0]  # (B, 1, L, L) is the checker's accepted form too; the model adds the heads' axis
        expected = attention_bias(mask)
        if not torch.is_tensor(got) or got.shape != expected.shape or not got.is_floating_point():
            self.compare("attention_bias", compare_tensor(got, expected, "the bias"))
            return got
        seen = got.float().masked_fill(got.float() <= BLOCKED, float("-inf"))
        open_, open_there = torch.isfinite(seen), torch.isfinite(expected)
        if torch.equal(open_, open_there):
            self.compare("attention_bias", compare_tensor(seen, expected, "the bias"))
            return got
        where = (open_ != open_there).nonzero()
        captions = where[where[:, 1] >= self.n_prefix]  # a caption's query first: what decoding depends on
        b, i, j = (int(x) for x in (captions if len(captions) else where)[0])
        if open_[b, i, j]:
            why = (", a later one" + (": in training the caption sees the words it is to predict" if i >= self.n_prefix
                                      else "") if j > i else ", padding" if not mask[b, j] else "")  # fmt: skip
            words = f"{self._slot(i)} may attend to {self._slot(j)}{why}; the package's stage blocks that"
        else:
            words = (f"{self._slot(i)} may not attend to {self._slot(j)}{', itself' if i == j else ''}, "
                     f"which the package's stage allows")  # fmt: skip
        self.compare("attention_bias", Differs(f"in row {b}, {words}"))
        return got

    def _position_ids(self, fn, mask):
        got = self._call("position_ids", fn, mask)
        expected = position_ids(mask)
        if not torch.is_tensor(got) or got.shape != expected.shape or got.is_floating_point():
            self.compare("position_ids", compare_tensor(got, expected, "the position ids"))
            return got
        real = mask.bool()  # on padding any position will do: nothing attends to it
        if torch.equal(got.long()[real], expected[real]):
            self.compare("position_ids", None)
            return got
        row = int((got.long().masked_fill(~real, 0) != expected.masked_fill(~real, 0)).any(-1).nonzero()[0])
        mine, theirs = got[row][real[row]].tolist(), expected[row][real[row]].tolist()
        self.compare("position_ids", Differs(f"row {row}'s real slots get positions {_few(mine)}, where the "
                                             f"package's stage gives {_few(theirs)}"))  # fmt: skip
        return got

    def _lora_conv1d(self, fn, conv, r, alpha):
        self.phase = "building the captioner"
        module = self._call("lora_conv1d", fn, conv, r, alpha)
        self.lora_layers.append((module, conv, r, alpha))
        return module

    def watch_lora(self, layers: dict) -> None:
        """Hold every LoRA layer the learner's `lora_conv1d` made (`model.hand_lora`: path -> module) against the
        package's formula, on the layer's own input, at the steps `due` says."""
        made = {id(module): (conv, r, alpha) for module, conv, r, alpha in self.lora_layers}
        for path, module in layers.items():
            conv, r, alpha = made[id(module)]
            module.register_forward_hook(functools.partial(self._lora_output, path, conv, r, alpha))

    def _lora_output(self, path, conv, r, alpha, module, args, output):
        if self.phase != "training" or not due(self.step) or not args:
            return
        x = args[0]
        with torch.no_grad():
            try:
                want = conv(x) + (x @ module.lora_A.T @ module.lora_B.T) * (alpha / r)
            except Exception as err:  # noqa: BLE001 (the module's own A or B do not fit its input)
                self.compare("lora_conv1d", Differs(f"the layer at {path}: its lora_A, lora_B do not fit its "
                                                    f"input ({type(err).__name__})"))  # fmt: skip
                return
        self.compare("lora_conv1d", compare_tensor(output, want, f"the output of the LoRA layer at {path}"))

    def check_trainable(self, model, expected: int) -> None:
        """What trains with the learner's LoRA layers: only their A and B, as many numbers as the package's."""
        others = [n for n, p in model.lm.named_parameters() if p.requires_grad and not _is_lora(n)]
        frozen_ab = [n for n, p in model.lm.named_parameters() if not p.requires_grad and _is_lora(n)]
        trainable = sum(p.numel() for p in model.trainable_parameters())
        if others:
            count = sum(p.numel() for n, p in model.lm.named_parameters() if n in set(others))
            said = f"GPT-2's own weights train too: {count:,} numbers, in {others[0]} and {len(others) - 1} more"
            self.compare("lora_conv1d", Differs(said + " (the Conv1D inside was not frozen)"))
        elif frozen_ab:
            self.compare("lora_conv1d", Differs(f"{frozen_ab[0]} does not train (requires_grad is False)"))
        elif trainable != expected:
            self.compare("lora_conv1d", Differs(f"{trainable:,} numbers train, where the package's bridge trains "
                                                f"{expected:,}"))  # fmt: skip

    def _warmup_cosine(self, fn, step, total, warmup):
        self.phase, self.step = "training", step
        got = self._call("warmup_cosine", fn, step, total, warmup)
        what = f"the factor at step {step} of {total} (warmup {warmup})"
        self.compare("warmup_cosine", compare_number(got, warmup_cosine(step, total, warmup), what))
        return got

    def step_counter(self, schedule):
        """The package's schedule, wrapped only to tell the watch which step it is (the learner wrote none)."""

        @functools.wraps(schedule)
        def counted(step, total, warmup):
            self.phase, self.step = "training", step
            return schedule(step, total, warmup)

        return counted

    def _train_step(self, fn, opt, loss_fn, factor, clip_norm):
        if not due(self.step):
            return self._call("train_step", fn, opt, loss_fn, factor, clip_norm)
        params = [p for group in opt.param_groups for p in group["params"]]
        weights = [p.detach().clone() for p in params]
        grads = [None if p.grad is None else p.grad.clone() for p in params]
        state = copy.deepcopy(opt.state_dict())
        with torch.random.fork_rng(devices=[]):  # the package's step draws nothing the learner's would not
            want_loss = train_step(opt, loss_fn, factor, clip_norm)
        want = [p.detach().clone() for p in params]
        want_lrs = [group["lr"] for group in opt.param_groups]
        with torch.no_grad():  # undone: the learner's step starts where the package's did
            for p, w, g in zip(params, weights, grads, strict=True):
                p.copy_(w)
                p.grad = g
        opt.load_state_dict(state)
        got = self._call("train_step", fn, opt, loss_fn, factor, clip_norm)
        self.compare("train_step", self._step_outcome(opt, params, got, want_loss, want, want_lrs))
        return got

    def _step_outcome(self, opt, params, got, want_loss, want, want_lrs):
        for group, lr in zip(opt.param_groups, want_lrs, strict=True):
            if not math.isclose(float(group.get("lr", math.nan)), lr, rel_tol=1e-6):
                name, base = group.get("name", "a"), group["base_lr"]
                return Differs(f"the {name} group's learning rate is {group.get('lr')}, where the package's step "
                               f"sets {lr:.4g} (its base_lr {base:g} x the factor)")  # fmt: skip
        worst = None
        for p, w in zip(params, want, strict=True):
            outcome = compare_tensor(p.detach(), w, "the weights after the step")
            if isinstance(outcome, Differs):
                name = next(g.get("name", "a") for g in opt.param_groups if any(q is p for q in g["params"]))
                return Differs(f"after the step the {name} group's weights are not the package's step's ({outcome})")
            worst = outcome if worst is None else max(worst, outcome or 0.0)
        if any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in params):
            return Differs("the gradients are left in place after the step: the next step adds its own to them")
        loss = compare_number(got, want_loss, "the value it returns (the package's step returns the loss)", rel=1e-6)
        return loss if isinstance(loss, Differs) else worst

    def _greedy_with_kv_cache(self, fn, lm, prefix, eos, max_new_tokens):
        got = self._call("greedy_with_kv_cache", fn, lm, prefix, eos, max_new_tokens)
        want = greedy(lm, prefix, eos, max_new_tokens)
        if not isinstance(got, list) or len(got) != len(want) or not all(isinstance(r, list) for r in got):
            self.compare("greedy_with_kv_cache", Differs(f"{kind(got)}, where the package's loop gives {len(want)} "
                                                         f"lists of token ids"))  # fmt: skip
        elif got == want:
            self.compare("greedy_with_kv_cache", None)
        else:
            row = next(i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b)
            said = (lambda ids: repr(self.decode_text(ids))) if self.decode_text else _few  # noqa: E731
            self.compare("greedy_with_kv_cache", Differs(f"caption {row} of a batch: {said(got[row])}, where the "
                                                         f"package's loop writes {said(want[row])}"))  # fmt: skip
        return got


def _few(values: list, n: int = 8) -> str:
    return "[" + ", ".join(map(str, values[:n])) + (", ...]" if len(values) > n else "]")


def _is_lora(name: str) -> bool:
    return "lora_A" in name or "lora_B" in name
