"""Project checks: the learner's part run inside the package's own captioner, judged by what it achieves.

A project check is a `Checker` of view "package": the grader's sandbox for it
holds the whole package and the tiny profile's models (read-only), gives it
`seconds` rather than the exercises' time, and the case's call builds the
captioner there with the learner's part in it; what comes back is data (token
ids), scored here against references of the grader's own. It `requires` the
part's own exercise first, graded where the package is absent: in the
package's sandbox the stages are importable, so a part that merely calls
them would pass the project, never its exercise.

A capstone's cell defines all of the learner's parts; its project check
`requires` each part's checker, and the grader checks each on the function of
that checker's name, from the same cell, before the project runs.

`check_captioner_with_my_greedy` is the first: notebook 07's greedy loop
decoding the shipped tiny captioner's test scenes, passed at an exact match of
90% (the package's own loop: 96.7% on these 60 scenes).

`check_my_captioner` is the capstone's (notebook 10): the learner's parts
(`course.parts.PARTS`) trained together into a captioner on the capstone's
recipe, passed at an exact match of 20% on its 100 test scenes: below the
package's own parts on that recipe on any seed and kernel path measured (33% to
61%: seeds 0-2 on the native and default kernel paths of one CPU, and four seeds
on another), far above a captioner with one broken part (3% for notebook 04's
slip: 3% and 9% on two machines). The grader
takes each of the eleven parts from the learner's own notebook of it (or from
notebook 10, where a cell there defines it), and each must pass its own
exercise first; in the notebook, a part not found is the package's, and the
verdict says so.
"""

from __future__ import annotations

import contextlib
import io

from ...course import capstone
from ...course.notebook import eval_set, load_trained
from ...course.parts import PARTS
from ...features import processor_pixels
from ...generate import decode, generate_captions
from ...loading import load_profile
from ...world.scores import shapes_scores
from . import evaluation, feature_extraction, joint_attention_mask, lora_injection, prefix_concatenation, training
from . import projector as projector_exercises
from .generation import check_greedy_with_kv_cache
from .grading import Case, Checker, Wrong
from .wire import kind

EXACT_MATCH = 0.9  # of captions equal to the scene's own, on the test scenes below
SCENES, SEED = 60, 0


def _captioner_cases() -> list[Case]:
    with contextlib.redirect_stdout(io.StringIO()):  # load_trained says which bridge: not the grader's business
        parts = load_profile("tiny", verbose=False)
        model = load_trained(parts, mine=False)
    images, _, scenes = eval_set(parts.profile, "test", SCENES, SEED)
    own, _ = generate_captions(model, pixel_values=processor_pixels(parts.image_processor)(images))
    own_score = shapes_scores(own, scenes)["exact_match"]
    max_new_tokens = model.spec.max_caption_tokens

    def judge(got):
        if not isinstance(got, list) or len(got) != SCENES or not all(isinstance(r, list) for r in got):
            raise Wrong(f"expected {SCENES} lists of token ids, one per scene, got {kind(got)}")
        if not all(isinstance(t, int) and not isinstance(t, bool) for row in got for t in row):
            raise Wrong("the token ids must be integers")
        texts = decode(model, got)
        score = shapes_scores(texts, scenes)["exact_match"]
        if score < EXACT_MATCH:
            first = next(i for i, (t, s) in enumerate(zip(texts, scenes, strict=True)) if t != s.caption)
            raise Wrong(f"exact match {score:.1%} on {SCENES} test scenes, below {EXACT_MATCH:.0%} (the package's own "
                        f"loop: {own_score:.1%}); scene {first}: got {texts[first]!r}, "
                        f"expected {scenes[first].caption!r}")  # fmt: skip
        return f"exact match {score:.1%} on {SCENES} test scenes (the package's own loop: {own_score:.1%})"

    args = ("test", SCENES, SEED, max_new_tokens)
    return [Case(f"the shipped tiny captioner on {SCENES} test scenes", args, judge, call="captioner")]


check_captioner_with_my_greedy = Checker(
    "greedy_with_kv_cache",
    _captioner_cases,
    """`fn(lm, prefix, eos, max_new_tokens) -> list[list[int]]` (notebook 07's exercise) decoding the
    shipped tiny captioner: at least 90% of its captions of 60 test scenes equal the scenes' own.""",
    view="package",
    seconds=300,
    requires=(check_greedy_with_kv_cache,),
)


# ------------------------------------------------------------------ the capstone: your captioner

CAPSTONE_EXACT_MATCH = 0.2  # of the capstone's 100 test captions equal to the scenes' own


def _my_captioner_cases() -> list[Case]:
    with contextlib.redirect_stdout(io.StringIO()):
        frozen = load_profile("tiny", verbose=False)
    package = capstone.package_run(frozen)  # trained once per process: the figure beside the learner's
    scenes = capstone.data(frozen).scenes["test"]
    names = [p.name for p in PARTS]

    def judge(got):
        if not isinstance(got, dict) or not isinstance(got.get("parts"), list):
            raise Wrong(f"expected what the capstone's run reports, a dict, got {kind(got)}")
        missing = [n for n in names if n not in got["parts"]]
        stood_in = (f"; the package's stood in for {', '.join(missing)}, not found here (the grader takes every "
                    f"part from your notebooks of it)" if missing else "")  # fmt: skip
        wrong = "; ".join(str(w) for w in got.get("wrong") or [])[:600]
        went = f". Went wrong: {wrong}" if wrong else ""
        if got.get("failed"):
            raise Wrong(f"your captioner stopped {str(got['failed'])[:300]}{went}{stood_in}")
        rows = got.get("rows")
        if not isinstance(rows, list) or len(rows) != len(scenes) or not all(isinstance(r, list) for r in rows):
            raise Wrong(f"expected {len(scenes)} lists of token ids, one per test scene, got {kind(rows)}")
        if not all(isinstance(t, int) and not isinstance(t, bool) for row in rows for t in row):
            raise Wrong("the token ids must be integers")
        score = shapes_scores(decode(package.model, rows), scenes)["exact_match"]
        said = f"exact match {score:.1%} on {len(scenes)} test scenes (the package's own parts: "
        said += f"{package.exact_match:.1%})"
        if score < CAPSTONE_EXACT_MATCH:
            raise Wrong(f"{said}, below {CAPSTONE_EXACT_MATCH:.0%}{went}{stood_in}")
        return said + stood_in

    return [Case(f"your {len(names)} parts trained into a captioner", (), judge, call="capstone")]


check_my_captioner = Checker(
    "my_parts",
    _my_captioner_cases,
    """`my_parts`, {name: function} of the eleven parts (`vgpt.course.parts.PARTS`; the package's for any not
    given), trained together into a captioner on the capstone's recipe: at least 20% of its captions of the
    100 test scenes equal the scenes' own.""",
    view="package",
    seconds=600,
    requires=(
        feature_extraction.check_clip_preprocess,
        projector_exercises.check_rms_scale,
        projector_exercises.check_mlp_projector,
        prefix_concatenation.check_prefix_inputs,
        joint_attention_mask.check_attention_bias,
        joint_attention_mask.check_position_ids,
        lora_injection.check_lora_conv1d,
        training.check_warmup_cosine,
        training.check_train_step,
        check_greedy_with_kv_cache,
        evaluation.check_cider_d,
    ),
    parts={p.name: p.notebook for p in PARTS},
)
