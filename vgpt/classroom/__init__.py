"""The classroom: hand the notebooks out to a class and grade what comes back (`python -m vgpt classroom`).

commands        the `classroom` command: its parser (`add_commands`) and handlers
release         the student version of a notebooks folder, its worked solutions graded first
exercise_cells  how exercise and checker cells are marked; the student version of a notebook
submission      what a student handed in: which notebook, which cell, what is refused unrun
grade           every exercise cell run in a sandbox and judged by the grader; grades.csv
sandbox         bubblewrap: what a student's code sees, may write and may use
runner          the grader's process inside the sandbox: each exercise in a child process of its own
"""
