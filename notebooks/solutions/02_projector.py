"""Solution to notebook 02's exercise."""


def rms_scale(prefix, table):
    rms = lambda x: x.pow(2).mean().sqrt()  # noqa: E731  (root mean square over every number)
    return (rms(table) / rms(prefix)).item()
