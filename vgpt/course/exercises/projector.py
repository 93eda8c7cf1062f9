"""The checkers of notebook 02's exercises."""

from __future__ import annotations

import torch

from .grading import equal_number, grade


def check_rms_scale(fn) -> bool:
    """`fn(prefix (B, N, D), table (V, D)) -> float`: the factor that gives the prefix the
    root-mean-square size of the token embedding table."""
    torch.manual_seed(0)

    def case(prefix, table, what):
        def run(f):
            factor = f(prefix, table)
            got = (prefix * float(factor)).pow(2).mean().sqrt()
            equal_number(got.item(), table.pow(2).mean().sqrt().item(), f"RMS after scaling ({what})", 1e-4)
        return run

    return grade("rms_scale", fn, [
        ("centred vectors", case(torch.randn(2, 5, 8) * 7, torch.randn(30, 8) * 0.1, "centred")),
        ("vectors with an offset", case(torch.randn(2, 5, 8) + 3, torch.randn(30, 8) * 0.1 - 0.2, "offset: "
                                        "the standard deviation is not the RMS"))])
