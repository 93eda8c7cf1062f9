"""The classroom: the student version of the notebooks, and grading what comes back.

commands   `python -m vgpt classroom release | grade`
"""
