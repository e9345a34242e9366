import pytest
import torch

from endofm.utils.device import (
    autocast,
    check_precision,
    make_grad_scaler,
    resolve_device,
    resolve_precision,
)


def test_resolve_device_auto_and_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a CPU-only machine")
def test_resolve_device_cuda_without_gpu_is_an_error():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        resolve_device("cuda")


def test_an_unknown_device_name_is_one_clear_error():
    with pytest.raises(ValueError, match=r"unknown device 'gpu': use auto, cpu, cuda or cuda:N"):
        resolve_device("gpu")


def test_precision_validation():
    with pytest.raises(ValueError) as err:
        check_precision("fp8")
    assert str(err.value) == "precision must be one of fp32, bf16, fp16, got 'fp8'"
    with pytest.raises(ValueError) as err:
        resolve_precision("fp8", torch.device("cpu"))
    assert str(err.value) == "precision must be one of auto, fp32, bf16, fp16, got 'fp8'"


def test_autocast_bf16_changes_matmul_dtype_and_fp32_does_not():
    a = torch.randn(4, 4)
    with autocast(torch.device("cpu"), "bf16"):
        assert (a @ a).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), "fp32"):
        assert (a @ a).dtype == torch.float32


def test_grad_scaler_enabled_only_for_fp16():
    cpu = torch.device("cpu")
    assert make_grad_scaler(cpu, "fp16").is_enabled()
    assert not make_grad_scaler(cpu, "bf16").is_enabled()
