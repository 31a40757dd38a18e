"""Runs: inputs of a run, a data set through a backend with activity counted, and cross-backend verify."""
