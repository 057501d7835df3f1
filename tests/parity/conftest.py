from runtimes.conftest import images, onnx_fp32, onnx_int8, tflite_fp32, tflite_int8  # noqa: F401  (shared fixtures)
