"""vgpt: implant vision into a frozen, text-only GPT-2, one visible stage at a time.

The core, in reading order (each module imports only modules above it; `tests/test_layout.py` holds it):

    config         every setting of a run: ModelSpec, TrainConfig, Profile; the profiles; UserError
    files          files and folders that appear whole or not at all; paths as a reader sees them
    loading        choose a profile and load its frozen models (or the seed's shapes, offline)
    data           caption data (Flickr8k's Kaggle layout), bad rows counted, images opened safely
    runtime        the device and its precision, the processes of a run, progress bars
    features       stage 01: frozen vision tower -> feature sequence, cached on disk
    projector      stage 02: features -> GPT-2's embedding space
    prefix         stage 03: visual prefix + caption tokens, labels by position
    masks          stage 04: the joint attention mask, padding and position ids
    lora           stage 05: LoRA adapters on GPT-2's attention, with peft or by hand
    speedups       the training forward with less work: a shared prefix per image, a lean head
    bridge         the bridge on disk: save_pretrained, from_pretrained, push_to_hub, model card, checkpoints
    model          VisionGPT2: the stages composed, each one replaceable by a function of its signature
    train          stage 06: the training loop
    generate       stage 07: greedy (by hand, with KV cache), beam and sampled captions
    metrics        stage 08: BLEU, ROUGE-L, CIDEr-D (COCO's way)
    plots          the pictures: loss curves, caption grids, attention over the patches
    __main__       the command line, `python -m vgpt`: the core's commands and the rings'

The rings around it, each importing the core and never imported by it:

    world/         Shapes World, the tiny profile's models built from it, the demo
    scale/         real caption data in every layout, several processes, CPU threads, runs on folders
    course/        what the notebooks use: helpers, the demo widget, experiments, exercises and checkers
    classroom/     release the student version, grade submissions in a sandbox
    bench/         each speed lever measured side by side
    app/           the captioner on a web page (Gradio), and as a Hugging Face Space
"""

__version__ = "0.1.0"
