"""The whylogs side of benchmarks/versus_whylogs.py; runs in .venv-whylogs (benchmarks/whylogs_env.py).

Imports nothing of this project. Prints one JSON object on stdout.

    whylogs_job.py parquet PATH          # the whole job: read the file with pandas, profile it
    whylogs_job.py profile PATH          # read (not timed), then time why.log(df) alone
    whylogs_job.py ingest FORMAT FRAMES POLL
        # FRAMES: Kafka message values, each a u32 big-endian length and the bytes, as
        # versus_whylogs.py wrote them; FORMAT ndjson or arrow. Per poll of POLL messages:
        # decode the messages into one DataFrame of the features and the prediction (what a
        # whylogs user writes: json.loads per line, or Arrow IPC → pandas), why.log it and
        # merge its profile into the running one — timed from the first poll to the last merge.

How whylogs is called follows its documentation for pandas input: ``why.log(df)`` returns a
result set whose ``view()`` is the dataset profile view; views merge with ``merge``.
"""

from __future__ import annotations

import json
import struct
import sys
import time

started = time.perf_counter()

import pandas as pd  # noqa: E402
import whylogs as why  # noqa: E402


def _frames(path: str) -> list[bytes]:
    data = open(path, "rb").read()
    out, at = [], 0
    while at < len(data):
        (size,) = struct.unpack_from(">I", data, at)
        out.append(data[at + 4 : at + 4 + size])
        at += 4 + size
    return out


def _ndjson_frame(values: list[bytes]) -> pd.DataFrame:
    rows = []
    for value in values:
        for line in value.splitlines():
            if line:
                record = json.loads(line)
                rows.append({**record["features"], "prediction": record["prediction"]})
    return pd.DataFrame.from_records(rows)


def _arrow_frame(values: list[bytes]) -> pd.DataFrame:
    import pyarrow as pa

    tables = []
    for value in values:
        with pa.ipc.open_stream(pa.BufferReader(value)) as reader:
            tables.append(reader.read_all())
    table = pa.concat_tables(tables)
    keep = [c for c in table.column_names if c.startswith("f.") or c == "prediction"]
    return table.select(keep).to_pandas()


def main(argv: list[str]) -> dict[str, object]:
    mode = argv[0]
    if mode == "parquet":
        frame = pd.read_parquet(argv[1])
        view = why.log(frame).view()
        ended = time.perf_counter()
        return {"seconds_in_process": ended - started, "columns": len(view.get_columns()), "rows": len(frame)}
    if mode == "profile":
        frame = pd.read_parquet(argv[1])
        begun, cpu = time.perf_counter(), time.process_time()
        view = why.log(frame).view()
        return {
            "seconds": time.perf_counter() - begun,
            "cpu_seconds": time.process_time() - cpu,
            "values": int(frame.size),
            "columns": len(view.get_columns()),
        }
    if mode == "ingest":
        fmt, path, poll = argv[1], argv[2], int(argv[3])
        frames = _frames(path)
        decode = _ndjson_frame if fmt == "ndjson" else _arrow_frame
        begun, cpu = time.perf_counter(), time.process_time()
        total, records = None, 0
        for at in range(0, len(frames), poll):
            frame = decode(frames[at : at + poll])
            records += len(frame)
            view = why.log(frame).view()
            total = view if total is None else total.merge(view)
        seconds, cpu = time.perf_counter() - begun, time.process_time() - cpu
        assert total is not None
        return {"seconds": seconds, "cpu_seconds": cpu, "records": records, "columns": len(total.get_columns())}
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
