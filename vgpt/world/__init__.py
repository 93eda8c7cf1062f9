"""Shapes World, the `tiny` profile's two pretrained "alien" models built from it, and the demo.

shapes     the generated world: scenes, rendering, one caption each, splits
scores     exact match and accuracy per attribute, read back from a caption
loop       the one training loop the build uses
language   the tokenizer and the tiny GPT-2 (captions only, never an image)
vision     the tiny CLIP (contrastive, hard negatives); its vision tower is kept
probes     linear probes: every caption attribute, read out of the tower's features
build      `python -m vgpt build-tiny [--fast | --check]`: build, gate, write data/tiny/
demo       `python -m vgpt demo`: the main job, a captioner trained and scored on Shapes World
commands   those two commands' parsers
"""
