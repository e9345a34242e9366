"""The windowed inference runner shared by every command that runs a model over video:
window plans (``windows``), decoding in workers (``stream``), the runner with its model seam
(``runner``) and ``torch.compile`` for inference (``compile``)."""

from endofm.runner.runner import RunnerSettings, WindowModel, WindowOutput, WindowRunner
from endofm.runner.stream import FrameMaker, FrameSize, NativeFrames, VideoJob, stream_windows
from endofm.runner.windows import (
    CentredPlan,
    ClipList,
    Window,
    WindowPlan,
    WindowSpec,
    target_frame,
)

__all__ = ["CentredPlan", "ClipList", "FrameMaker", "FrameSize", "NativeFrames", "RunnerSettings",
           "VideoJob", "Window", "WindowModel", "WindowOutput", "WindowPlan", "WindowRunner",
           "WindowSpec", "stream_windows", "target_frame"]
