"""Frontends: what produces a deployed graph (the zoo's lowering, a model file's export, lava-dl netx import)."""
