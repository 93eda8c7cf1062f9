"""Benchmarks: each speed lever measured side by side with what it replaces, in one run.

speed       `python -m vgpt bench`: training per image (tower per caption, cached, shared prefix),
            generation (batched, KV cache), a GPU memory estimate
timing      the harness: timed runs after a FLOP-counted warm-up; random caption batches
extraction  feature extraction speed; measured GPU memory
threads     `bench --under-load`: CPU threads alone and beside a busy process
demo        `bench --demo`: the demo's fast recipe beside the tiny profile's own
commands    the `bench` command's parser
"""
