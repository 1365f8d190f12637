import numpy as np
import pytest

from semseg.classes import CAMVID_PALETTE, ClassSet, voc_palette
from semseg.errors import SemsegError


def test_voc_palette_matches_the_devkit_colours() -> None:
    palette = voc_palette(21)
    assert palette[0] == (0, 0, 0)
    assert palette[1] == (128, 0, 0)  # aeroplane
    assert palette[15] == (192, 128, 128)  # person
    assert palette[20] == (0, 64, 128)  # tvmonitor


def test_classset_defaults_and_colour_table() -> None:
    classes = ClassSet(("sky", "road", "car"))
    assert classes.num_classes == 3 and classes.ignore_index == 255
    table = classes.color_table()
    assert table.shape == (256, 3)
    assert tuple(table[1]) == voc_palette(3)[1]
    assert tuple(table[255]) == (255, 255, 255)
    assert ClassSet.from_dict(classes.to_dict()) == classes
    assert len(CAMVID_PALETTE) == 11


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"names": ("only",)}, "at least 2 classes"),
        ({"names": ("a", "a")}, "unique"),
        ({"names": ("a", "b"), "ignore_index": 1}, "is a class index"),
        ({"names": ("a", "b"), "palette": ((0, 0, 0),)}, "1 colours for 2 classes"),
    ],
)
def test_invalid_classsets_explain_the_fix(kwargs: dict, message: str) -> None:
    with pytest.raises(SemsegError, match=message):
        ClassSet(**kwargs)


def test_classes_yaml_errors_name_the_file(tmp_path) -> None:
    path = tmp_path / "classes.yaml"
    path.write_text("names: [a, b]\ncolours: []\n")
    with pytest.raises(SemsegError, match=r"classes.yaml: unknown key\(s\) \['colours'\]"):
        ClassSet.from_yaml(path)
    path.write_text("names: [a, b]\npalette: [[0, 0, 300], [1, 1, 1]]\n")
    with pytest.raises(SemsegError, match="values 0..255"):
        ClassSet.from_yaml(path)
    assert np.array_equal(
        ClassSet.from_yaml(_write(tmp_path, "names: [a, b]\nignore_index: 7\n")).color_table()[7],
        [255, 255, 255],
    )


def _write(tmp_path, text: str):
    path = tmp_path / "other.yaml"
    path.write_text(text)
    return path
