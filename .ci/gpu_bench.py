"""The benchmark on a GPU under both 16-bit formats: `python .ci/gpu_bench.py OUT_DIR`.

Runs `python -m vgpt bench`'s measurements on the seed architectures (random
weights, no download) twice, once with bf16 autocast and once with fp16 and a
gradient scaler (what a T4 gets), and writes each run's figures as JSON.
bf16 is what `device.autocast_dtype` picks on Ampere and newer; forcing fp16 on
such a card shows the T4's code path, not a T4's speed.
"""

import json
import sys
from pathlib import Path

import torch

import vgpt.bench.extraction as bench_more
import vgpt.bench.speed as bench
import vgpt.features as features


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, capability {torch.cuda.get_device_capability()}")
    for name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        for module in (bench, bench_more, features):
            module.autocast_dtype = lambda device, dtype=dtype: dtype if device.type == "cuda" else None
        print(f"\n===== {name} =====", flush=True)
        figures = bench.run_bench("seed", images=1, gen_images=8, repeats=5, device="cuda", extract_images=256)
        (out / f"bench_{name}.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "gpu-bench"))
