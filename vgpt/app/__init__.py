"""What a user runs: the command line and the jobs behind it.

cli            `python -m vgpt COMMAND` (every command has --help): the parser and main
commands_*     the commands' handlers: captioner (demo, train, extract, caption,
               evaluate), setup (build-tiny, profile), classroom (release, grade)
runs           train / caption / evaluate / extract on a caption folder; run folders
demo           the main job: train and evaluate on Shapes World, write a run folder
bench          speed of each lever side by side, FLOPs, a GPU memory estimate
bench_timing   the harness: timed runs after a FLOP-counted warm-up
bench_more     feature extraction speed; measured GPU memory
bench_threads  `bench --under-load`: CPU threads alone and beside a busy process
gradio_app     `app`: a run's captioner on a web page (Gradio, the [app] extra)
space          `app --write-space`: that page as a Hugging Face Space folder
"""
