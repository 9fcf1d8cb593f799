"""Generate the Python stubs of FLARE's contracts (run by `make proto`).

The stubs are committed; tests/test_proto_stubs.py fails when they are stale.
The output mirrors each proto's package, so `flare/simulator/v1/simulator_pb2.py`
imports as `flare.simulator.v1.simulator_pb2` and `flare/learner/v1/learner_pb2.py` as
`flare.learner.v1.learner_pb2`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
# the simulator contract, and the learner's
PROTOS = ("flare/simulator/v1/simulator.proto", "flare/learner/v1/learner.proto")


def generate(out_dir: Path) -> None:
    """Write NAME_pb2.py, NAME_pb2.pyi and NAME_pb2_grpc.py of every proto under out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for proto in PROTOS:
        args = [
            "grpc_tools.protoc",
            f"-I{ROOT / 'protos'}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            str(ROOT / "protos" / proto),
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {proto}")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
