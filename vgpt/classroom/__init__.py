"""The classroom: hand the notebooks out to a class and grade what comes back (`python -m vgpt classroom`).

commands        the `classroom` command: its parser (`add_commands`) and handlers
release         the student version of a notebooks folder
exercise_cells  how exercise and checker cells are marked; the student version of a notebook
submission      one student's notebook graded in its own process, folder and kernel
kernel_run      the process that runs one grading notebook in a fresh kernel
"""
