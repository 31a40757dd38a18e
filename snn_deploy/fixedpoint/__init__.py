"""Loihi fixed-point arithmetic: the one definition every snn-deploy backend uses or is tested against."""

from snn_deploy.fixedpoint.lif import LIFParams, LIFState, lif_run, lif_step, trunc_shift, wrap_u

__all__ = ["LIFParams", "LIFState", "lif_run", "lif_step", "trunc_shift", "wrap_u"]
