"""Solution to notebook 00's exercise."""


def count_parameters(module, trainable_only=False):
    # module.parameters() yields each tensor once, even where a layer is used twice,
    # and leaves out buffers (BatchNorm's running statistics are not weights)
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
