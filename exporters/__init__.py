"""Lowering of trained models to NIR, and from NIR to Lava processes, ONNX and lava-dl netx."""
