"""Reads the history rows of an offline W&B run file (run-<id>.wandb): a LevelDB-style log of protobuf
`Record`s (7-byte file header, 32 KiB blocks, each chunk with a 7-byte header: crc, length, type)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK, CHUNK_HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[bytes]:
    data, pos, out, pending = Path(path).read_bytes(), 7, [], b""
    assert data[:4] == b":W&B", "not a W&B run file"
    while pos + CHUNK_HEADER <= len(data):
        if BLOCK - pos % BLOCK < CHUNK_HEADER:
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + CHUNK_HEADER])
        pos += CHUNK_HEADER
        if kind == 0 and length == 0:
            break
        chunk, pos = data[pos:pos + length], pos + length
        if kind == FULL:
            out.append(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            out.append(pending + chunk)
    return out


def history(path: Path) -> list[dict]:
    """Every logged row: {key: value} with W&B's own keys (_step, _runtime, ...) included."""
    from wandb.proto import wandb_internal_pb2 as pb

    rows = []
    for raw in records(path):
        record = pb.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                         for item in record.history.item})
    return rows
