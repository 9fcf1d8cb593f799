"""Write each contract's message reference (Markdown) from its proto's comments.

    python scripts/proto_reference.py   # writes docs/wire-reference.md, docs/learner-reference.md

The protos are the single source of truth; tests/test_proto_stubs.py fails when a
reference is stale. Comments directly above a declaration document it.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTO = ROOT / "protos" / "flare" / "simulator" / "v1" / "simulator.proto"
REFERENCE = ROOT / "docs" / "wire-reference.md"
LEARNER_PROTO = ROOT / "protos" / "flare" / "learner" / "v1" / "learner.proto"
LEARNER_REFERENCE = ROOT / "docs" / "learner-reference.md"
# each proto, and the reference written from it
REFERENCES = {PROTO: REFERENCE, LEARNER_PROTO: LEARNER_REFERENCE}

BLOCK = re.compile(r"^(message|enum|service|oneof)\s+(\w+)\s*\{")
FIELD = re.compile(r"^(?:(repeated|optional)\s+)?([\w.<>, ]+?)\s+(\w+)\s*=\s*(\d+);")
VALUE = re.compile(r"^(\w+)\s*=\s*(-?\d+);")
PACKAGE = re.compile(r"^package\s+([\w.]+);", re.MULTILINE)
RPC = re.compile(r"^rpc\s+(\w+)\s*\((stream\s+)?(\w+)\)\s*returns\s*\((stream\s+)?(\w+)\)")


@dataclass
class Entry:
    """A field, an enum value or an rpc: one table row."""

    cells: list[str]
    doc: str


@dataclass
class Block:
    kind: str
    name: str
    doc: str
    entries: list[Entry] = field(default_factory=list)


def parse(text: str) -> tuple[str, list[Block]]:
    """The file's leading comment, and every top-level message, enum and service."""
    blocks: list[Block] = []
    stack: list[Block] = []
    comment: list[str] = []
    header: list[str] = []
    seen_code = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("//"):
            comment.append(line[2:].strip())
            continue
        doc, comment = " ".join(part for part in comment if part), []
        if not seen_code and doc:  # the file's leading comment introduces the reference
            header.append(doc)
            doc = ""
        if not line:
            continue
        seen_code = True
        if match := BLOCK.match(line):
            kind, name = match.groups()
            if kind == "oneof":  # its fields belong to the enclosing message
                stack.append(Block("oneof", name, doc))
                stack[-1].entries = stack[-2].entries
                continue
            block = Block(kind, name, doc)
            if not stack:
                blocks.append(block)
            if not line.endswith("}"):  # (`message Empty {}` opens and closes at once)
                stack.append(block)
        elif line.startswith("}"):
            stack.pop()
        elif stack and (match := RPC.match(line)):
            name, in_stream, request, out_stream, response = match.groups()
            request = f"stream {request}" if in_stream else request
            response = f"stream {response}" if out_stream else response
            stack[-1].entries.append(Entry([name, request, response], doc))
        elif stack and stack[-1].kind == "enum" and (match := VALUE.match(line)):
            stack[-1].entries.append(Entry([match.group(1), match.group(2)], doc))
        elif stack and (match := FIELD.match(line)):
            label, type_, name, number = match.groups()
            if stack[-1].kind == "oneof":
                label = f"oneof {stack[-1].name}"
            type_ = f"{label} {type_}" if label else type_
            stack[-1].entries.append(Entry([name, type_.replace("<", "&lt;"), number], doc))
    if not header:
        raise ValueError("the proto has no leading comment to introduce the reference")
    return header[0], blocks


def render(header: str, blocks: list[Block], source: str, package: str) -> str:
    heads = {"message": ["field", "type", "number"], "enum": ["value", "number"]}
    heads["service"] = ["rpc", "request", "response"]
    lines = [
        f"# Wire reference: `{package}`",
        "",
        f"Generated from `{source}` by `python scripts/proto_reference.py`; do not edit.",
        "",
        header,
        "",
    ]
    order = {"service": 0, "message": 1, "enum": 2}
    for block in sorted(blocks, key=lambda b: order[b.kind]):
        lines += [f"## {block.kind} `{block.name}`", "", block.doc, ""]
        columns = [*heads[block.kind], "meaning"]
        lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for entry in block.entries:
            cells = [f"`{entry.cells[0]}`", *(f"`{c}`" for c in entry.cells[1:]), entry.doc]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def reference(proto: Path = PROTO) -> str:
    """The Markdown reference of ``proto`` (the simulator contract by default)."""
    text = proto.read_text()
    package = PACKAGE.search(text)
    if package is None:
        raise ValueError(f"{proto} declares no package")
    header, blocks = parse(text)
    return render(header, blocks, str(proto.relative_to(ROOT)), package.group(1))


def main() -> int:
    for proto, path in REFERENCES.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(reference(proto))
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
