"""``--precision bf16`` on a CPU: extract and predict run the model's bf16 copy (weights cast
once, not fp32 weights under autocast) and stay close to their fp32 outputs."""

from __future__ import annotations

import numpy as np
import torch

from endofm.inference import VideoEncoder
from endofm.inference.predict import make_predictor
from endofm.inference.task_models import load_task_model
from endofm.runner.precision import CastInference


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def bf16_weights_only(module: torch.nn.Module) -> bool:
    floats = [p.dtype for p in module.parameters() if p.is_floating_point()]
    return bool(floats) and set(floats) == {torch.bfloat16}


def test_extract_in_bf16_runs_the_cast_copy_close_to_fp32(tiny_backbone_dir, videos):
    path = videos / "a.mp4"
    encoders = {p: VideoEncoder(tiny_backbone_dir, 4, 2, 8, device="cpu", precision=p)
                for p in ("fp32", "bf16")}
    assert isinstance(encoders["bf16"].extractor, CastInference)
    assert bf16_weights_only(encoders["bf16"].extractor)
    assert encoders["fp32"].extractor.backbone is encoders["fp32"].backbone
    assert all(p.dtype == torch.float32 for p in encoders["bf16"].backbone.parameters())
    (want, windows), (got, cast_windows) = (encoders[p].encode(path) for p in ("fp32", "bf16"))
    assert got.dtype == np.float32 and got.shape == want.shape
    assert [w.frames.tolist() for w in windows] == [w.frames.tolist() for w in cast_windows]
    assert cosine_rows(got, want).min() > 0.99


def test_predict_in_bf16_runs_the_cast_copy_close_to_fp32(task_dirs, videos):
    task_model = load_task_model(task_dirs["classification"])
    predictors = {p: make_predictor(task_model, frame_step=2, device="cpu", precision=p)
                  for p in ("fp32", "bf16")}
    assert predictors["fp32"].call_model is predictors["fp32"].model is task_model.model
    assert isinstance(predictors["bf16"].call_model, CastInference)
    assert bf16_weights_only(predictors["bf16"].call_model)
    assert all(p.dtype == torch.float32 for p in task_model.model.parameters())
    job = predictors["fp32"].job(videos / "a.mp4")
    batches = {p: list(predictors[p].run([job])) for p in ("fp32", "bf16")}
    clips = torch.cat([out.clips for out in batches["fp32"]])
    logits = {}
    with torch.inference_mode():
        for precision, predictor in predictors.items():
            x = predictor.prepare(clips)
            logits[precision] = predictor.runner.call(predictor.model_fn, x).numpy()
    assert logits["bf16"].dtype == np.float32
    assert cosine_rows(logits["bf16"], logits["fp32"]).min() > 0.99
    probs = {p: np.concatenate([out.outputs for out in b]) for p, b in batches.items()}
    np.testing.assert_allclose(probs["bf16"], probs["fp32"], atol=0.02)
