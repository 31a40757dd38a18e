"""Cost of validating report.json with jsonschema (sims/schema.py), for a report and for copies with more cores.

    scripts/run python benchmarks/schema_validation.py REPORT_DIR [--scale 1 10 50]

REPORT_DIR is a `snn-deploy report` output. Prints the time to check the schema itself and to validate the
report with its core list repeated ``scale`` times (a larger model's report has more cores, the rest is alike).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    from jsonschema import Draft202012Validator

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report_dir", type=Path)
    parser.add_argument("--scale", type=int, nargs="+", default=[1, 10, 50])
    args = parser.parse_args()
    report = json.loads((args.report_dir / "report.json").read_text())
    schema = json.loads((args.report_dir / "report.schema.json").read_text())
    start = time.perf_counter()
    Draft202012Validator.check_schema(schema)
    print(f"check the schema: {1e3 * (time.perf_counter() - start):.0f} ms")
    validator = Draft202012Validator(schema)
    for scale in args.scale:
        copy = dict(report, cores=report["cores"] * scale)
        start = time.perf_counter()
        errors = list(validator.iter_errors(copy))
        print(f"validate {len(copy['cores'])} cores: {1e3 * (time.perf_counter() - start):.0f} ms, {len(errors)} errors")


if __name__ == "__main__":
    main()
