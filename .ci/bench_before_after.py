"""The training step's speed before and after a change of `vgpt/speedups.py`, side by side in one process.

    python .ci/bench_before_after.py [--rev REV] [--repeats 5] [--threads 2] [--profile seed]

`REV`'s `vgpt/speedups.py` (a git revision; default: where this branch left main) is loaded next to
the working tree's, and the training variants of `python -m vgpt bench` run in turn on the same model:
(a) the tower per caption, (b) cached features, (c) cached + shared prefix with REV's forward, (c) with
this tree's. Each is FLOP- and kernel-counted in a warm-up, then timed `--repeats` times, a, b, c, c', a,
...; the table gives medians with the fastest and slowest run. Then the kernels per step of (b), (c) and
(c') at one image and at the batch students train with (8 captions: images with 5 and 3); a count does
not grow with the batch.
"""

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vgpt.bench.speed import HOST, bench_models  # noqa: E402
from vgpt.bench.timing import caption_batch, count_kernels, measure_all  # noqa: E402


def speedups_at(rev: str):
    """`vgpt/speedups.py` as it was at `rev`, as the module `vgpt.speedups_before` (its relative imports
    resolve to this tree's modules, which it was written against)."""
    source = subprocess.run(
        ["git", "show", f"{rev}:vgpt/speedups.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "speedups_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("vgpt.speedups_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def steps(model, before, images: int, captions, pixels=None):
    """The step functions (forward + backward, gradients cleared) of each variant on one batch;
    `captions`: per image (an int for all, or a list)."""
    counts = [captions] * images if isinstance(captions, int) else captions
    ids, mask, _ = caption_batch(len(counts), max(counts), model.spec.vocab_size)
    keep = torch.cat([torch.arange(k) + i * max(counts) for i, k in enumerate(counts)])
    ids, mask = ids[keep], mask[keep]
    owner = torch.arange(len(counts)).repeat_interleave(torch.tensor(counts))
    features = torch.randn(len(counts), model.spec.visual_tokens, model.spec.vision_width)

    def step(forward):
        def run():
            forward().loss.backward()
            model.zero_grad(set_to_none=True)

        return run

    runs = {
        "(b) cached features": step(lambda: model(ids, mask, features=features, owner=owner)),
        f"(c) shared prefix, {before.label}": step(
            lambda: before.shared_prefix_forward(model, ids, mask, owner, features=features)
        ),
        "(c') shared prefix, this tree": step(
            lambda: model(ids, mask, features=features, owner=owner, shared_prefix=True)
        ),
    }
    if pixels is not None:
        original = step(lambda: model(ids, mask, pixel_values=pixels[owner]))
        runs = {"(a) original: tower per caption, fp32": original, **runs}
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", default=None, help="the revision to compare with (default: merge-base with main)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: torch's)")
    parser.add_argument("--profile", default="seed", choices=("seed", "tiny"))
    parser.add_argument("--images", type=int, default=1)
    args = parser.parse_args()
    rev = (
        args.rev
        or subprocess.run(
            ["git", "merge-base", "HEAD", "main"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    before = speedups_at(rev)
    before.label = f"{rev[:7]}"
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, profile = bench_models(args.profile)
    model.train()
    size = profile.model.image_size
    pixels = torch.randn(args.images, 3, size, size, generator=torch.Generator().manual_seed(1))
    print(
        f"torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}), {torch.get_num_threads()} threads, "
        f"profile {profile.name}; before: {rev[:7]}, after: the working tree; load average {os.getloadavg()[0]:.2f}"
    )
    runs = steps(model, before, args.images, 5, pixels)
    timings = measure_all({name: (run, None) for name, run in runs.items()}, args.repeats, host=HOST)
    base = timings[0]
    print(f"\ntraining step, {args.images} image(s) x 5 captions, median of {args.repeats} (min - max), per image:")
    print(
        f"  {'variant':<40}{'s / image':>10}{'(min - max)':>18}{'speed-up':>10}{'GFLOP':>8}{'FLOP ratio':>12}"
        f"{'of ceiling':>12}{'kernels':>9}"
    )
    for t in timings:
        low, high = (x / args.images for x in t.spread)
        speedup, ratio = base.median / t.median, base.flops / t.flops
        print(
            f"  {t.name:<40}{t.median / args.images:>10.3f}{f'({low:.3f} - {high:.3f})':>18}{speedup:>9.2f}x"
            f"{t.flops / args.images / 1e9:>8.1f}{ratio:>11.2f}x{speedup / ratio:>11.0%}{sum(t.kernels.values()):>9}"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print("\nkernels per step (forward + backward; views, allocations and the host's index arithmetic not counted):")
    for label, images, captions in (("5 captions (one image)", 1, 5), ("8 captions (images of 5 and 3)", 2, [5, 3])):
        counted = {name: count_kernels(run, HOST) for name, run in steps(model, before, images, captions).items()}
        row = "   ".join(f"{name.split(',')[0]} {sum(c.kernels.values())}" for name, c in counted.items())
        host = counted["(c') shared prefix, this tree"].host_ops
        print(f"  {label:<32}{row}   (+{host} host ops)")
    print("\nmost frequent kernels of (c) and (c') at 8 captions:")
    counted = {name: count_kernels(run, HOST).kernels for name, run in steps(model, before, 2, [5, 3]).items()}
    names = list(counted)[1:]
    top = sorted(set(counted[names[0]]) | set(counted[names[1]]), key=lambda k: -counted[names[0]][k])[:20]
    for k in top:
        print(f"  {k:<36}{counted[names[0]][k]:>6}{counted[names[1]][k]:>6}")


if __name__ == "__main__":
    main()
