"""The committed stubs and references are exactly what `make proto` generates from protos/."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# each contract's package directory, and the stem of its generated files
CONTRACTS = {"flare/simulator/v1": "simulator", "flare/learner/v1": "learner"}
GENERATED = ["{}_pb2.py", "{}_pb2.pyi", "{}_pb2_grpc.py"]
REFERENCES = {
    "simulator": "docs/wire-reference.md",
    "learner": "docs/learner-reference.md",
}


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # (dataclasses look their module up there)
    spec.loader.exec_module(module)
    return module


def _proto(stem: str) -> Path:
    return ROOT / "protos" / "flare" / stem / "v1" / f"{stem}.proto"


def test_committed_stubs_are_fresh(tmp_path):
    _script("run_codegen").generate(tmp_path)
    for package, stem in CONTRACTS.items():
        for name in (pattern.format(stem) for pattern in GENERATED):
            fresh = (tmp_path / package / name).read_text()
            committed = (ROOT / package / name).read_text()
            assert committed == fresh, f"{package}/{name} is stale: run `make proto`"


def test_stubs_import_from_their_package():
    from flare.learner.v1 import learner_pb2, learner_pb2_grpc
    from flare.simulator.v1 import simulator_pb2, simulator_pb2_grpc

    assert simulator_pb2.DESCRIPTOR.package == "flare.simulator.v1"
    assert hasattr(simulator_pb2_grpc, "SimulatorServicer")
    assert learner_pb2.DESCRIPTOR.package == "flare.learner.v1"
    assert hasattr(learner_pb2_grpc, "LearnerServicer")


@pytest.mark.parametrize("stem", sorted(REFERENCES))
def test_references_are_fresh(stem):
    path = REFERENCES[stem]
    committed = (ROOT / path).read_text()
    assert committed == _script("proto_reference").reference(_proto(stem)), (
        f"{path} is stale: run `make proto`"
    )


def test_the_script_writes_every_reference():
    written = _script("proto_reference").REFERENCES
    assert {p.relative_to(ROOT).as_posix() for p in written.values()} == set(REFERENCES.values())
    assert set(written) == {_proto(stem) for stem in REFERENCES}


@pytest.mark.parametrize("stem", sorted(REFERENCES))
def test_every_message_field_value_and_rpc_is_commented(stem):
    reference = _script("proto_reference")
    _, blocks = reference.parse(_proto(stem).read_text())
    assert {b.kind for b in blocks} == {"message", "enum", "service"}
    undocumented = [b.name for b in blocks if not b.doc]
    undocumented += [f"{b.name}.{e.cells[0]}" for b in blocks for e in b.entries if not e.doc]
    assert not undocumented, f"add a comment above: {undocumented}"
