"""One module per detector, each with a config model and a pure ``detect``."""

from hitl_prescreen.detectors.base import EMPTY_CONTEXT, Detector, ScreenContext

__all__ = ["EMPTY_CONTEXT", "Detector", "ScreenContext"]
