"""The recipe at scale: real caption data in every layout, several processes, the CPU's threads.

flickr8k     the original release's layout and Karpathy's split file, beside data.py's Kaggle one
coco         COCO captions in Karpathy's split
hf_data      Hugging Face datasets (a Hub id, save_to_disk, parquet); the optional extra `vgpt[hf]`
sources      any of those, or a folder, as `data.Captions`
distributed  `Torchrun`: several processes of one run (DistributedDataParallel)
threads      how many CPU threads torch uses: the cores other programs leave free
runs         train / extract / caption / evaluate on caption data; run folders
commands     `python -m vgpt train | extract | caption | evaluate`
"""
