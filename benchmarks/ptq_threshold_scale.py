"""Does clipping the largest weights (a larger vth, finer resolution for the rest) help post-training quantization?

Usage: python benchmarks/ptq_threshold_scale.py MODEL.pt [--calibrate digits] [--factors 1,1.25,1.5,2]

Quantizes MODEL (a ``loihi`` or ``float`` model file trained on digits, e.g. by ``snn-deploy train``) with every
unit's vth multiplied by each factor (weights beyond 8 bit then clip), and prints for each factor the clipped
weights, test accuracy before and after, changed predictions and the first / mean / lowest per-layer spike
agreement on all 355 test digits (``snn_deploy.quant_check``). Factor 1 is what ``snn_deploy.quant`` does.
"""

from __future__ import annotations

import argparse
import copy
from unittest import mock

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--calibrate", help="data set whose training images set the input scale (float models)")
    parser.add_argument("--factors", default="1,1.25,1.5,2")
    args = parser.parse_args()
    torch.set_num_threads(1)

    import snn_deploy.quant as quant
    from snn_deploy.data.tensors import dataset_tensors
    from snn_deploy.fixedpoint import limits as L
    from snn_deploy.modelfile import load_model
    from snn_deploy.quant_check import compare_quantized

    model_file = load_model(args.model)
    config = model_file.model.config
    x, y = dataset_tensors(config, "digits", "test", 355, None)
    calibration = dataset_tensors(config, args.calibrate, "train", 256, None)[0] if args.calibrate else None
    choose = quant.choose_vth_and_exponent
    for factor in (float(f) for f in args.factors.split(",")):
        def scaled(weight_max_abs: float, tau_theta: float, factor: float = factor) -> tuple[int, int]:
            vth, exp = choose(weight_max_abs, tau_theta)
            return min(int(vth * factor), L.VTH_RANGE[1]), exp

        model = copy.deepcopy(model_file.model)
        with mock.patch.object(quant, "choose_vth_and_exponent", scaled):
            report = quant.quantize(model, calibration)
        check = compare_quantized(model_file.model, model, x, y)
        agreements = [row.agreement for row in check.layers]
        print(f"factor {factor:4}: {sum(u.weights_clipped for u in report.units):5d} weights clipped, accuracy "
              f"{100 * check.accuracy_before:.2f} % -> {100 * check.accuracy_after:.2f} % "
              f"({check.prediction_mismatches} changed), agreement first {100 * agreements[0]:.2f} % mean "
              f"{100 * sum(agreements) / len(agreements):.2f} % lowest {100 * min(agreements):.2f} %", flush=True)


if __name__ == "__main__":
    main()
