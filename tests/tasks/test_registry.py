"""The task registry: what each registered task names resolves, and a task registered here, in
the test, appears in the CLI and in ``load_task_model`` with nothing else edited."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from endofm.cli.main import build_parser, main
from endofm.config import load_config
from endofm.models import backbone_config, create_model
from endofm.models.checkpoint import read_state_dir, save_state_dir
from endofm.tasks import TASKS, TaskSpec, get_task, register_task, task_specs
from endofm.tasks.base import Task
from endofm.tasks.classification.model import VideoClassifier
from endofm.tasks.classification.task import ClassificationTask
from endofm.tasks.registry import load_object, task_for_kind, unregister_task

BUILT_IN = ("classification", "detection", "phase", "segmentation")


@pytest.mark.parametrize("spec", task_specs(), ids=lambda spec: spec.name)
def test_every_name_a_task_registers_resolves(spec):
    task_cls = spec.task_class()
    assert issubclass(task_cls, Task) and task_cls.name == spec.name
    assert TASKS[spec.name] is task_cls
    assert spec.config_schema() is task_cls.config_class
    if spec.cli is None:
        assert isinstance(load_object(spec.predictor), type)
        assert isinstance(load_object(spec.report), type)
    else:
        for command in ("add_finetune", "add_evaluate", "add_predict"):
            assert callable(load_object(f"{spec.cli}:{command}"))
    assert callable(load_object(spec.sample))  # the end-to-end test's data
    assert spec.live is None or callable(load_object(spec.live))
    assert task_for_kind(spec.kind) is spec


def test_the_built_in_tasks_are_found_in_their_packages():
    assert set(BUILT_IN) <= set(TASKS)
    assert {get_task(name).kind for name in BUILT_IN} == {"classifier", "segmenter", "detector",
                                                          "phase_model"}


def test_an_unknown_task_or_format_is_one_clear_error():
    with pytest.raises(ValueError, match="unknown task 'phases'; registered tasks: "):
        get_task("phases")
    with pytest.raises(KeyError):
        TASKS["phases"]


def test_a_name_or_kind_is_registered_once():
    spec = get_task("classification")
    assert register_task(spec) is spec  # the same spec again (a re-imported package): fine
    with pytest.raises(ValueError, match="already registered"):
        register_task(TaskSpec(**{**vars(spec), "kind": "other"}))
    with pytest.raises(ValueError, match="kind 'classifier' is already task 'classification'"):
        register_task(TaskSpec(**{**vars(spec), "name": "other"}))
    with pytest.raises(ValueError, match="needs a predictor and a report"):
        TaskSpec(**{**vars(spec), "predictor": None})


class ThrowAwayTask(ClassificationTask):
    """A task that exists only in this test: a classifier saved under its own kind."""

    name = "throwaway"

    def save_model(self, model: torch.nn.Module, out_dir: Path) -> Path:
        meta = {"kind": self.kind, "task": self.name, "format": "endofm",
                "num_classes": model.num_classes, "backbone": backbone_config(model.backbone)}
        return save_state_dir(model.state_dict(), meta, out_dir)

    def load_model(self, path: str | Path) -> torch.nn.Module:
        meta, tensors = read_state_dir(path, self.kind)
        model = VideoClassifier(create_model(drop_path_rate=0.0, **meta["backbone"]),
                                meta["num_classes"])
        model.load_state_dict(tensors)
        return model.eval()


THROWAWAY = TaskSpec(
    name="throwaway", kind="throwaway_model", task=f"{__name__}:ThrowAwayTask",
    summary="a task registered by a test",
    formats=("polypdiag", "manifest", "folders"),
    predictor="endofm.inference.predict:ClassificationPredictor",
    report="endofm.inference.predict_run:ClassificationArtifacts",
    predict_help="the throw-away task's predictions")


@pytest.fixture
def throwaway():
    register_task(THROWAWAY)
    yield THROWAWAY
    unregister_task(THROWAWAY.name)


def test_a_task_registered_here_is_in_the_cli_and_load_task_model(throwaway, tmp_path, capsys):
    from endofm.inference import load_task_model

    parser = build_parser()
    args = parser.parse_args(["finetune", "throwaway", "--data", "d", "--output", "o"])
    assert args.task == "throwaway"
    args = parser.parse_args(["evaluate", "throwaway", "--checkpoint", "c", "--data", "d",
                              "--output", "o"])
    assert args.task == "throwaway"
    args = parser.parse_args(["predict", "throwaway", "--checkpoint", "c", "v.mp4", "--output",
                              "o", "--smooth", "5"])
    assert args.smooth == 5
    with pytest.raises(SystemExit):
        parser.parse_args(["finetune", "--help"])
    assert "throwaway" in capsys.readouterr().out

    cfg = load_config(ThrowAwayTask.config_class, None, [
        "model.backbone.embed_dim=96", "model.backbone.depth=1", "model.backbone.num_heads=4",
        "data.crop_size=32", "data.test_short_side=32", "data.num_frames=2"])
    task = ThrowAwayTask(cfg)
    model = task.build_model(None).eval()
    folder = task.save_model(model, tmp_path / "model")
    loaded = load_task_model(folder)
    assert (loaded.task, loaded.num_frames, loaded.img_size) == ("throwaway", 2, 32)
    clip = torch.rand(1, 3, 2, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.model(clip), model(clip))
    with pytest.raises(ValueError, match="is a throwaway model, not a classification model"):
        load_task_model(folder, "classification")
    assert main(["info", str(folder), "--json"]) == 0
    assert '"task": "throwaway"' in capsys.readouterr().out


def test_once_unregistered_the_task_is_gone(throwaway, tmp_path):
    from endofm.inference import load_task_model

    unregister_task("throwaway")
    try:
        assert "throwaway" not in TASKS
        with pytest.raises(SystemExit):
            build_parser().parse_args(["finetune", "throwaway", "--data", "d", "--output", "o"])
        with pytest.raises(ValueError, match="unknown task 'throwaway'"):
            load_task_model(tmp_path, "throwaway")
    finally:
        register_task(THROWAWAY)


PROBE = """
import sys
from endofm.tasks import TASKS, task_specs
names = [spec.name for spec in task_specs()] == list(TASKS)
print("heavy:", sorted(m for m in ("torch", "numpy") if m in sys.modules), names)
"""


def test_reading_the_registry_imports_no_torch():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "heavy: [] True"
