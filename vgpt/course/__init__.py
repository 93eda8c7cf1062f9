"""What the notebooks use that is not a stage, and the tools to teach with them.

notebook        example images, where runs go, the trained bridge
exercises       the checkers of the notebooks' exercises (one module per notebook)
widget          notebook 08's interactive demo: captions with attention maps, safe uploads
classroom       `python -m vgpt classroom`: release the student version, grade submissions
exercise_cells  how exercise and checker cells are marked; the student version of a notebook
submission      one student's notebook graded in its own process, folder and kernel
kernel_run      the process that runs one grading notebook in a fresh kernel
"""
