"""Simulation, core mapping and cost estimation of exported bundles."""
