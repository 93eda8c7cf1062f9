"""What a user runs: the command line and the jobs behind it.

cli     `python -m vgpt COMMAND` (every command has --help)
runs    train / caption / evaluate / extract on a caption folder; run folders
demo    the main job: train and evaluate on Shapes World, write a run folder
bench   speed of each lever side by side, FLOPs, a GPU memory estimate
"""
