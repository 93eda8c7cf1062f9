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
90% (the package's own loop: 96.7% on these 60 scenes). The capstone (notebook
10) trains the learner's parts together and is judged the same way.
"""

from __future__ import annotations

import contextlib
import io

from ...course.notebook import eval_set, load_trained
from ...features import processor_pixels
from ...generate import decode, generate_captions
from ...loading import load_profile
from ...world.scores import shapes_scores
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
