"""Tasks that read a release layout or an own-data format: the own data's validation split is
the engine's selection set; the release layout's conventions hold until data is bound."""

from __future__ import annotations

from endofm.config import load_config, recipe_path
from endofm.tasks import TASKS
from endofm.tasks.base import task_config_schema


def classification_task():
    cls = TASKS["classification"]
    return cls(load_config(task_config_schema(cls), recipe_path("classification", "tiny")))


def test_an_own_manifest_gives_its_validation_rows_and_the_release_layout_none(tmp_path):
    for name in "abcd":
        (tmp_path / f"{name}.mp4").write_bytes(b"0")  # only their existence is read here
    (tmp_path / "manifest.csv").write_text("path,label,split\na.mp4,x,train\nb.mp4,y,train\n"
                                           "c.mp4,x,val\nd.mp4,y,test\n")
    unbound = classification_task()
    assert unbound.from_release() and unbound.test_split == "val"  # PolypDiag's conventions
    task = classification_task()
    task.bind_data(tmp_path)
    assert not task.from_release() and task.test_split == "test"
    assert [item.path.name for item in task.given_split(tmp_path, "val")] == ["c.mp4"]
    assert task.item_groups(task.read_items(tmp_path, "train")) == [
        str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4")]
    assert unbound.given_split(tmp_path, "val") is None
