"""A trained captioner outside the notebook: a web page, and the same page as a Hugging Face Space.

gradio_app  `python -m vgpt app --run FOLDER`: the captioner on a web page (Gradio, the [app] extra)
space       `app --write-space DIR`: that page as a Hugging Face Space folder
commands    the `app` command's parser
"""
