"""Linear probes: can every caption attribute be read linearly out of the frozen tower's features?"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import shapes
from .vision import pixel_tensor


@torch.no_grad()
def vision_features(tower, scenes: list[shapes.Scene], image_size: int, batch: int = 256) -> torch.Tensor:
    """Flattened last hidden state, (B, N * D): all that a visual prefix would carry."""
    out = []
    for i in range(0, len(scenes), batch):
        px = pixel_tensor([s.render(image_size) for s in scenes[i : i + batch]])
        out.append(tower(pixel_values=px).last_hidden_state.flatten(1))
    return torch.cat(out)


def fit_linear_probe(train_x, train_y, n_classes: int, weight_decay: float = 1e-4):
    """Multinomial logistic regression (full-batch L-BFGS) on standardised features; returns a
    function from features (B, F) to predicted classes (B,)."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    xtr = (train_x - mean) / std
    probe = torch.nn.Linear(xtr.shape[1], n_classes)
    opt = torch.optim.LBFGS(probe.parameters(), max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(probe(xtr), train_y) + weight_decay * probe.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)

    @torch.no_grad()
    def predict(x):
        return probe((x - mean) / std).argmax(1)

    return predict


def linear_probe(train_x, train_y, test_x, test_y, n_classes: int, weight_decay: float = 1e-4) -> float:
    """Test accuracy of a linear probe fitted on the training features."""
    predict = fit_linear_probe(train_x, train_y, n_classes, weight_decay)
    return float((predict(test_x) == test_y).float().mean())


def probe_attributes(
    tower, image_size: int, n_train: int, n_test: int, seed: int = 0, test_split: str = "test"
) -> dict[str, float]:
    """Accuracy of a linear probe per caption attribute, on held-out scenes."""
    train = shapes.generate("train", n_train, seed=10_000 + seed)
    test = shapes.generate(test_split, n_test, seed=20_000 + seed)
    ftr, fte = vision_features(tower, train, image_size), vision_features(tower, test, image_size)
    atr = [shapes.attributes(s) for s in train]
    ate = [shapes.attributes(s) for s in test]
    result = {}
    for name in sorted({k for a in atr for k in a}):
        itr = [i for i, a in enumerate(atr) if name in a]
        ite = [i for i, a in enumerate(ate) if name in a]
        if not ite:
            continue
        classes = sorted({atr[i][name] for i in itr} | {ate[i][name] for i in ite})
        code = {c: k for k, c in enumerate(classes)}
        ytr = torch.tensor([code[atr[i][name]] for i in itr])
        yte = torch.tensor([code[ate[i][name]] for i in ite])
        result[name] = linear_probe(ftr[itr], ytr, fte[ite], yte, len(classes))
    return result
