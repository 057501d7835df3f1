"""mnv2deploy: MobileNetV2 from the paper to the phone."""

__version__ = "0.1.0"

from .weights import mobilenet_v2  # noqa: E402  (light: torch is imported when a model is built)

__all__ = ["mobilenet_v2", "__version__"]
