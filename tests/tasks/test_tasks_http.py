"""Tasks over real HTTP on loopback: the Starlette app served by uvicorn, a real aiohttp client, the real gateway
pipeline (classify -> decide -> execute -> validate) with fake model backends."""

import asyncio
import base64
import json
import socket

import aiohttp
import pytest
import uvicorn

import pdfgen
from fedinf.config import Config
from fedinf.gateway import Gateway
from fedinf.server.app import create_app

ANSWER = {"issuer": "Brightwater Ltd.", "invoice_number": "INV-7", "invoice_date": "2024-01-02", "due_date": None,
          "currency": "EUR", "net_amount": None, "tax_amount": None, "total_amount": 12.5, "line_items": []}
TINY_TASK = {
    "name": "tiny", "prompt": "Total of: {document}", "policy": {"min_data_class": "internal"},
    "output_schema": {"type": "object", "properties": {"total_amount": {"type": ["number", "null"]}},
                      "required": ["total_amount"], "additionalProperties": False},
    "fields": {"total_amount": {"extractor": "total_amount", "normalize": "amount"}},
    "limits": {"max_document_bytes": 200000},
}


def config(state_dir, *, cloud_only: bool = False) -> Config:
    models = [{"id": "fake-cloud", "backend": "fake", "zone": "cloud", "license": "MIT",
               "capabilities": ["json_schema"], "options": {"reply": json.dumps(ANSWER)}}]
    if not cloud_only:
        models.append({"id": "fake-onprem", "backend": "fake", "zone": "onprem", "license": "MIT",
                       "capabilities": ["json_schema"], "options": {"reply": json.dumps(ANSWER)}})
    return Config.model_validate({
        "zones": {"onprem": {"kind": "onprem", "clearance": "restricted"},
                  "cloud": {"kind": "cloud", "clearance": "internal"}},
        "models": models, "routes": {"auto": [m["id"] for m in models]}, "tasks": [TINY_TASK],
        "server": {"state_dir": str(state_dir)}})


async def serve(cfg: Config):
    """Serve the app on a random loopback port; return (server, task, url, headers with a fresh user key)."""
    gw = Gateway.from_config(cfg)
    app = create_app(gw)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    _, secret = await gw.access.create_key(tenant="acme", name="tasks-test")
    return server, task, f"http://127.0.0.1:{sock.getsockname()[1]}", {"authorization": f"Bearer {secret}"}


@pytest.fixture
async def served(tmp_path):
    server, task, url, headers = await serve(config(tmp_path))
    yield url, headers
    server.should_exit = True
    await task


async def post_file(session, url, data: bytes, filename: str, task: str = "invoice"):
    url, headers = url
    form = aiohttp.FormData()
    form.add_field("file", data, filename=filename, content_type="application/pdf")
    async with session.post(f"{url}/v1/tasks/{task}", data=form, headers=headers) as resp:
        return resp.status, await resp.json(), resp.headers


async def test_list_tasks(served):
    url, headers = served
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{url}/v1/tasks") as resp:
            assert resp.status == 401  # access control applies
        async with s.get(f"{url}/v1/tasks", headers=headers) as resp:
            body = await resp.json()
    assert resp.status == 200
    names = {t["name"]: t for t in body["data"]}
    assert set(names) == {"advisory", "invoice", "utility_bill", "tiny"}
    assert names["utility_bill"]["policy"]["min_data_class"] == "confidential"
    assert names["invoice"]["extractors"]["total_amount"] == "total_amount"


