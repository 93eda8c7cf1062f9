"""Solution to notebook 01's exercise."""


def patchify(pixels, patch):
    b, c, h, w = pixels.shape
    grid = pixels.reshape(b, c, h // patch, patch, w // patch, patch)  # split rows and columns into blocks
    grid = grid.permute(0, 2, 4, 1, 3, 5)  # (B, rows, cols, C, p, p): patches row by row
    return grid.reshape(b, (h // patch) * (w // patch), c * patch * patch)
