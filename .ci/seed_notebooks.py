"""Run every notebook on the `seed` profile without the Hub: a developer's check, not part of CI.

    python .ci/seed_notebooks.py [WORKDIR]      # about 20 minutes on 2 CPU cores, 2 GB of disk

It writes a stand-in Hugging Face cache into WORKDIR (default /tmp/vgpt-seed):
the seed's architectures with random weights (CLIP ViT-L/14 vision tower,
GPT-2 124M) under their Hub names, GPT-2's real BPE tokenizer (built from the
published vocabulary in tests/fixtures/gpt2-bpe/), and a miniature Flickr8k
in the original layout (24 Shapes World images, five captions each). Then it
executes each notebook with VGPT_PROFILE=seed into WORKDIR/notebooks/ and
prints its time and whether it ran to the end. The captions are nonsense
(random weights, made to end after 8 tokens as a real GPT-2's would end);
what it checks is that every seed code path runs: 257-token prefixes,
768-wide embeddings, GPT-2's tokens, grouped captions cut at end-of-text, the
shared prefix in training, beam search, the widget.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


CAPTION_TOKENS = 8  # where the stand-in GPT-2 ends a caption: after this many tokens


def ends_its_sentences(lm, after_position: int, eos: int = 50256) -> None:
    """Make a GPT-2 of random weights say end-of-text at every position from `after_position` on, as a
    trained one ends its sentences (random weights never would: every caption would run to the length
    limit, which real captions do not, and the end-of-text paths would go untried). One direction u is
    added, large, to the position embeddings from there on, so the last hidden state points along u;
    end-of-text's (tied) embedding is a small multiple of u, so its logit wins there and, anywhere
    else, stays below the largest of the 50,257 random ones."""
    import torch

    u = torch.randn(lm.config.n_embd, generator=torch.Generator().manual_seed(0))
    u = (u - u.mean()) / (u - u.mean()).norm()  # centred: the final LayerNorm keeps it
    with torch.no_grad():
        lm.transformer.wpe.weight[after_position:] += 100 * u
        lm.transformer.wte.weight[eos] = 0.4 * u


def stand_in_hub(hub: Path) -> None:
    from transformers import CLIPImageProcessor

    from vgpt.config import SEED
    from vgpt.scale.standins import gpt2_tokenizer, seed_architectures

    vision, lm = seed_architectures()
    ends_its_sentences(lm, SEED.model.visual_tokens + CAPTION_TOKENS)
    for repo, model in ((SEED.model.vision_model, vision), (SEED.model.language_model, lm)):
        root = hub / ("models--" + repo.replace("/", "--"))
        snapshot = root / "snapshots" / ("0" * 40)
        snapshot.mkdir(parents=True, exist_ok=True)
        (root / "refs").mkdir(exist_ok=True)
        (root / "refs" / "main").write_text("0" * 40)
        model.save_pretrained(snapshot, safe_serialization=True)
        if model is vision:
            CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}).save_pretrained(
                snapshot
            )
        else:
            gpt2_tokenizer(ROOT / "tests" / "fixtures" / "gpt2-bpe").save_pretrained(snapshot)


def mini_flickr8k(data: Path) -> None:
    from vgpt.world import shapes

    shutil.rmtree(data, ignore_errors=True)
    (data / "Flicker8k_Dataset").mkdir(parents=True)
    (data / "Flickr8k_text").mkdir()
    lines = []
    for i, scene in enumerate(shapes.generate("train", 24, seed=9)):
        scene.render(160).save(data / "Flicker8k_Dataset" / f"{i}.jpg")
        lines += [
            f"{i}.jpg#{k}\t{lead}{scene.caption}"
            for k, lead in enumerate(["", "there is ", "look: ", "we see ", "it shows "])
        ]
    (data / "Flickr8k_text" / "Flickr8k.token.txt").write_text("\n".join(lines) + "\n")
    for name, images in (("train", range(16)), ("dev", range(16, 20)), ("test", range(20, 24))):
        (data / "Flickr8k_text" / f"Flickr_8k.{name}Images.txt").write_text("".join(f"{i}.jpg\n" for i in images))


def main(workdir: str = "/tmp/vgpt-seed") -> int:
    import nbformat
    from nbclient import NotebookClient

    work = Path(workdir)
    os.environ.update(
        HF_HOME=str(work / "hf"),
        HF_HUB_OFFLINE="1",
        VGPT_PROFILE="seed",
        VGPT_DATA=str(work / "flickr8k"),
        TQDM_DISABLE="1",
    )
    stand_in_hub(work / "hf" / "hub")
    mini_flickr8k(work / "flickr8k")
    (work / "notebooks").mkdir(exist_ok=True)
    failed = 0
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        try:
            NotebookClient(
                nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
            ).execute()
            status = "ran to the end"
        except Exception as err:  # report and go on to the next notebook
            failed += 1
            status = f"FAILED: {str(err).strip().splitlines()[-1][:300]}"
        nbformat.write(nb, work / "notebooks" / path.name)
        print(f"{path.stem:<32}{time.perf_counter() - start:7.1f} s  {status}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
