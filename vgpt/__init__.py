"""vgpt: implant vision into a frozen, text-only GPT-2, one visible stage at a time.

Modules, in the order the data flows (later ones import earlier ones, never the reverse):

    profiles   the `seed` and `tiny` profiles and the loader of their frozen models
    device     device and mixed-precision choice
    schedule   warmup + cosine learning rate
    files      folders written whole or not at all
    shapes     Shapes World, the generated world of the `tiny` profile
    data       caption data sets (three Flickr8k layouts) and safe image opening
    hf_data    Hugging Face datasets (Hub id, save_to_disk, parquet) as the same records; `vgpt[hf]`
    features   stage 01: frozen vision tower -> feature sequence, cached on disk
    projector  stage 02: features -> GPT-2's embedding space
    prefix     stage 03: visual prefix + caption tokens, labels by position
    masks      stage 04: the joint attention mask, padding and position ids
    tiny       builds and checks the `tiny` profile's pretrained models
    lora       stage 05: LoRA adapters on GPT-2's attention
    model      VisionGPT2, the stages composed; save / load of the bridge
    shared_prefix  one prefix pass per image for all of its captions (training speed)
    train      stage 06: the training loop, checkpoints and resume
    generate   stage 07: greedy (by hand, with KV cache), beam and sampled captions
    metrics    BLEU, ROUGE-L, CIDEr-D (COCO's way); Shapes World exact match and attributes
    viz        the plots (the only module that imports matplotlib)
    runs       train / caption / evaluate / extract on caption data (a folder or a Hugging Face dataset)
    demo       the main job: train and evaluate on Shapes World, write a run folder
    bench      `python -m vgpt bench`: speed of each lever, FLOPs, a GPU memory estimate
    checks     the checkers of the notebooks' exercises
    notebook   what the notebooks share: example images, run folders, the trained bridge
    widget     notebook 08's interactive demo: captions with attention maps, safe uploads
    cli        `python -m vgpt ...`
"""

__version__ = "0.1.0"
