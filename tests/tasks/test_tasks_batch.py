import asyncio
import json
import shutil

import pytest

import pdfgen
from scripted_client import ScriptedClient
from fedinf.errors import BackendUnavailable, ConfigError
from fedinf.tasks import INVOICE, TaskRunner, run_batch


def make_inputs(tmp_path, n=6):
    d = tmp_path / "in"
    d.mkdir()
    paths = []
    for i in range(n):
        p = d / f"inv{i}.pdf"
        p.write_bytes(pdfgen.text_pdf([[f"Vendor {i} Ltd.", f"Invoice number: INV-{i:03d}",
                                        f"Invoice date: 2024-01-{i + 1:02d}", f"Total {i + 10}.50 EUR"]]))
        paths.append(p)
    (d / "broken.pdf").write_bytes(pdfgen.corrupt_pdf())
    shutil.copy(paths[0], d / "copy-of-inv0.pdf")  # same content under another name
    return sorted(d.iterdir())


def read(out):
    return [json.loads(line) for line in out.read_text().splitlines()]


def answer(body):
    text = body["messages"][-1]["content"]
    num = text.split("Invoice number: ")[1].split()[0]
    return {"issuer": None, "invoice_number": num, "invoice_date": None, "due_date": None, "currency": "EUR",
            "net_amount": None, "tax_amount": None, "total_amount": None, "line_items": []}


async def test_interrupted_batch_resumes_with_each_record_once(tmp_path):
    paths = make_inputs(tmp_path)
    out = tmp_path / "results.jsonl"
    gate = asyncio.Event()
    calls = 0

    class Stalling(ScriptedClient):
        async def chat(self, body):
            nonlocal calls
            calls += 1
            if calls > 3:
                await gate.wait()  # hangs: the run is "killed" while these are in flight
            return await super().chat(body)

    run = asyncio.create_task(run_batch(TaskRunner(Stalling(answer)), INVOICE, paths, out, concurrency=2))
    for _ in range(3000):  # up to 60 s on a loaded machine; usually a few hundred ms
        await asyncio.sleep(0.02)
        if out.exists() and len(out.read_text().splitlines()) >= 3:
            break
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    first = read(out)
    assert 3 <= len(first) < 7
    with out.open("a") as fh:
        fh.write('{"task": "invoice", "name": "torn')  # a write cut short by the kill

    events = []
    summary = await run_batch(TaskRunner(ScriptedClient(answer)), INVOICE, paths, out, concurrency=3,
                              on_event=events.append)
    records = read(out)
    hashes = [r["sha256"] for r in records]
    assert len(hashes) == len(set(hashes)) == 7  # 6 invoices + the broken one; the copy is the same document
    names = {r["name"] for r in records}
    assert names >= {f"inv{i}.pdf" for i in range(1, 6)} | {"broken.pdf"}
    assert len(names & {"inv0.pdf", "copy-of-inv0.pdf"}) == 1
    assert summary.skipped == len(first) and summary.duplicates == 1
    assert summary.ok + summary.errors == 7 - len(first)
    broken = next(r for r in records if r["name"] == "broken.pdf")
    assert broken["status"] == "error" and broken["error"]["code"] == "invalid_document"
    ok = [r for r in records if r["status"] == "ok"]
    assert all(r["result"]["record"]["invoice_number"] == "INV-00" + r["name"][-5] for r in ok)
    assert events[0]["event"] == "start" and {e["event"] for e in events[1:]} <= {"done", "skipped", "duplicate"}

    again = await run_batch(TaskRunner(ScriptedClient(answer)), INVOICE, paths, out)
    assert again.processed == 0 and again.skipped == 7 and len(read(out)) == 7


async def test_errors_are_recorded_and_retryable_ones_rerun(tmp_path):
    paths = make_inputs(tmp_path, n=2)
    out = tmp_path / "r.jsonl"
    s1 = await run_batch(TaskRunner(ScriptedClient(answer, fail=BackendUnavailable("down"))), INVOICE, paths, out)
    assert s1.errors == 3 and s1.error_codes == {"backend_unavailable": 2, "invalid_document": 1}
    s2 = await run_batch(TaskRunner(ScriptedClient(answer)), INVOICE, paths, out)
    assert s2.ok == 2 and s2.skipped == 1  # the corrupt file is not retried; the unavailable ones are
    records = read(out)
    assert len(records) == 3 and sorted(r["status"] for r in records) == ["error", "ok", "ok"]
    assert s2.to_dict()["docs_per_minute"] > 0


async def test_out_file_of_another_task_is_refused(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text(json.dumps({"task": "utility_bill", "sha256": "x", "status": "ok"}) + "\n")
    with pytest.raises(ConfigError):
        await run_batch(TaskRunner(ScriptedClient(answer)), INVOICE, [], out)


async def test_oversized_file_is_an_error_record(tmp_path):
    big = tmp_path / "big.pdf"
    big.write_bytes(pdfgen.huge_pdf(150_000))
    spec = INVOICE.model_copy(update={"limits": INVOICE.limits.model_copy(update={"max_document_bytes": 100_000})})
    out = tmp_path / "r.jsonl"
    s = await run_batch(TaskRunner(ScriptedClient(answer)), spec, [big], out)
    assert s.error_codes == {"payload_too_large": 1}
    assert len(read(out)[0]["sha256"]) == 64
