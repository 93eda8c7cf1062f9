"""vgpt: implant vision into a frozen, text-only GPT-2, one visible stage at a time.

The stage modules, in the order the data flows (later ones import earlier ones, never the reverse):

    profiles       every setting of a run, written out once: ModelSpec + TrainConfig per profile
    loading        choose a profile and load its frozen models (or the seed's shapes, offline)
    data           caption data sets (three Flickr8k layouts) and safe image opening
    hf_data        Hugging Face datasets (Hub id, save_to_disk, parquet) as the same records; `vgpt[hf]`
    features       stage 01: frozen vision tower -> feature sequence, cached on disk
    projector      stage 02: features -> GPT-2's embedding space
    prefix         stage 03: visual prefix + caption tokens, labels by position
    masks          stage 04: the joint attention mask, padding and position ids
    lora           stage 05: LoRA adapters on GPT-2's attention
    model          VisionGPT2: the stages composed
    bridge         the bridge (projector + LoRA) on disk: config, save, load, fit checks
    shared_prefix  one prefix pass per image for all of its captions (training speed)
    train          stage 06: the training loop
    checkpoint     atomic checkpoints and resume
    generate       stage 07: greedy (by hand, with KV cache), beam and sampled captions
    metrics        stage 08: BLEU, ROUGE-L, CIDEr-D (COCO's way); Shapes World exact match

Around them:

    device, schedule   device and mixed precision; warmup + cosine
    paths, errors      repository paths and whole-folder writes; UserError
    viz                the plots (the only module that imports matplotlib)
    world/             Shapes World and the build of the tiny profile's models
    app/               the command line, runs on a folder, the demo, the benchmark
    course/            what the notebooks use (examples, exercise checkers, the demo widget)
    classroom/         `python -m vgpt classroom`: release the student version, grade submissions in a sandbox
"""

__version__ = "0.1.0"
