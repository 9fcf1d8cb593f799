"""The committed stubs are exactly what `make proto` generates from protos/."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ["simulator_pb2.py", "simulator_pb2.pyi", "simulator_pb2_grpc.py"]


def _codegen():
    spec = importlib.util.spec_from_file_location(
        "run_codegen", ROOT / "scripts" / "run_codegen.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_stubs_are_fresh(tmp_path):
    _codegen().generate(tmp_path)
    for name in GENERATED:
        fresh = (tmp_path / "flare" / "simulator" / "v1" / name).read_text()
        committed = (ROOT / "flare" / "simulator" / "v1" / name).read_text()
        assert committed == fresh, f"flare/simulator/v1/{name} is stale: run `make proto`"


def test_stubs_import_from_their_package():
    from flare.simulator.v1 import simulator_pb2, simulator_pb2_grpc

    assert simulator_pb2.DESCRIPTOR.package == "flare.simulator.v1"
    assert hasattr(simulator_pb2_grpc, "SimulatorServicer")
