"""What the notebooks use that is not a stage (the classroom, which grades them, is `vgpt.classroom`).

notebook        example images, where runs go, the trained bridge
exercises       the checkers of the notebooks' exercises (one module per notebook)
widget          notebook 08's interactive demo: captions with attention maps, safe uploads
"""
