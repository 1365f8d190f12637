"""Each loss: a hand-computed value, ~0 for a perfect prediction, zero gradient at
ignore pixels, class weights as defined, and combinations that add up."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from semseg.classes import ClassSet
from semseg.config import LossConfig, load_config
from semseg.errors import SemsegError
from semseg.losses import LOSSES, boundary_weights, build_loss

IGNORE = 255
# Two pixels, two classes: probabilities (0.8, 0.2) for a class-0 pixel and (0.4, 0.6)
# for a class-1 pixel, and a third pixel that is ignored.
P = torch.tensor([[0.8, 0.4, 0.5], [0.2, 0.6, 0.5]])
LOGITS = P.log().view(1, 2, 1, 3)
TARGET = torch.tensor([[[0, 1, IGNORE]]])


def value(name: str, logits=LOGITS, target=TARGET, **params) -> float:
    return LOSSES.get(name).function(logits, target, ignore_index=IGNORE, **params).item()


def test_hand_computed_values() -> None:
    ce = -(math.log(0.8) + math.log(0.6)) / 2
    assert value("cross_entropy") == pytest.approx(ce)
    focal = -(0.2**2 * math.log(0.8) + 0.4**2 * math.log(0.6)) / 2
    assert value("focal", gamma=2.0) == pytest.approx(focal)
    # Dice per class over valid pixels: class 0: 2*0.8 / (0.8+0.4 + 1); class 1: 2*0.6/(0.8+1)
    dice = 1 - (2 * 0.8 / 2.2 + 2 * 0.6 / 1.8) / 2
    assert value("dice", smooth=0.0) == pytest.approx(dice, rel=1e-6)
    # Tversky class 0: tp .8 fp .4 fn .2; class 1: tp .6 fp .2 fn .4
    tversky = 1 - (0.8 / (0.8 + 0.3 * 0.4 + 0.7 * 0.2) + 0.6 / (0.6 + 0.3 * 0.2 + 0.7 * 0.4)) / 2
    assert value("tversky", smooth=0.0) == pytest.approx(tversky, rel=1e-6)
    # Lovász class 0: errors [0.2 (fg), 0.4 (bg)] sorted [0.4 bg, 0.2 fg]: grads [0.5, 0.5]
    # class 1: errors [0.2 (bg), 0.4 (fg)] sorted [0.4 fg, 0.2 bg]: grads [1, 0]
    assert value("lovasz") == pytest.approx(((0.4 * 0.5 + 0.2 * 0.5) + 0.4) / 2)
    # OHEM keeping the one hardest pixel (-log 0.6) of the two.
    assert value("ohem", threshold=0.5, min_kept=1) == pytest.approx(-math.log(0.6))
    # Every valid pixel here is on the boundary: boundary CE equals plain CE.
    assert value("boundary", boundary_weight=4.0, radius=1) == pytest.approx(ce)


def test_tversky_equals_the_one_hot_formula_in_value_and_gradient() -> None:
    """The loss sums by label index; the textbook writes it with a one-hot tensor."""
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 9, 11, requires_grad=True)
    target = torch.randint(0, 4, (2, 9, 11))  # class 4 absent: left out of the mean
    target[0, :3] = IGNORE
    valid = (target != IGNORE).unsqueeze(1)
    one_hot = F.one_hot(torch.where(valid[:, 0], target, 0), 5).permute(0, 3, 1, 2) * valid
    probs = logits.softmax(1) * valid
    tp, fp = (probs * one_hot).sum((0, 2, 3)), (probs * (1 - one_hot)).sum((0, 2, 3))
    fn = ((1 - probs) * one_hot).sum((0, 2, 3))
    expected = (1 - tp / (tp + 0.3 * fp + 0.7 * fn))[:4].mean()
    (expected_grad,) = torch.autograd.grad(expected, logits)
    loss = LOSSES.get("tversky").function(logits, target, ignore_index=IGNORE, smooth=0.0)
    (grad,) = torch.autograd.grad(loss, logits)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    torch.testing.assert_close(grad, expected_grad)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_perfect_prediction_scores_near_zero(name: str) -> None:
    target = torch.tensor([[[0, 1, 2], [2, 1, IGNORE]]])
    logits = F.one_hot(torch.where(target == IGNORE, 0, target), 3).permute(0, 3, 1, 2) * 40.0
    assert value(name, logits.float(), target) < 1e-4


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_ignored_pixels_get_exactly_zero_gradient(name: str) -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 6, 7, requires_grad=True)
    target = torch.randint(0, 3, (2, 6, 7))
    target[:, :2] = IGNORE
    LOSSES.get(name).function(logits, target, ignore_index=IGNORE).backward()
    assert logits.grad[:, :, :2].abs().max() == 0
    assert logits.grad[:, :, 2:].abs().max() > 0


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_all_ignored_batch_is_zero_not_nan(name: str) -> None:
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    loss = LOSSES.get(name).function(logits, torch.full((1, 4, 4), IGNORE), ignore_index=IGNORE)
    assert loss.item() == 0.0
    loss.backward()  # still differentiable


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_two_and_many_classes(name: str) -> None:
    for classes in (2, 7):
        logits = torch.randn(2, classes, 5, 5)
        target = torch.randint(0, classes, (2, 5, 5))
        assert math.isfinite(value(name, logits, target))


def test_class_weights_act_as_defined() -> None:
    weights = torch.tensor([1.0, 3.0])
    # Weighted CE: weighted mean over pixels.
    ce = (-math.log(0.8) - 3 * math.log(0.6)) / 4
    assert value("cross_entropy", weights=weights) == pytest.approx(ce)
    # Focal: weights play alpha_t, mean over pixels.
    focal = -(0.2**2 * math.log(0.8) + 3 * 0.4**2 * math.log(0.6)) / 2
    assert value("focal", weights=weights) == pytest.approx(focal)
    # Region losses: weighted mean over the present classes.
    d0, d1 = 1 - 2 * 0.8 / 2.2, 1 - 2 * 0.6 / 1.8
    assert value("dice", weights=weights, smooth=0.0) == pytest.approx((d0 + 3 * d1) / 4)


def test_boundary_band_marks_pixels_near_label_changes() -> None:
    target = torch.zeros(1, 5, 8, dtype=torch.long)
    target[:, :, 4:] = 1
    target[0, 0, 0] = IGNORE
    near = boundary_weights(target, IGNORE, 2, radius=1)
    assert near[0, 2].tolist() == [0, 0, 0, 1, 1, 0, 0, 0]
    assert near[0, 0, 0] == 0  # ignore pixels are never weighted


def test_combination_adds_weighted_terms_and_reports_each() -> None:
    classes = ClassSet(("a", "b"))
    config = load_config(
        None,
        [
            "loss=[{name: ce}, {name: dice, weight: 0.5, smooth: 0.0},"
            " {name: focal, weight: 2, gamma: 1}]"
        ],
    ).loss
    loss = build_loss(config, classes)
    total = loss(LOGITS, TARGET).item()
    expected = (
        value("cross_entropy") + 0.5 * value("dice", smooth=0.0) + 2 * value("focal", gamma=1.0)
    )
    assert total == pytest.approx(expected)
    assert set(loss.last_terms) == {"cross_entropy", "dice", "focal"}


def test_a_term_can_leave_the_class_weights_out() -> None:
    classes = ClassSet(("a", "b"))
    config = load_config(
        None,
        [
            "loss.terms=[{name: ce}, {name: dice, weight: 0.5, smooth: 0.0, class_weights: false}]",
            "loss.class_weights=[1, 3]",
        ],
    ).loss
    weights = torch.tensor([1.0, 3.0])
    expected = value("cross_entropy", weights=weights) + 0.5 * value("dice", smooth=0.0)
    assert build_loss(config, classes)(LOGITS, TARGET).item() == pytest.approx(expected)


def test_label_smoothing_and_weights_from_config() -> None:
    classes = ClassSet(("a", "b"))
    loss = build_loss(LossConfig(label_smoothing=0.1, class_weights=[1, 3]), classes)
    reference = F.cross_entropy(
        LOGITS, TARGET, weight=torch.tensor([1.0, 3.0]), ignore_index=IGNORE, label_smoothing=0.1
    )
    assert loss(LOGITS, TARGET).item() == pytest.approx(reference.item())


def test_logit_adjustment_scores_logits_plus_tau_log_prior() -> None:
    classes = ClassSet(("a", "b", "c"))
    pixels = [600, 300, 99]  # smoothed prior: 601 / 1002, 301 / 1002, 100 / 1002
    logits = torch.randn(2, 3, 4, 5)
    target = torch.randint(0, 3, (2, 4, 5))
    target[0, 0, 0] = IGNORE
    log_prior = torch.tensor([601, 301, 100], dtype=torch.float64).div(1002).log()
    loss = build_loss(LossConfig(logit_adjustment=0.5), classes, class_pixels=pixels)
    shifted = logits + 0.5 * log_prior.float().view(1, 3, 1, 1)
    reference = F.cross_entropy(shifted, target, ignore_index=IGNORE)
    assert loss(logits, target).item() == pytest.approx(reference.item(), rel=1e-6)
    with pytest.raises(ValueError, match="needs the training split's class pixels"):
        build_loss(LossConfig(logit_adjustment=1.0), classes)


def test_logit_adjustment_learns_class_balanced_scores() -> None:
    """Labels drawn at the training prior carry no information beyond it: the adjusted
    loss is lowest when every class scores the same (a balanced classifier), where plain
    cross-entropy's optimum is the log prior."""
    classes = ClassSet(("a", "b", "c"))
    pixels = [700, 200, 100]
    target = torch.tensor([0] * 700 + [1] * 200 + [2] * 100).view(1, 10, 100)
    for tau, expected in ((1.0, torch.zeros(3)), (0.0, torch.tensor([0.7, 0.2, 0.1]).log())):
        loss = build_loss(LossConfig(logit_adjustment=tau), classes, class_pixels=pixels)
        scores = torch.zeros(3, requires_grad=True)
        optimiser = torch.optim.LBFGS([scores], max_iter=100, line_search_fn="strong_wolfe")

        def objective(scores=scores, loss=loss, optimiser=optimiser):
            optimiser.zero_grad()
            value = loss(scores.view(1, 3, 1, 1).expand(1, 3, 10, 100), target)
            value.backward()
            return value

        optimiser.step(objective)
        centred = scores.detach() - scores.detach().mean()
        assert torch.allclose(centred, expected - expected.mean(), atol=2e-2)


def test_loss_config_errors_name_the_key() -> None:
    classes = ClassSet(("a", "b", "c"))
    with pytest.raises(SemsegError, match="2 weights for 3 classes"):
        build_loss(LossConfig(class_weights=[1, 2]), classes)
    with pytest.raises(SemsegError, match="'loss.name': unknown loss 'dicee'; did you mean 'dice'"):
        build_loss(LossConfig(name="dicee"), classes)
    bad_param = load_config(None, ["loss=[{name: focal, gama: 2}]"]).loss
    with pytest.raises(
        SemsegError,
        match=r"'loss.terms\[0\].gama': loss 'focal' has no such parameter; it takes gamma",
    ):
        build_loss(bad_param, classes)
