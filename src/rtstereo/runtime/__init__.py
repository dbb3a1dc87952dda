"""Backends (OpenCV, PyTorch, ONNX Runtime) and the Predictor that drives them."""