async def test_pdf_uploads_get_records_or_clear_errors(served):
    base_url = served
    multi = pdfgen.text_pdf([["Brightwater Ltd.", "Invoice number: INV-7"], ["Invoice date: 02.01.2024"],
                             ["Total 12.50 EUR"]])
    table = pdfgen.table_pdf(["Item", "Amount"], [["Widget", "10.00"], ["Gadget", "2.50"]],
                             before=["Brightwater Ltd.", "Invoice number: INV-7", "Date: 2024-01-02"],
                             after=["Total 12.50 EUR"])
    async with aiohttp.ClientSession() as s:
        for pdf in (multi, table):
            status, body, headers = await post_file(s, base_url, pdf, "a.pdf")
            assert status == 200, body
            assert body["record"]["total_amount"] == 12.5 and body["record"]["invoice_number"] == "INV-7"
            assert body["fields"]["total_amount"]["source"] == "agree"
            assert headers["x-fedinf-model"] == "fake-onprem" and headers["x-fedinf-zone"] == "onprem"
            assert headers["x-fedinf-data-class"] == "confidential"
        assert body["document"]["pages"] == 1
        status, body, _ = await post_file(s, base_url, multi, "a.pdf")
        assert body["fields"]["total_amount"]["span"]["page"] == 3
        cases = [(b"PK\x03\x04" + b"\x00" * 64, 415, "unsupported_media_type"),
                 (b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64, 415, "unsupported_media_type"),
                 (pdfgen.corrupt_pdf(), 400, "invalid_document"),
                 (pdfgen.encrypted_pdf(["secret"]), 422, "encrypted_document")]
        for data, want_status, want_code in cases:
            status, body, _ = await post_file(s, base_url, data, "x.pdf")
            assert (status, body["error"]["code"]) == (want_status, want_code)
        status, body, _ = await post_file(s, base_url, pdfgen.huge_pdf(300_000), "big.pdf", task="tiny")
        assert (status, body["error"]["code"]) == (413, "payload_too_large")


async def test_json_bodies(served):
    base_url, headers = served
    async with aiohttp.ClientSession(headers=headers) as s:
        async with s.post(f"{base_url}/v1/tasks/invoice", json={"text": "Brightwater Ltd.\nTotal 12.50 EUR"}) as r:
            body = await r.json()
            assert r.status == 200 and body["record"]["currency"] == "EUR"
        pdf = pdfgen.text_pdf([["Total 12.50 EUR"]])
        payload = {"file": {"name": "a.pdf", "content_base64": base64.b64encode(pdf).decode()}}
        async with s.post(f"{base_url}/v1/tasks/invoice", json=payload) as r:
            assert r.status == 200 and (await r.json())["document"]["kind"] == "pdf"
        async with s.post(f"{base_url}/v1/tasks/invoice", json={"html": "<p>Total 12.50 EUR</p>"}) as r:
            assert r.status == 200 and (await r.json())["document"]["kind"] == "html"
        async with s.post(f"{base_url}/v1/tasks/invoice", json={"text": "x", "html": "y"}) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_body"
        async with s.post(f"{base_url}/v1/tasks/nope", json={"text": "x"}) as r:
            assert r.status == 404 and (await r.json())["error"]["code"] == "task_not_found"


async def test_utility_bill_with_only_cloud_models_is_refused(tmp_path):
    server, task, url, headers = await serve(config(tmp_path, cloud_only=True))
    try:
        async with aiohttp.ClientSession(headers=headers) as s:
            payload = {"text": "Northwind Power Ltd.\nAccount number: 123456\nAmount due: 56.20 GBP"}
            async with s.post(f"{url}/v1/tasks/utility_bill", json=payload) as r:
                body = await r.json()
        assert r.status == 403 and body["error"]["code"] == "policy_violation"
        assert "cloud" in body["error"]["message"]
    finally:
        server.should_exit = True
        await task


async def test_a_photo_upload_is_recognised_by_its_bytes_and_read_by_ocr(served):
    pytest.importorskip("rapidocr")
    import io

    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (1400, 500), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=44)
    draw.text((60, 80), "ACME Ltd.", fill="black", font=font)
    draw.text((60, 180), "Invoice number: INV-7", fill="black", font=font)
    draw.text((60, 280), "Total 12.50 EUR", fill="black", font=font)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    async with aiohttp.ClientSession() as s:  # declared application/pdf by post_file: the bytes say JPEG
        status, body, _ = await post_file(s, served, buf.getvalue(), "photo.jpg")
    assert status == 200, body
    assert body["document"]["kind"] == "image" and body["record"]["total_amount"] == 12.5
    assert any("OCR" in w for w in body["warnings"])
