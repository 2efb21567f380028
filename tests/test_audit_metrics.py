"""An audit's numbers against values computed by hand on a tiny labelled set, and the reading of
datasets and labels (no model here: these run in well under a second)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from explainers.audit.dataset import dataset_from_upload, load_dataset
from explainers.audit.errors import DatasetError
from explainers.audit.labels import match_labels
from explainers.audit.metrics import examples, summarise, wilson

CLASSES = ("cat", "dog", "bird", "fish", "frog", "newt")


def item(name, label, prediction, score, region, top5=True, faithfulness=None):
    record = {"input": name, "label": CLASSES[label], "label_index": label, "prediction": CLASSES[prediction],
              "prediction_index": prediction, "score": score, "correct": label == prediction, "top5_correct": top5,
              "groups": {"region": region}}
    if faithfulness:
        record["faithfulness"] = faithfulness
    return record


def areas(deletion, insertion, random_deletion, random_insertion):
    return {"gradcam": {"deletion_auc": deletion, "insertion_auc": insertion,
                        "references": {"random": {"deletion_auc": random_deletion, "insertion_auc": random_insertion}}}}


RESULTS = [
    item("a", 0, 0, 0.9, "north", faithfulness=areas(0.1, 0.7, 0.3, 0.4)),
    item("b", 0, 1, 0.8, "north", faithfulness=areas(0.3, 0.5, 0.2, 0.6)),
    item("c", 1, 1, 0.6, "south"),
    item("d", 1, 1, 0.7, "south"),
    item("e", 2, 0, 0.55, "south", top5=False),
    {"input": "f", "label": "cat", "label_index": 0, "groups": {"region": "south"}, "error": "cannot identify image"},
]


@pytest.fixture(scope="module")
def summary():
    return summarise(RESULTS, CLASSES, items=6)


def test_counts_and_accuracies(summary):
    assert (summary["items"], summary["evaluated"], summary["skipped"]) == (6, 5, 1)
    assert summary["accuracy"] == pytest.approx(3 / 5)
    assert summary["top5_accuracy"] == pytest.approx(4 / 5)  # six classes: top-5 applies
    assert summary["accuracy_interval"] == pytest.approx(wilson(3, 5))
    assert summary["skipped_items"] == [{"input": "f", "error": "cannot identify image"}]


def test_wilson_interval_matches_the_textbook_values():
    assert wilson(8, 10) == pytest.approx([0.4902, 0.9433], abs=1e-4)
    assert wilson(0, 5) == pytest.approx([0.0, 0.4345], abs=1e-4)
    assert wilson(5, 5)[1] == 1.0 and wilson(0, 0) is None


def test_top5_does_not_apply_with_five_classes_or_fewer():
    assert summarise(RESULTS, CLASSES[:5], items=6)["top5_accuracy"] is None


def test_per_class_precision_recall_f1(summary):
    table = summary["per_class"]
    assert set(table) == {"cat", "dog", "bird"}  # labels or predictions only
    assert table["cat"] == {"index": 0, "support": 2, "predicted": 2, "precision": 0.5, "recall": 0.5, "f1": 0.5}
    dog = table["dog"]
    assert (dog["support"], dog["predicted"]) == (2, 3)
    assert dog["precision"] == pytest.approx(2 / 3) and dog["recall"] == 1.0 and dog["f1"] == pytest.approx(0.8)
    assert table["bird"]["precision"] is None and table["bird"]["recall"] == 0.0 and table["bird"]["f1"] is None


def test_confusion_matrix_and_its_cells(summary):
    confusion = summary["confusion"]
    assert confusion["rows"] == ["cat", "dog", "bird"] and confusion["columns"] == ["cat", "dog", "bird"]
    assert confusion["matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert confusion["items"]["1,1"] == ["c", "d"] and confusion["items"]["2,0"] == ["e"]


def test_calibration_error_by_hand(summary):
    # bins (0.8, 0.9]: a right at 0.9; (0.7, 0.8]: b wrong at 0.8; (0.6, 0.7]: d right at 0.7;
    # (0.5, 0.6]: c right at 0.6 and e wrong at 0.55 -> accuracy 0.5, confidence 0.575
    expected = (0.1 + 0.8 + 0.3) / 5 + 2 / 5 * abs(0.5 - 0.575)
    assert summary["ece"] == pytest.approx(expected)
    filled = [b for b in summary["calibration"] if b["count"]]
    assert [b["count"] for b in filled] == [2, 1, 1, 1]
    assert filled[0]["accuracy"] == 0.5 and filled[0]["confidence"] == pytest.approx(0.575)


def test_groups_sizes_gaps_and_intervals(summary):
    region = summary["per_group"]["region"]
    north, south = region["north"], region["south"]
    assert (north["size"], south["size"]) == (2, 3)  # the skipped item counts nowhere
    assert north["accuracy"] == 0.5 and south["accuracy"] == pytest.approx(2 / 3)
    assert north["gap"] == pytest.approx(0.5 - 0.6) and south["gap"] == pytest.approx(2 / 3 - 0.6)
    assert north["accuracy_interval"] == pytest.approx(wilson(1, 2))
    for row in (north, south):
        low, high = row["gap_interval"]
        assert low <= row["gap"] <= high
        assert row["too_small"] and not row["gap_clear"]


def test_a_large_group_with_a_real_gap_is_called_clear():
    results = [item(f"x{i}", 0, 0 if i % 10 else 1, 0.9, "good") for i in range(100)]
    results += [item(f"y{i}", 0, 0 if i % 2 else 1, 0.9, "poor") for i in range(100)]
    table = summarise(results, CLASSES, items=200)["per_group"]["region"]
    assert not table["poor"]["too_small"] and table["poor"]["gap_clear"] and table["poor"]["gap"] < 0
    assert table["good"]["gap_clear"] and table["good"]["gap"] > 0
    again = summarise(results, CLASSES, items=200)["per_group"]["region"]
    assert again == table  # seeded bootstrap: the same numbers every run


def test_faithfulness_means_and_wins(summary):
    row = summary["faithfulness"]["gradcam"]
    assert row["items"] == 2
    assert row["deletion_auc"] == pytest.approx(0.2) and row["insertion_auc"] == pytest.approx(0.6)
    random = row["references"]["random"]
    assert random["deletion_auc"] == pytest.approx(0.25) and random["insertion_auc"] == pytest.approx(0.5)
    assert random["map_better_deletion"] == 0.5 and random["map_better_insertion"] == 0.5
    low, high = row["deletion_interval"]
    assert 0.1 <= low <= 0.2 <= high <= 0.3


def test_examples_are_the_most_confident_errors_and_least_confident_hits():
    picked = examples([r for r in RESULTS if "error" not in r])
    assert [r["input"] for r in picked["confident_errors"]] == ["b", "e"]
    assert [r["input"] for r in picked["unsure_correct"]] == ["c", "d", "a"]


# -- labels ---------------------------------------------------------------------------------------------

IMAGENET_LIKE = ("tabby, tabby cat", "tiger cat", "missile", "projectile, missile", "cup", "espresso")


def test_labels_match_by_synonym_full_name_and_index():
    found = match_labels(["tabby", "Tabby Cat", "missile", "4", "espresso "], IMAGENET_LIKE)
    assert found == {"tabby": 0, "Tabby Cat": 0, "missile": 2, "4": 4, "espresso ": 5}


def test_unmatched_labels_are_named_with_the_closest_classes():
    with pytest.raises(DatasetError) as raised:
        match_labels(["tabby", "tabbby", "expresso", "99"], IMAGENET_LIKE)
    message = str(raised.value)
    assert "3 labels" in message and "'tabbby'" in message and "0: tabby, tabby cat" in message
    assert "'expresso'" in message and "5: espresso" in message
    assert "'99'" in message and "0 to 5" in message


# -- datasets ---------------------------------------------------------------------------------------------

def test_class_folders(tmp_path):
    for name in ("tabby/1.jpg", "tabby/sub/2.png", "cup/3.jpg", "README.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    dataset = load_dataset(tmp_path, "image")
    assert [(i.input, i.label) for i in dataset.items] == [("cup/3.jpg", "cup"), ("tabby/1.jpg", "tabby"),
                                                          ("tabby/sub/2.png", "tabby")]
    assert dataset.group_columns == () and dataset.labels == ("cup", "tabby")
    assert dataset.source.read("cup/3.jpg") == b"x"
    with pytest.raises(DatasetError, match="outside the dataset"):
        dataset.source.read("../secret")


def test_manifest_csv_and_jsonl_give_the_same_items(tmp_path):
    csv_text = 'text,label,domain\n"Good, really.",positive,film\nBad.,negative,food\n'
    (tmp_path / "m.csv").write_text(csv_text)
    rows = [{"text": "Good, really.", "label": "positive", "domain": "film"},
            {"text": "Bad.", "label": "negative", "domain": "food"}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    a, b = load_dataset(tmp_path / "m.csv", "text"), load_dataset(tmp_path / "m.jsonl", "text")
    strip = lambda d: [(i.label, i.groups, i.text) for i in d.items]  # noqa: E731
    assert strip(a) == strip(b) and a.group_columns == b.group_columns == ("domain",)
    assert a.items[0].text == "Good, really." and dict(a.items[1].groups) == {"domain": "food"}
    assert [i.input for i in a.items] == ["row 2", "row 3"]  # as a spreadsheet numbers them
    assert [i.input for i in b.items] == ["line 1", "line 2"]
    assert a.sha256 != b.sha256  # the manifest's own bytes


@pytest.mark.parametrize("content, message", [
    ("path,label\n", "no rows"),
    ("file,class\na.jpg,cat\n", "needs the columns path,label"),
    ("path,label\na.jpg,cat\na.jpg,dog\n", "twice"),
    ("path,label\na.jpg,\n", "no label"),
    ("path,label\na.jpg,cat,extra\n", "more values"),
])
def test_bad_manifests_say_what_is_wrong(tmp_path, content, message):
    (tmp_path / "m.csv").write_text(content)
    with pytest.raises(DatasetError, match=message):
        load_dataset(tmp_path / "m.csv", "image")


def test_manifest_that_is_not_utf8_or_not_json(tmp_path):
    (tmp_path / "m.csv").write_bytes(b"path,label\n\xff\xfe,cat\n")
    with pytest.raises(DatasetError, match="not UTF-8"):
        load_dataset(tmp_path / "m.csv", "image")
    (tmp_path / "m.jsonl").write_text('{"text": "a", "label": "b"}\nnot json\n')
    with pytest.raises(DatasetError, match="Line 2"):
        load_dataset(tmp_path / "m.jsonl", "text")


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_uploaded_zip_with_folders_or_a_manifest():
    folders = dataset_from_upload("d.zip", zipped({"data/cat/1.jpg": b"1", "data/dog/2.jpg": b"2"}), "image")
    assert [(i.input, i.label) for i in folders.items] == [("cat/1.jpg", "cat"), ("dog/2.jpg", "dog")]
    assert folders.source.read("dog/2.jpg") == b"2"
    manifest = b"path,label,site\nimgs/1.jpg,cat,x\nimgs/2.jpg,dog,y\n"
    listed = dataset_from_upload("d.zip", zipped({"manifest.csv": manifest, "imgs/1.jpg": b"1", "imgs/2.jpg": b"2"}),
                                 "image")
    assert listed.group_columns == ("site",) and listed.source.read("imgs/2.jpg") == b"2"
    with pytest.raises(FileNotFoundError):
        listed.source.read("imgs/3.jpg")


@pytest.mark.parametrize("files, message", [
    ({"../evil/1.jpg": b"x"}, "outside the archive"),
    ({"a/inner.zip": zipped({"x/1.jpg": b"x"})}, "nested archive"),
])
def test_hostile_uploads_are_refused_with_a_message(files, message):
    with pytest.raises(DatasetError, match=message):
        dataset_from_upload("d.zip", zipped(files), "image")


def test_uploads_of_the_wrong_kind():
    with pytest.raises(DatasetError, match="empty"):
        dataset_from_upload("d.zip", b"", "image")
    with pytest.raises(DatasetError, match="not a readable zip"):
        dataset_from_upload("d.zip", b"hello", "image")
    with pytest.raises(DatasetError, match="upload a .zip"):
        dataset_from_upload("d.exe", b"MZ", "image")
    with pytest.raises(DatasetError, match="A manifest alone has no images"):
        dataset_from_upload("d.csv", b"path,label\na.jpg,cat\n", "image")
