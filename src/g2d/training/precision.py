"""Mixed precision (`precision` in params.yaml): forward passes under torch.autocast, losses in float32.

`fp32` changes nothing. `bf16` and `fp16` run the models' forward passes under autocast on the
device's type (matrix products and convolutions in the lower precision, reductions and norms as
autocast decides); their outputs are cast back to float32, so every loss term (cross-entropy, KL,
feature MSE) and every metric is computed in float32. `fp16` also scales the loss
(torch.amp.GradScaler, CUDA only) so small gradients do not underflow: gradients are unscaled
(`unscale`) before any rule reads them (OGM-GE's and AGM's coefficients, SMP's gating, MLA's
projection), and a step whose gradients overflowed is skipped by the scaler. bf16 has float32's
range and needs no scaling.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from g2d.config.schema import ConfigError
from g2d.models.student import StudentOutput

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """How a model's forward and backward passes run on `device` at precision `name` (fp32, bf16, fp16)."""

    def __init__(self, name: str = "fp32", device: torch.device | str = "cpu") -> None:
        device = torch.device(device)
        if name not in ("fp32", *DTYPES):
            raise ConfigError(f"precision: {name!r} is not allowed; choose fp32, bf16 or fp16")
        if name == "fp16" and device.type != "cuda":
            raise ConfigError(
                f"precision: fp16 needs CUDA (loss scaling and fp16 kernels), and the device is {device}; "
                "use bf16 or fp32 on the CPU"
            )
        self.name = name
        self.device = device
        self.scaler = torch.amp.GradScaler(device.type) if name == "fp16" else None

    @property
    def dtype(self) -> torch.dtype:
        """The dtype autocast computes in (float32 for fp32)."""
        return DTYPES.get(self.name, torch.float32)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Forward passes inside run in the lower precision (nothing changes for fp32)."""
        if self.name == "fp32":
            yield
            return
        with torch.autocast(device_type=self.device.type, dtype=self.dtype):
            yield

    def run(self, model: torch.nn.Module, *inputs: Any) -> Any:
        """`model(*inputs)` under autocast, its tensors cast back to float32 (the losses' precision)."""
        with self.autocast():
            out = model(*inputs)
        return as_float(out)

    def backward(self, loss: torch.Tensor) -> None:
        """Backward of `loss`, scaled first under fp16."""
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Divide the gradients by the loss scale (fp16), so rules that read or change them see the true
        gradients; at most once per step."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """The optimizer step; under fp16 skipped when a gradient overflowed, and the scale updated."""
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        """The loss scaler's state (empty without one), saved with a run's resume state."""
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


FP32 = Precision()  # the default everywhere a precision is not given: plain float32


def as_float(out: Any) -> Any:
    """A model's outputs with every floating tensor in float32 (a tensor, a tuple of them, or a StudentOutput)."""
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, tuple):
        return tuple(as_float(o) for o in out)
    if isinstance(out, dict):
        return {k: as_float(v) for k, v in out.items()}
    if isinstance(out, StudentOutput):
        return StudentOutput(features=as_float(out.features), logits=as_float(out.logits), fused=as_float(out.fused))
    return out
