"""Activation memory: graph readers (tflite, onnx), tensor lifetimes, runtime measurements, the paper's Table 3."""
