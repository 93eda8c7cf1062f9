"""vgpt: implant vision into a frozen, text-only GPT-2, one visible stage at a time.

Stages and their modules (later stages import earlier ones, never the reverse):

    profiles  the `seed` and `tiny` profiles and the loader of their frozen models
    shapes    Shapes World, the generated world of the `tiny` profile
    tiny      builds the `tiny` profile's pretrained models
    cli       `python -m vgpt ...`
"""

__version__ = "0.1.0"
