import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.metrics import confusion_matrix, jaccard_score, precision_recall_fscore_support
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from semseg.metrics import ConfusionMatrix, per_image_miou

IGNORE = 255


def random_batch(seed: int, num_classes: int = 5, shape=(3, 17, 23)):
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(0, num_classes, shape, generator=generator)
    target[torch.rand(shape, generator=generator) < 0.15] = IGNORE
    # Mostly right, some noise: realistic confusion structure.
    pred = torch.where(
        torch.rand(shape, generator=generator) < 0.7,
        target.clamp(max=num_classes - 1),
        torch.randint(0, num_classes, shape, generator=generator),
    )
    return pred, target


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_figure_matches_scikit_learn(seed: int) -> None:
    num_classes = 5
    pred, target = random_batch(seed, num_classes)
    cm = ConfusionMatrix(num_classes, IGNORE)
    cm.update(pred, target)
    metrics = cm.compute()

    valid = (target != IGNORE).flatten().numpy()
    y_true = target.flatten().numpy()[valid]
    y_pred = pred.flatten().numpy()[valid]
    labels = list(range(num_classes))
    reference = confusion_matrix(y_true, y_pred, labels=labels)
    assert np.array_equal(cm.matrix.numpy(), reference)

    iou = jaccard_score(y_true, y_pred, labels=labels, average=None)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    np.testing.assert_allclose(metrics["iou"], iou)
    np.testing.assert_allclose(metrics["precision"], precision)
    np.testing.assert_allclose(metrics["recall"], recall)
    np.testing.assert_allclose(metrics["f1"], f1)
    np.testing.assert_allclose(metrics["dice"], f1)
    assert metrics["support"] == support.tolist()
    assert metrics["miou"] == pytest.approx(iou.mean())
    assert metrics["mean_accuracy"] == pytest.approx(recall.mean())
    assert metrics["pixel_accuracy"] == pytest.approx((y_true == y_pred).mean())
    frequency = support / support.sum()
    assert metrics["fwiou"] == pytest.approx((frequency * iou).sum())


def test_means_match_torchmetrics_with_ignore_index() -> None:
    num_classes = 6
    pred, target = random_batch(7, num_classes, shape=(4, 31, 29))
    cm = ConfusionMatrix(num_classes, IGNORE)
    cm.update(pred, target)
    metrics = cm.compute()
    jaccard = MulticlassJaccardIndex(num_classes, average=None, ignore_index=IGNORE)
    accuracy = MulticlassAccuracy(num_classes, average="micro", ignore_index=IGNORE)
    macro_accuracy = MulticlassAccuracy(num_classes, average="macro", ignore_index=IGNORE)
    np.testing.assert_allclose(metrics["iou"], jaccard(pred, target).numpy(), rtol=1e-6)
    assert metrics["pixel_accuracy"] == pytest.approx(accuracy(pred, target).item())
    assert metrics["mean_accuracy"] == pytest.approx(macro_accuracy(pred, target).item())


def test_absent_class_is_nan_and_left_out_of_means() -> None:
    # Class 2 appears nowhere; class 3 only in predictions (a false positive).
    target = torch.tensor([[0, 0, 1, 1, IGNORE]])
    pred = torch.tensor([[0, 3, 1, 1, 2]])  # the 2 is on an ignored pixel: not counted
    cm = ConfusionMatrix(4, IGNORE)
    cm.update(pred, target)
    metrics = cm.compute()
    iou = metrics["iou"]
    assert iou[0] == pytest.approx(0.5) and iou[1] == 1.0
    assert math.isnan(iou[2]) and iou[3] == 0.0
    assert metrics["miou"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert math.isnan(metrics["recall"][3])  # never in the ground truth
    assert math.isnan(metrics["precision"][2])  # never predicted
    assert metrics["mean_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
    assert metrics["pixel_accuracy"] == pytest.approx(3 / 4)
    assert metrics["fwiou"] == pytest.approx(0.5 * 0.5 + 0.5 * 1.0)


def test_all_ignore_and_single_class_cases() -> None:
    cm = ConfusionMatrix(3, IGNORE)
    cm.update(torch.zeros(2, 4, 4, dtype=torch.long), torch.full((2, 4, 4), IGNORE))
    metrics = cm.compute()
    assert cm.matrix.sum() == 0
    assert all(math.isnan(v) for v in metrics["iou"]) and math.isnan(metrics["miou"])
    cm.update(torch.ones(1, 3, 3, dtype=torch.long), torch.ones(1, 3, 3, dtype=torch.long))
    metrics = cm.compute()
    assert metrics["miou"] == 1.0 and metrics["pixel_accuracy"] == 1.0


def test_streaming_and_merging_equal_one_update() -> None:
    batches = [random_batch(seed) for seed in range(4)]
    whole = ConfusionMatrix(5, IGNORE)
    whole.update(torch.cat([p for p, _ in batches]), torch.cat([t for _, t in batches]))
    first, second = ConfusionMatrix(5, IGNORE), ConfusionMatrix(5, IGNORE)
    for index, (pred, target) in enumerate(batches):
        (first if index % 2 else second).update(pred, target)
    assert torch.equal(first.merge(second).matrix, whole.matrix)


def test_labels_outside_the_classes_are_not_counted() -> None:
    cm = ConfusionMatrix(2, ignore_index=IGNORE)
    cm.update(torch.tensor([0, 1, 1]), torch.tensor([0, 7, 1]))
    assert cm.matrix.sum() == 2


# Property tests: any labels, any split of the pixels into batches and images.
labels_and_predictions = st.integers(2, 6).flatmap(
    lambda classes: st.tuples(
        st.just(classes),
        hnp.arrays(np.int64, (2, 5, 7), elements=st.sampled_from([*range(classes), IGNORE])),
        hnp.arrays(np.int64, (2, 5, 7), elements=st.integers(0, classes - 1)),
    )
)


@settings(max_examples=60, deadline=None)
@given(labels_and_predictions)
def test_matrix_is_scikit_learns_on_the_labelled_pixels(case) -> None:
    num_classes, target, pred = case
    cm = ConfusionMatrix(num_classes, IGNORE)
    cm.update(torch.from_numpy(pred), torch.from_numpy(target))
    valid = target != IGNORE
    if not valid.any():  # all ignored: nothing counted (scikit-learn refuses empty input)
        assert not cm.matrix.any()
        return
    reference = confusion_matrix(target[valid], pred[valid], labels=list(range(num_classes)))
    assert np.array_equal(cm.matrix.numpy(), reference)


@settings(max_examples=60, deadline=None)
@given(labels_and_predictions)
def test_per_image_miou_is_each_images_own_matrix(case) -> None:
    num_classes, target, pred = case
    per_image = per_image_miou(
        torch.from_numpy(pred), torch.from_numpy(target), num_classes, IGNORE
    )
    for index in range(len(target)):
        single = ConfusionMatrix(num_classes, IGNORE)
        single.update(torch.from_numpy(pred[index]), torch.from_numpy(target[index]))
        expected = single.compute()["miou"]
        assert (math.isnan(expected) and math.isnan(per_image[index])) or math.isclose(
            per_image[index], expected, rel_tol=1e-9
        )
