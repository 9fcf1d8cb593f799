"""The committed stubs are exactly what `make proto` generates from protos/."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ["simulator_pb2.py", "simulator_pb2.pyi", "simulator_pb2_grpc.py"]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # (dataclasses look their module up there)
    spec.loader.exec_module(module)
    return module


def test_committed_stubs_are_fresh(tmp_path):
    _script("run_codegen").generate(tmp_path)
    for name in GENERATED:
        fresh = (tmp_path / "flare" / "simulator" / "v1" / name).read_text()
        committed = (ROOT / "flare" / "simulator" / "v1" / name).read_text()
        assert committed == fresh, f"flare/simulator/v1/{name} is stale: run `make proto`"


def test_stubs_import_from_their_package():
    from flare.simulator.v1 import simulator_pb2, simulator_pb2_grpc

    assert simulator_pb2.DESCRIPTOR.package == "flare.simulator.v1"
    assert hasattr(simulator_pb2_grpc, "SimulatorServicer")


def test_wire_reference_is_fresh():
    committed = (ROOT / "docs" / "wire-reference.md").read_text()
    assert committed == _script("proto_reference").reference(), (
        "docs/wire-reference.md is stale: run `make proto`"
    )


def test_every_message_field_value_and_rpc_is_commented():
    reference = _script("proto_reference")
    _, blocks = reference.parse(reference.PROTO.read_text())
    assert {b.kind for b in blocks} == {"message", "enum", "service"}
    undocumented = [b.name for b in blocks if not b.doc]
    undocumented += [f"{b.name}.{e.cells[0]}" for b in blocks for e in b.entries if not e.doc]
    assert not undocumented, f"add a comment above: {undocumented}"
