"""The deployed integer graph: the hub every frontend produces and every backend and hardware model reads.

Ground floor (imports only :mod:`snn_deploy.fixedpoint` and :mod:`snn_deploy.errors`): the node classes and their
meaning (:mod:`.nodes`), worst-case value bounds (:mod:`.bounds`), the hardware target profiles (:mod:`.profiles`)
the checks of whether a graph fits a target (:mod:`.checks`), and what a run of a graph measured (:mod:`.activity`).
"""

from snn_deploy.graph.activity import PRODUCT_COUNTS, Activity, EventCounts, Raster, conv_sources
from snn_deploy.graph.bounds import conv_row_l1, conv_sum_bound, current_bounds, product_sum_bound, value_bounds
from snn_deploy.graph.checks import Problem, netx_features, refuse_features, summarize, target_problems
from snn_deploy.graph.nodes import (
    ATTENTION_LOWERINGS,
    CONV_ROLES,
    NODE_TYPES,
    WEIGHT_DTYPE,
    ConvNode,
    ConvRole,
    Graph,
    InputNode,
    LIFNode,
    Node,
    ReadoutNode,
    Shape,
    SigmaDeltaNode,
    SpikeProductNode,
    SumNode,
    analog_input_layer,
    attention_problem,
    conv_output_hw,
    input_sequence,
)
from snn_deploy.graph.profiles import (
    CMOS_45NM, DEFAULT_PROFILE, LOIHI, LOIHI2, PROFILES, Figure, HardwareProfile, Source, profile,
)

__all__ = [
    "ATTENTION_LOWERINGS", "attention_problem", "PRODUCT_COUNTS", "Activity", "EventCounts", "Raster", "conv_sources",
    "CMOS_45NM", "CONV_ROLES", "DEFAULT_PROFILE",
    "LOIHI", "LOIHI2", "NODE_TYPES", "PROFILES", "WEIGHT_DTYPE", "ConvNode", "ConvRole", "Figure",
    "Graph", "HardwareProfile", "InputNode", "LIFNode", "Node", "Problem", "ReadoutNode", "Shape",
    "SigmaDeltaNode", "Source",
    "SpikeProductNode", "SumNode", "analog_input_layer", "conv_output_hw", "conv_row_l1", "conv_sum_bound", "current_bounds",
    "input_sequence", "netx_features", "product_sum_bound", "refuse_features", "profile", "summarize", "target_problems", "value_bounds",
]
