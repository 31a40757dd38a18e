"""Backends that run a graph, and their one registry (simulator, Lava, ONNX Runtime, lava-dl netx, the torch
reference)."""
