"""What the notebooks use that is not a stage (the classroom, which grades them, is `vgpt.classroom`).

notebook        example images, where work is kept, the trained bridge (a quick one if 06's is missing)
colab           where work is kept on Colab: the work folder, Google Drive
pipeline        the pipeline as a list of stages, and its diagram at the top of every notebook
widget          notebook 08's interactive demo: captions with attention maps, safe uploads
experiments     notebook 09's short training runs, each a change to one baseline
shape_probe     notebook 09's linear probe of the vision tower, per layer
exercises       the checkers of the notebooks' exercises (one module per notebook), their cases judged
                on the grader's side
"""
