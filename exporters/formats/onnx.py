"""The deployed graph as ONNX: onnxruntime runs it bit-exactly like
:func:`~snn_deploy.sims.backends.simulator.simulate`.

Input ``payload``: int64 [T, B, C, H, W], the integer payloads of :class:`~snn_deploy.graph.InputNode`
(``clip(round(x * scale), payload_range)``, one map per step; :func:`encode_input` makes them from float images as
the simulator does). The model clips it to ``payload_range`` itself, because the exactness proof below assumes it.
Outputs: ``spikes/<LIF node name>`` uint8 [T, B, C, H, W] for every LIF node (a sigma-delta node's graded
payloads, int64), and ``logits`` float64 [B, classes].

Layout: every tensor travels as [T * B, C, H, W] (step-major), so each synapse is one ONNX op over all steps at
once (the graph is functional: a node's step t needs only its inputs' step t); only the LIF recurrence is
unrolled over the T steps, and with it a recurrent conv (one Conv per step of the previous step's spikes). A
pipeline-fill graph (:attr:`Graph.pipeline_fill`, lava-dl's netx without a reset) runs on Lava's time axis as the
simulator does: the payload padded with zeros for the pipeline depth D, every synapse one step late, the LIFs
unrolled over T + D steps, each output read from its node's depth.

Arithmetic, and why it is exact:

* LIF: int64 ops only. ONNX integer ``Div`` truncates toward zero in onnxruntime (C++ ``/``), which is Loihi's
  ``trunc0``; u's 24-bit wrap is two ``Where``; v saturates with ``Clip``; see :mod:`snn_deploy.fixedpoint.lif`.
* Conv and spike product: onnxruntime has no integer convolution for these widths (and no float64 ``Conv``), so
  integers are cast to float32, convolved and cast back. Every partial sum of a float32 sum of integers is an
  integer no larger than ``max|x| * L1(weight row)``; below 2^24 all of them are exact whatever the summation
  order. :func:`value_bounds` proves that statically per node from the kernels and the worst-case input range
  (payload range, spikes, sums of those); a conv that cannot be proven exact is refused with a
  :class:`~snn_deploy.errors.UserError` naming it. Spike products fall back to float64 ``MatMul`` (exact below
  2^53) where float32 cannot be proven exact.
* Readout: float64 ``ReduceMean`` and ``Gemm``, the simulator's order of means (tokens, then steps).

Serialization is deterministic (fixed names, constant order, ``deterministic=True``): the same graph gives the
same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper

from snn_deploy.errors import UserError
from snn_deploy.fixedpoint import limits as L
from snn_deploy.graph import (
    ConvNode, Graph, InputNode, LIFNode, Node, ReadoutNode, SigmaDeltaNode, SpikeProductNode, SumNode,
    conv_sum_bound, input_sequence, product_sum_bound, refuse_features, value_bounds,
)
from snn_deploy.graph.checks import PIPELINE_FILL, SIGMA_DELTA
from snn_deploy.io import write_bytes_atomic

OPSET = 17
IR_VERSION = 8
"""ONNX IR version of opset 17: readable by every onnxruntime since 1.14."""
INPUT_NAME = "payload"
LOGITS_NAME = "logits"
SPIKES_PREFIX = "spikes/"

_NP_TYPES = {TensorProto.INT64: np.int64, TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64,
             TensorProto.BOOL: np.bool_, TensorProto.UINT8: np.uint8}


def encode_input(graph: Graph, x: torch.Tensor | np.ndarray) -> np.ndarray:
    """Float images [B, C, H, W] (repeated T times) or [T, B, C, H, W] -> the model's int64 ``payload`` input,
    exactly as the simulator encodes them (:func:`~snn_deploy.graph.input_sequence`)."""
    return input_sequence(graph, torch.as_tensor(x)).numpy().astype(np.int64, copy=False)


class _Builder:
    """Accumulates ONNX nodes and constants with deterministic names; remembers each graph node's output tensor
    and the casts already made of it, so every (value, dtype) exists once."""

    def __init__(self, graph: Graph, bounds: dict[str, int]) -> None:
        self.graph = graph
        self.bounds = bounds
        self.depths = graph.depths()
        self.fill = max(self.depths.values()) if graph.pipeline_fill else 0
        """Extra steps of a pipeline-fill graph (module docstring); 0 otherwise."""
        self.steps = graph.T + self.fill
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._constants: dict[tuple[str, tuple[int, ...], bytes], str] = {}
        self._values: dict[str, tuple[str, int]] = {}
        self._casts: dict[tuple[str, int], str] = {}
        self._count = 0

    # --- primitives ------------------------------------------------------------------------------------------
    def op(self, op_type: str, inputs: list[str], scope: str, *, outputs: int = 1, name: str | None = None,
           **attrs) -> str | list[str]:
        self._count += 1
        base = f"{scope}/{op_type}_{self._count}"
        outs = [name] if name is not None else [f"{base}:{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=base, **attrs))
        return outs[0] if outputs == 1 else outs

    def const(self, value: np.ndarray | int | float, dtype: int) -> str:
        """A constant initializer, shared by every use of the same value."""
        array = np.asarray(value, dtype=_NP_TYPES[dtype])
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._constants:
            name = f"const_{len(self._constants)}"
            self.initializers.append(numpy_helper.from_array(array, name))
            self._constants[key] = name
        return self._constants[key]

    def weight(self, node: Node, array: np.ndarray, dtype: int) -> str:
        name = f"{node.name}/weight"
        self.initializers.append(numpy_helper.from_array(np.asarray(array, dtype=_NP_TYPES[dtype]), name))
        return name

    def set_value(self, node: Node, tensor: str, dtype: int) -> None:
        self._values[node.name] = (tensor, dtype)

    def value(self, name: str, dtype: int, *, binary: bool = False) -> str:
        """Node ``name``'s output as ``dtype``; ``binary``: any non-zero value as 1 (ONNX casts non-zero to true)."""
        tensor, native = self._values[name]
        if binary and native != TensorProto.BOOL:
            tensor, native = self.value(name, TensorProto.BOOL), TensorProto.BOOL
        if native == dtype:
            return tensor
        if (tensor, dtype) not in self._casts:
            self._casts[(tensor, dtype)] = self.op("Cast", [tensor], name, to=dtype)
        return self._casts[(tensor, dtype)]

    def reshape(self, tensor: str, shape: list[int], scope: str) -> str:
        return self.op("Reshape", [tensor, self.const(shape, TensorProto.INT64)], scope)

    # --- graph nodes -----------------------------------------------------------------------------------------
    def later(self, tensor: str, node: Node) -> str:
        """``tensor`` [steps * B, ...] one step later (a synapse's latency on Lava's time axis): zeros first."""
        rows = self.reshape(tensor, [self.steps, -1], node.name)
        I64 = TensorProto.INT64
        head = self.op("Slice", [rows, self.const([0], I64), self.const([1], I64), self.const([0], I64)], node.name)
        zeros = self.op("Mul", [head, self.const(0, I64)], node.name)
        kept = self.op("Slice", [rows, self.const([0], I64), self.const([self.steps - 1], I64),
                                 self.const([0], I64)], node.name)
        shifted = self.op("Concat", [zeros, kept], node.name, axis=0)
        return self.reshape(shifted, [-1, *node.shape], node.name)

    def window(self, tensor: str, name: str) -> str:
        """[steps, ...] -> the node's functional steps [T, ...] (a pipeline-fill graph: from its depth on)."""
        if not self.fill:
            return tensor
        start, I64 = self.depths[name], TensorProto.INT64
        return self.op("Slice", [tensor, self.const([start], I64), self.const([start + self.graph.T], I64),
                                 self.const([0], I64)], name)

    def input(self, node: InputNode) -> None:
        lo, hi = node.payload_range
        source = INPUT_NAME
        if self.fill:  # zeros after the sample while it passes the pipeline
            pads = [0] * 5 + [self.fill, 0, 0, 0, 0]
            source = self.op("Pad", [INPUT_NAME, self.const(pads, TensorProto.INT64)], node.name)
        flat = self.reshape(source, [-1, *node.shape], node.name)
        clipped = self.op("Clip", [flat, self.const(lo, TensorProto.INT64), self.const(hi, TensorProto.INT64)],
                          node.name)
        self.set_value(node, clipped, TensorProto.INT64)

    def conv(self, node: ConvNode) -> None:
        if node.recurrent:  # computed step by step inside its LIF (:meth:`feedback`)
            return
        exact_bound = conv_sum_bound(node, self.bounds)
        if exact_bound >= L.FLOAT32_EXACT:
            raise UserError(f"ONNX export: conv {node.name!r} can reach partial sums of {exact_bound} >= 2^24, where "
                            "float32 is no longer exact, and onnxruntime has no float64 Conv; reduce its input range "
                            "or weights")
        x = self.value(node.inputs[0], TensorProto.FLOAT, binary=not node.graded)
        kh, kw = node.weight.shape[2:]
        y = self.op("Conv", [x, self.weight(node, node.weight, TensorProto.FLOAT)], node.name,
                    kernel_shape=[kh, kw], strides=list(node.stride), group=node.groups,
                    pads=[node.padding[0], node.padding[1], node.padding[0], node.padding[1]])
        if node.weight_exp:  # << e is x 2^e, exact in float
            y = self.op("Mul", [y, self.const(float(1 << node.weight_exp), TensorProto.FLOAT)], node.name)
        y = self.op("Cast", [y], node.name, to=TensorProto.INT64)
        self.set_value(node, self.later(y, node) if self.fill else y, TensorProto.INT64)

    def add_all(self, tensors: list[str], scope: str) -> str:
        total = tensors[0]
        for other in tensors[1:]:
            total = self.op("Add", [total, other], scope)
        return total

    def sum(self, node: SumNode) -> None:
        summed = self.add_all([self.value(i, TensorProto.INT64) for i in node.inputs], node.name)
        self.set_value(node, summed, TensorProto.INT64)

    def spike_product(self, node: SpikeProductNode) -> None:
        exact_bound = product_sum_bound(node, [self.bounds[i] for i in node.inputs])
        if exact_bound >= L.FLOAT64_EXACT:
            raise UserError(f"ONNX export: spike product {node.name!r} can reach sums of {exact_bound} >= 2^53, "
                            "beyond exact float64")
        dtype = TensorProto.FLOAT if exact_bound < L.FLOAT32_EXACT else TensorProto.DOUBLE
        c, h, w = node.shape
        heads = [self.reshape(self.value(i, dtype), [-1, node.heads, c // node.heads, h * w], node.name)
                 for i in node.inputs]  # [T*B, heads, d, tokens]: the transposes of q_h, k_h, v_h
        q_t, k_t, v_t = heads
        kv_t = self.op("MatMul", [v_t, self.op("Transpose", [k_t], node.name, perm=[0, 1, 3, 2])], node.name)
        out_t = self.op("MatMul", [kv_t, q_t], node.name)  # (q (k^T v))^T = (k^T v)^T q^T
        out = self.op("Cast", [self.reshape(out_t, [-1, c, h, w], node.name)], node.name, to=TensorProto.INT64)
        if node.multiplier != 1:
            out = self.op("Mul", [out, self.const(node.multiplier, TensorProto.INT64)], node.name)
        self.set_value(node, self.later(out, node) if self.fill else out, TensorProto.INT64)

    def lif(self, node: LIFNode) -> None:
        """Loihi's CUBA LIF unrolled over T steps, with :func:`snn_deploy.fixedpoint.lif_step`'s arithmetic."""
        I64, name, steps = TensorProto.INT64, node.name, self.steps
        params = node.params()
        bias = params.bias().numpy()
        decay_u, decay_v = params.decay_factors()
        source = self.graph[node.inputs[0]]
        recurrent = {c.name: (c, self.weight(c, c.weight, TensorProto.FLOAT))
                     for c in self.graph.recurrent_synapses(name)}
        if isinstance(source, InputNode) and source.drive == "bias":  # payloads join the bias mantissa each step
            exp = np.unique(node.bias_exp)
            if exp.size != 1 or exp[0] < 0:
                raise UserError(f"ONNX export: LIF {name!r} reads a bias input with per-channel or negative bias "
                                "exponents; only one exponent >= 0 is exported")
            mant = self.op("Add", [self.value(source.name, I64), self.const(node.bias_mant.reshape(-1, 1, 1), I64)],
                           name)
            per_step = self.op("Mul", [mant, self.const(1 << int(exp[0]), I64)], name)
            biases = self.op("Split", [per_step], name, outputs=steps, axis=0) if steps > 1 else [per_step]
            zero = self.op("Mul", [per_step, self.const(0, I64)], name)
            inputs = self.op("Split", [zero], name, outputs=steps, axis=0) if steps > 1 else [zero]
            u_bounds = [0] * steps
        else:
            a_in = self.add_all([self.value(i, I64) for i in node.inputs], name)
            scaled = self.op("Mul", [a_in, self.const(1 << L.ACT_SHIFT, I64)], name)
            inputs = self.op("Split", [scaled], name, outputs=steps, axis=0) if steps > 1 else [scaled]
            u_bounds = _u_bounds(sum(self.bounds[i] for i in [*node.inputs, *recurrent]) << L.ACT_SHIFT, decay_u,
                                 steps)
            biases = [self.const(bias, I64)] * steps if bias.any() else None
        resets = set(self.graph.reset_steps(steps))
        threshold = self.const(params.threshold(), I64)
        u = v = None
        spikes = []
        for t in range(steps):
            if t and recurrent:  # the last step's spikes through the recurrent synapses
                inputs[t] = self.add_all([inputs[t], *(self.feedback(c, w, spikes[t - 1])
                                                       for c, w in recurrent.values())], name)
            if t in resets:  # the state restarts from zero (LIFReset)
                u = v = None
            u = inputs[t] if u is None or decay_u == 0 else self.op("Add", [self.decay(u, decay_u, name), inputs[t]],
                                                                     name)
            if u_bounds[t] >= L.UV_HALF:  # provably inside 24 bits otherwise: the wrap would be the identity
                u = self.wrap(u, name)
            v_in = u if v is None else self.op("Add", [self.decay(v, decay_v, name), u], name)
            if biases is not None:
                v_in = self.op("Add", [v_in, biases[t]], name)
            v_new = self.op("Clip", [v_in, self.const(L.V_MIN, I64), self.const(L.V_MAX, I64)], name)
            spike = self.op("Greater", [v_new, threshold], name)
            spikes.append(spike)
            if t < steps - 1:  # the last step's reset is never read
                v = self.op("Where", [spike, self.const(0, I64), v_new], name)
        out = self.op("Concat", spikes, name, axis=0) if steps > 1 else spikes[0]
        self.set_value(node, out, TensorProto.BOOL)

    def sigma_delta(self, node: SigmaDeltaNode) -> None:
        """Lava's Delta / SigmaDelta / Sigma unrolled over the steps, :func:`~snn_deploy.fixedpoint.sigma_delta.
        sigma_delta_step`'s arithmetic in int64: ``>> state_exp`` as ``(s - s mod 2^e) / 2^e`` (ONNX's integer Mod
        takes the divisor's sign, so this is the floor)."""
        I64, name, steps = TensorProto.INT64, node.name, self.steps
        params = node.sigma_delta_params()
        a_in = self.add_all([self.value(i, I64) for i in node.inputs], name)
        inputs = self.op("Split", [a_in], name, outputs=steps, axis=0) if steps > 1 else [a_in]
        sigma = act = residue = None
        outs = []
        for a in inputs:
            if params.mode != "delta":
                sigma = a if sigma is None else self.op("Add", [sigma, a], name)
            if params.mode == "sigma":
                outs.append(sigma)
                continue
            zero, unit = self.const(0, I64), self.const(1 << params.state_exp, I64)
            threshold = self.const(params.threshold(), I64)
            x = (self.op("Mul", [a, self.const(1 << params.scale_bits, I64)], name) if params.mode == "delta"
                 else self.op("Max", [self.op("Add", [sigma, self.const(params.scaled_bias().numpy(), I64)], name),
                                      zero], name))
            delta = x if act is None else self.op("Add", [self.op("Sub", [x, act], name), residue], name)
            sent = self.op("Where", [self.op("GreaterOrEqual", [self.op("Abs", [delta], name), threshold], name),
                                     delta, zero], name)
            residue, act = self.op("Sub", [delta, sent], name), x
            floor = self.op("Sub", [sent, self.op("Mod", [sent, unit], name)], name)
            outs.append(self.op("Div", [floor, unit], name))
        self.set_value(node, self.op("Concat", outs, name, axis=0) if steps > 1 else outs[0], I64)

    def feedback(self, node: ConvNode, weight: str, spikes: str) -> str:
        """A recurrent conv's currents ``<< ACT_SHIFT`` from one step's spikes (bool [B, C, H, W]): float32 Conv,
        exact below 2^24 like :meth:`conv`."""
        exact_bound = conv_sum_bound(node, self.bounds)
        if exact_bound >= L.FLOAT32_EXACT:
            raise UserError(f"ONNX export: recurrent conv {node.name!r} can reach partial sums of {exact_bound} >= "
                            "2^24, where float32 is no longer exact")
        x = self.op("Cast", [spikes], node.name, to=TensorProto.FLOAT)
        kh, kw = node.weight.shape[2:]
        y = self.op("Conv", [x, weight], node.name, kernel_shape=[kh, kw], strides=list(node.stride),
                    group=node.groups, pads=[node.padding[0], node.padding[1], node.padding[0], node.padding[1]])
        y = self.op("Cast", [y], node.name, to=TensorProto.INT64)
        return self.op("Mul", [y, self.const((1 << node.weight_exp) << L.ACT_SHIFT, TensorProto.INT64)], node.name)

    def decay(self, x: str, factor: int, scope: str) -> str:
        """``trunc0(x * factor / 4096)``: int64 Div truncates toward zero."""
        if factor == L.DECAY_UNITY:
            return x
        product = self.op("Mul", [x, self.const(factor, TensorProto.INT64)], scope)
        return self.op("Div", [product, self.const(L.DECAY_UNITY, TensorProto.INT64)], scope)

    def wrap(self, u: str, scope: str) -> str:
        """Lava's 24-bit wrap of u, one correction of 2^24 either way (:func:`~snn_deploy.fixedpoint.wrap_u`)."""
        I64, half, full = TensorProto.INT64, L.UV_HALF, 2 * L.UV_HALF
        low = self.op("Where", [self.op("LessOrEqual", [u, self.const(-half, I64)], scope),
                                self.op("Add", [u, self.const(full, I64)], scope), u], scope)
        return self.op("Where", [self.op("Greater", [u, self.const(half, I64)], scope),
                                 self.op("Sub", [u, self.const(full, I64)], scope), low], scope)

    def readout(self, node: ReadoutNode) -> None:
        c, h, w = self.graph[node.inputs[0]].shape
        x = self.reshape(self.value(node.inputs[0], TensorProto.DOUBLE), [self.steps, -1, c, h * w], node.name)
        x = self.window(x, node.inputs[0])
        if node.per_neuron:
            per_step = self.reshape(x, [self.graph.T, -1, c * h * w], node.name)
        else:
            per_step = self.op("ReduceMean", [x], node.name, axes=[3], keepdims=0)
        features = self.op("ReduceMean", [per_step], node.name, axes=[0], keepdims=0)
        self.op("Gemm", [features, self.weight(node, node.weight, TensorProto.DOUBLE),
                         self.const(node.bias, TensorProto.DOUBLE)], node.name, name=LOGITS_NAME, transB=1)


def _u_bounds(a_bound: int, decay_u: int, steps: int) -> list[int]:
    """Largest |u| before the wrap at each step, given |a_in << 6| <= ``a_bound`` and no wrap before."""
    bounds, u = [], 0
    for _ in range(steps):
        u = (u * decay_u >> L.DECAY_BITS) + a_bound
        bounds.append(u)
    return bounds


_DISPATCH = {InputNode: _Builder.input, ConvNode: _Builder.conv, LIFNode: _Builder.lif,
             SigmaDeltaNode: _Builder.sigma_delta, SumNode: _Builder.sum,
             SpikeProductNode: _Builder.spike_product, ReadoutNode: _Builder.readout}


MAX_UNROLLED_STEPS = 100_000
"""Largest T x (LIF layers) an ONNX model unrolls (the zoo's largest: 4 x ~100)."""


def to_onnx(graph: Graph, batch: int | None = None) -> onnx.ModelProto:
    """``graph`` unrolled over its T steps as an ONNX model (see the module docstring for inputs and outputs).

    ``batch``: a fixed batch size, or None for a symbolic ``batch`` dimension. Raises :class:`UserError` when
    a node cannot be computed exactly with onnxruntime's operators.
    """
    unrolled = (graph.T + (max(graph.depths().values()) if graph.pipeline_fill else 0)) * len(graph.of_kind(LIFNode))
    if unrolled > MAX_UNROLLED_STEPS:  # each LIF step is ~8 ONNX nodes: refuse before building millions
        raise UserError(f"ONNX export unrolls every LIF layer over T: T = {graph.T} x {len(graph.of_kind(LIFNode))} "
                        f"LIF layer(s) = {unrolled:,} steps, more than {MAX_UNROLLED_STEPS:,}; run fewer steps or use "
                        "another backend (sim, lava)")
    bounds = value_bounds(graph)
    _refuse_sigma_delta(graph, bounds)
    refuse_features(graph, "ONNX export", supported=("bias-driven input", "periodic state reset",
                                                     "recurrent synapses", PIPELINE_FILL, SIGMA_DELTA))
    readout = graph.classifier
    builder = _Builder(graph, bounds)
    for node in graph.nodes:
        _DISPATCH[type(node)](builder, node)
    batch_dim: int | str = "batch" if batch is None else batch
    outputs = []
    for node in graph.of_kind(LIFNode):
        name = SPIKES_PREFIX + node.name
        dtype = TensorProto.INT64 if isinstance(node, SigmaDeltaNode) else TensorProto.UINT8  # payloads, or spikes
        spikes = builder.value(node.name, dtype)
        if builder.fill:
            spikes = builder.reshape(spikes, [builder.steps, -1, *node.shape], node.name)
            spikes = builder.window(spikes, node.name)
        builder.op("Reshape", [spikes, builder.const([graph.T, -1, *node.shape], TensorProto.INT64)], node.name,
                   name=name)
        outputs.append(helper.make_tensor_value_info(name, dtype, [graph.T, batch_dim, *node.shape]))
    if readout is not None:  # a network without a classifier (an imported regression network) has no logits
        outputs.append(helper.make_tensor_value_info(LOGITS_NAME, TensorProto.DOUBLE,
                                                     [batch_dim, len(readout.bias)]))
    payload = helper.make_tensor_value_info(INPUT_NAME, TensorProto.INT64, [graph.T, batch_dim, *graph.input.shape])
    onnx_graph = helper.make_graph(builder.nodes, "snn_deploy", [payload], outputs, builder.initializers,
                                   doc_string=_encoding_doc(graph.input))
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name="snn-deploy",
                              doc_string="snn-deploy graph, bit-exact with snn_deploy.sims.backends.simulator.simulate")
    helper.set_model_props(model, {"T": str(graph.T), "input_scale": repr(graph.input.scale),
                                   "payload_bits": str(graph.input.payload_bits),
                                   "payload_signed": str(graph.input.signed).lower()})
    onnx.checker.check_model(model)
    return model


def _refuse_sigma_delta(graph: Graph, bounds: dict[str, int]) -> None:
    """Sigma-delta layers whose graded payloads (worst case ``2^(message_bits - 1) - 1``) meet a synapse whose
    partial sums can pass 2^24 cannot be exact in float32 Conv (onnxruntime has no float64 Conv): refused, naming
    the synapses and the reason."""
    inexact = [n.name for n in graph.of_kind(ConvNode)
               if isinstance(graph[n.inputs[0]], SigmaDeltaNode) and conv_sum_bound(n, bounds) >= L.FLOAT32_EXACT]
    if inexact:
        raise UserError(f"ONNX export cannot compute these sigma-delta payloads exactly: through {', '.join(inexact)} "
                        "they can reach partial sums >= 2^24, beyond exact float32, and onnxruntime has no float64 "
                        "Conv; run them with the simulator (sim), lava, or the netx backend on the netx file")


def _encoding_doc(node: InputNode) -> str:
    lo, hi = node.payload_range
    return (f"input {INPUT_NAME}: int64 [T, B, C, H, W] = clip(round(x * {node.scale!r}), {lo}, {hi}) per step; "
            f"outputs: {SPIKES_PREFIX}<LIF node> uint8 [T, B, C, H, W], {LOGITS_NAME} float64 [B, classes]")


def onnx_bytes(model: onnx.ModelProto) -> bytes:
    """The model's protobuf bytes, deterministic for equal models."""
    return model.SerializeToString(deterministic=True)


def save_onnx(model: onnx.ModelProto, path: Path | str) -> None:
    """Write ``model`` to ``path`` atomically (readers never see a partial file)."""
    write_bytes_atomic(Path(path), onnx_bytes(model))


def onnx_session(model_or_path: onnx.ModelProto | Path | str) -> ort.InferenceSession:
    """An onnxruntime CPU session; build one once to run many batches."""
    source = onnx_bytes(model_or_path) if isinstance(model_or_path, onnx.ModelProto) else str(model_or_path)
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"])


def run_onnx(model_or_path: onnx.ModelProto | Path | str | ort.InferenceSession, graph: Graph,
             x: torch.Tensor | np.ndarray) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Run float inputs ``x`` (as :func:`~snn_deploy.sims.backends.simulator.simulate` takes them) through the model.

    Returns (spikes, logits) in the simulator's types: LIF node name -> uint8 [T, B, C, H, W], float64 [B, classes].
    """
    session = model_or_path if isinstance(model_or_path, ort.InferenceSession) else onnx_session(model_or_path)
    payload = encode_input(graph, x)
    if payload.shape[0] != graph.T:
        raise UserError(f"the ONNX model is unrolled for T={graph.T} steps; got an input of {payload.shape[0]} steps")
    names = [o.name for o in session.get_outputs()]
    results = dict(zip(names, session.run(names, {INPUT_NAME: payload})))
    spikes = {name[len(SPIKES_PREFIX):]: torch.from_numpy(value) for name, value in results.items()
              if name.startswith(SPIKES_PREFIX)}
    return spikes, torch.from_numpy(results[LOGITS_NAME]) if LOGITS_NAME in results else None
