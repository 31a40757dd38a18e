"""File formats a graph is written to: the bundle and its checks, ONNX and lava-dl netx."""
