"""The SCL fine-tuning loss: SupCon against a reference double loop, lambda = 0 is exactly CE, the one-class error."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from decone.classify.scl import SCLClassifierLoss, label_vocabulary
from decone.data import Dataset
from decone.errors import ConfigError, DataError
from decone.objectives import SupCon


def supcon_loop(features, labels, temperature):
    """Khosla et al. L_out with plain Python loops; anchors without a positive are left out."""
    n = len(features)
    z = [f / f.norm() for f in features]
    per_anchor = []
    for i in range(n):
        positives = [p for p in range(n) if p != i and labels[p] == labels[i]]
        if not positives:
            continue
        denom = sum(math.exp(float(z[i] @ z[a]) / temperature) for a in range(n) if a != i)
        total = sum(math.log(math.exp(float(z[i] @ z[p]) / temperature) / denom) for p in positives)
        per_anchor.append(-total / len(positives))
    return sum(per_anchor) / len(per_anchor) if per_anchor else 0.0


@pytest.mark.parametrize("temperature", [0.1, 0.3, 1.0])
@pytest.mark.parametrize("labels", [
    [0, 0, 1, 1],
    [0, 0, 1, 2, 2, 3],  # classes 1 and 3: anchors with no positive
    [0, 1, 0, 1, 0, 2, 2, 2],
])
def test_supcon_matches_double_loop(labels, temperature):
    g = torch.Generator().manual_seed(len(labels))
    feats = torch.randn(len(labels), 6, generator=g, dtype=torch.float64)
    y = torch.tensor(labels)
    got = SupCon(temperature).compute_loss_from_embeddings(feats, y)
    assert float(got) == pytest.approx(supcon_loop(feats, labels, temperature), rel=1e-9)


def test_supcon_no_positive_at_all_is_zero_and_differentiable():
    feats = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    loss = SupCon(0.3).compute_loss_from_embeddings(feats, torch.tensor([0, 1, 2]))
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert feats.grad is not None


def _setup(lam, labels=("a", "b", "a", "c", "b", "c"), dim=5, temperature=0.3):
    loss = SCLClassifierLoss(lam, temperature)
    data = Dataset([(f"t{i}",) for i in range(len(labels))], "mem", labels=list(labels))
    torch.manual_seed(0)
    loss.setup(SimpleNamespace(encoder=SimpleNamespace(dim=dim, pooling="cls_before_pooler")), data)
    return loss, data


def test_lambda_zero_is_exactly_cross_entropy():
    loss, data = _setup(0.0)
    y = loss.labels(data)
    z = torch.randn(len(y), 5, requires_grad=True)
    got = loss([z], y)
    want = F.cross_entropy(loss.classifier(z), y)
    assert torch.equal(got, want)
    (g_got,) = torch.autograd.grad(got, z)
    (g_want,) = torch.autograd.grad(F.cross_entropy(loss.classifier(z), y), z)
    assert torch.equal(g_got, g_want)


@pytest.mark.parametrize("lam", [0.5, 0.9])
def test_mixture_of_ce_and_supcon(lam):
    loss, data = _setup(lam)
    y = loss.labels(data)
    z = torch.randn(len(y), 5, dtype=torch.float64)
    loss.double()
    with torch.no_grad():
        want = (1 - lam) * F.cross_entropy(loss.classifier(z), y) + lam * supcon_loop(z, y.tolist(), 0.3)
        got = loss([z], y)
    assert float(got) == pytest.approx(float(want), rel=1e-9)


def test_lambda_one_still_differentiable_through_head():
    loss, data = _setup(1.0)
    y = loss.labels(data)
    out = loss([torch.randn(len(y), 5)], y)
    out.backward()
    assert loss.classifier.weight.grad is not None


def test_label_vocabulary_and_encoding():
    assert label_vocabulary(["10", "2", "1"]) == ["1", "2", "10"]
    assert label_vocabulary(["pos", "neg"]) == ["neg", "pos"]
    loss, data = _setup(0.9)
    assert loss.label_names == ["a", "b", "c"]
    assert loss.labels(data).tolist() == [0, 1, 0, 2, 1, 2]
    assert loss.classifier.in_features == 5 and loss.classifier.out_features == 3


def test_fixed_label_names_from_dataset():
    data = Dataset([("x",), ("y",)], "mem", labels=["a", "a"], label_names=["a", "b"])
    loss = SCLClassifierLoss(0.9)
    loss.setup(SimpleNamespace(encoder=SimpleNamespace(dim=4, pooling="mean")), data)
    assert loss.label_names == ["a", "b"]


def test_one_class_only_is_a_data_error():
    data = Dataset([("x",), ("y",), ("z",)], "train.csv", labels=["pos", "pos", "pos"])
    with pytest.raises(DataError, match="train.csv: only one class"):
        SCLClassifierLoss(0.9).setup(SimpleNamespace(encoder=SimpleNamespace(dim=4, pooling="mean")), data)


def test_unlabelled_data_is_a_data_error():
    with pytest.raises(DataError, match="labelled"):
        SCLClassifierLoss(0.9).setup(SimpleNamespace(encoder=SimpleNamespace(dim=4, pooling="mean")), Dataset([("x",)], "s.txt"))


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_lambda_out_of_range(bad):
    with pytest.raises(ConfigError, match="scl_lambda"):
        SCLClassifierLoss(bad)


def test_the_method_takes_lambda_and_temperature_from_the_config():
    from decone.methods import get_method
    from decone.train import TrainConfig

    cfg = TrainConfig(method="scl", model="m", scl_lambda=0.25).resolved()
    objective = get_method("scl").objective(cfg)
    assert objective.scl_lambda == 0.25 and objective.temperature == 0.3
    assert get_method("scl").objective(TrainConfig(method="scl", model="m").resolved()).scl_lambda == 0.9


class _FixedFeatures(torch.nn.Module):
    """A stand-in for the trainable model: embed(texts) looks the features up; records the mode it was called in."""

    def __init__(self, table: dict):
        super().__init__()
        self.table, self.modes = table, []
        self.encoder = SimpleNamespace(dim=len(next(iter(table.values()))), pooling="mean")

    def embed(self, texts, use_bf16):
        self.modes.append(self.training)
        return torch.tensor([self.table[t] for t in texts], dtype=torch.float32)


@pytest.mark.parametrize("classes", [["neg", "pos"], ["a", "b", "c"]])
def test_probe_head_equals_a_logistic_regression_on_the_frozen_features(classes):
    """head_init="probe": the head's class scores order the classes as scikit-learn's logistic regression does on the
    same features (binary: the logit difference is its decision function), fitted in eval mode; training mode is
    restored; a class the data lack scores below every other."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    k = len(classes)
    texts = [f"t{i}" for i in range(12 * k)]
    y = np.arange(12 * k) % k
    feats = rng.normal(size=(12 * k, 6)) + 2.0 * np.eye(k, 6)[y]
    model = _FixedFeatures({t: f.tolist() for t, f in zip(texts, feats)})
    model.train()
    data = Dataset([(t,) for t in texts], "mem", labels=[classes[i] for i in y], label_names=classes + ["unseen"])
    loss = SCLClassifierLoss(0.9, head_init="probe")
    loss.setup(model, data)
    assert model.modes == []  # setup builds a random head; the probe waits for the complete model
    loss.ready(model, data)
    assert model.modes and not any(model.modes) and model.training
    ref = LogisticRegression(max_iter=1000).fit(feats.astype(np.float32), y)
    with torch.no_grad():
        logits = loss.classifier(torch.tensor(feats, dtype=torch.float32)).numpy()
    if k == 2:
        np.testing.assert_allclose(logits[:, 1] - logits[:, 0], ref.decision_function(feats.astype(np.float32)),
                                   rtol=1e-4, atol=1e-4)
    else:
        np.testing.assert_allclose(logits[:, :k], ref.decision_function(feats.astype(np.float32)), rtol=1e-4, atol=1e-4)
    assert (logits[:, k] < logits[:, :k].min(axis=1)).all()  # the unseen class never wins
    assert (logits.argmax(axis=1) == ref.predict(feats.astype(np.float32))).all()


def test_random_head_is_the_default_of_the_objective_and_a_bad_head_init_is_refused():
    assert SCLClassifierLoss(0.9).head_init == "random"
    with pytest.raises(ConfigError, match="head_init must be one of probe, random"):
        SCLClassifierLoss(0.9, head_init="zeros")
