"""Shapes World and the `tiny` profile's two pretrained "alien" models, built from it.

shapes     the generated world: scenes, rendering, one caption each, splits
loop       the one training loop the build uses
language   the tokenizer and the tiny GPT-2 (captions only, never an image)
vision     the tiny CLIP (contrastive, hard negatives); its vision tower is kept
probes     linear probes: every caption attribute, read out of the tower's features
build      `python -m vgpt build-tiny [--fast | --check]`: build, gate, write data/tiny/
"""
