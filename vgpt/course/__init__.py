"""What the notebooks use that is not a stage.

    notebook    example images, where runs go, the trained bridge
    exercises   the checkers of the notebooks' exercises (one module per notebook)
    widget      notebook 08's interactive demo: captions with attention maps, safe uploads
"""
