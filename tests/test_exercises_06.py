"""Notebook 06's checkers accept the worked solutions and name the usual wrong answers."""

import math

import pytest
import torch
from notebook_exercises import exercise_solution

import vgpt.train
from vgpt.course.exercises import check_train_step, check_warmup_cosine

STEM = "06_training"


def right(step, total, warmup):
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def test_schedule_checker_accepts_the_worked_solution(capsys):
    assert check_warmup_cosine(exercise_solution(STEM, "warmup_cosine")) is True
    assert "Correct!" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, named",
    [
        (lambda s, t, w: 1.0, "constant"),
        (lambda s, t, w: s / w if s < w else right(s, t, w), "off by one in warmup: step 0 gives 0"),
        (lambda s, t, w: (s + 1) / w if s <= w else right(s, t, w), "off by one in warmup: it runs one step too long"),
        (lambda s, t, w: (s + 1) / w if s < w else math.cos(math.pi * (s - w) / (t - w)), "negative multipliers"),
        (lambda s, t, w: (s + 1) / w if s < w else 1 - (s - w) / (t - w), "a straight line after the warmup"),
        (lambda s, t, w: (s + 1) / w if s < w else 0.5 * (1 + math.cos(math.pi * s / t)), "right after the warmup"),
        (lambda s, t, w: torch.tensor(right(s, t, w)), "return a plain number"),
    ],
    ids=["constant", "zero-at-step-0", "warmup-too-long", "cos-to-minus-1", "linear", "cosine-from-0", "tensor"],
)
def test_schedule_checker_names_the_mistake(wrong, named, capsys):
    assert check_warmup_cosine(wrong) is False
    assert named in capsys.readouterr().out


def test_schedule_checker_refuses_the_package_schedule(capsys):
    assert check_warmup_cosine(vgpt.train.warmup_cosine) is False
    assert "vgpt's own" in capsys.readouterr().out


def params_of(opt):
    return [p for group in opt.param_groups for p in group["params"]]


def step_with(set_lr="base*factor", clip="together", zero=True, as_float=True):
    """A train_step with one deliberate slip."""

    def step(opt, loss_fn, factor, clip_norm):
        for group in opt.param_groups:
            if set_lr == "base*factor":
                group["lr"] = group["base_lr"] * factor
            elif set_lr == "base":
                group["lr"] = group["base_lr"]
            elif set_lr == "first group's":
                group["lr"] = opt.param_groups[0]["base_lr"] * factor
            elif set_lr == "compound":
                group["lr"] *= factor
        loss = loss_fn()
        loss.backward()
        if clip == "together":
            torch.nn.utils.clip_grad_norm_(params_of(opt), clip_norm)
        elif clip == "per group":
            for group in opt.param_groups:
                torch.nn.utils.clip_grad_norm_(group["params"], clip_norm)
        opt.step()
        if zero:
            opt.zero_grad()
        return loss.item() if as_float else loss

    return step


def test_step_checker_accepts_the_worked_solution_and_a_right_variant(capsys):
    assert check_train_step(exercise_solution(STEM, "train_step")) is True
    assert check_train_step(step_with()) is True
    assert capsys.readouterr().out.count("Correct!") == 2


@pytest.mark.parametrize(
    "wrong, named",
    [
        (step_with(clip="none"), "the gradients were not clipped"),
        (step_with(clip="per group"), "each group was clipped on its own"),
        (step_with(set_lr="base"), "base rate without the schedule's factor"),
        (step_with(set_lr="first group's"), "both groups stepped with the same rate"),
        (step_with(set_lr="compound"), "the rates compound"),
        (step_with(zero=False), "gradients were left behind"),
        (step_with(as_float=False), "return the loss as a float"),
    ],
    ids=["no-clip", "clip-per-group", "no-factor", "one-rate", "compounding", "no-zero-grad", "tensor-loss"],
)
def test_step_checker_names_the_mistake(wrong, named, capsys):
    assert check_train_step(wrong) is False
    assert named in capsys.readouterr().out


def test_step_checker_refuses_the_package_step(capsys):
    assert check_train_step(vgpt.train.train_step) is False
    assert "vgpt's own" in capsys.readouterr().out
