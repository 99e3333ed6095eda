"""The X12 engine: pyx12 reads, walks and checks a document against its implementation-guide map.

pyx12 (BSD, PyPI ``pyx12``) ships the X12 maps (837P/837I/835/999/277CA and more), the external code lists
(``map/codes.xml``) and the validator that produces 997/999 acknowledgments. fedinf drives it segment by segment
(the loop of ``pyx12.x12n_document`` without its HTML/XML writers) so that one pass gives both

- every segment with its positions (index in the file, position in its transaction set as 999 IK302 counts it) and
  the map loop it belongs to (``2300``, ``2010AA``, ...), from which :mod:`fedinf.claims.parsing` builds typed models,
- every structural error pyx12 finds (segment/element/code-set errors with X12 997/999 error codes).

Implementation-guide versions pyx12 has no map for are read with the nearest map (``ALIASES``: the 5010 errata
versions X222A2 and X223A3 differ from X222A1 / X223A2 in situational notes, not in the segment layout); errors that
only flag the version identifier itself are then dropped, and the substitution is reported on the result.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from fedinf.errors import InvalidX12

# GS08 -> the map of a version pyx12 ships, for errata versions it does not ship
ALIASES: dict[str, str] = {
    "005010X222A2": "005010X222A1", "005010X222A3": "005010X222A1", "005010X222": "005010X222A1",
    "005010X223A3": "005010X223A2", "005010X223A1": "005010X223A2", "005010X223": "005010X223A2",
    "005010X221": "005010X221A1", "005010X231": "005010X231A1", "005010X214A1": "005010X214",
}
_VERSION_ELEMENTS = {("GS", 8), ("ST", 3)}  # the version identifiers an alias makes "invalid"
_LOG = logging.getLogger("pyx12")


@dataclass(frozen=True, slots=True)
class WalkedSegment:
    """One segment as read: id, raw element values (composites joined by ``:``-free lists), positions, loop."""

    seg_id: str
    elements: tuple[tuple[str, ...], ...]  # element i (1-based: elements[i-1]) -> its components
    index: int  # 1-based position in the file (ISA = 1)
    position: int  # 1-based position in its transaction set (ST = 1), 0 outside one; as 999 IK302
    loop: str  # map loop id: 2300, 2010AA, HEADER, ISA_LOOP, ...
    loop_path: str  # e.g. /ISA_LOOP/GS_LOOP/ST_LOOP/DETAIL/2000A/2000B/2300
    name: str  # the map's segment name, e.g. "Claim Information"

    def value(self, pos: int, sub: int = 1) -> str:
        """Element ``pos`` (1-based), component ``sub``; empty string when absent."""
        if pos < 1 or pos > len(self.elements):
            return ""
        comps = self.elements[pos - 1]
        return comps[sub - 1] if 0 < sub <= len(comps) else ""


@dataclass(frozen=True, slots=True)
class StructuralError:
    """One error pyx12 reports, in 997/999 terms. ``level``: interchange | group | transaction | segment | element.

    ``code`` is the 997/999 code for its level (IK304 for segments, IK403 for elements, IK502 for transactions;
    TA1/AK905-style codes for interchange/group). ``value`` is the offending value only for code-set errors (code 7):
    a code, never free text such as names or dates.
    """

    level: str
    code: str
    message: str
    segment_id: str | None = None
    position: int | None = None  # in the transaction set (IK302)
    index: int | None = None  # in the file
    loop: str | None = None
    element: int | None = None
    component: int | None = None
    repeat: int | None = None
    data_element: str | None = None  # data element reference number (IK404 / AK404)
    value: str | None = None
    transaction: str | None = None  # ST02 control number

    @property
    def ref(self) -> str:
        """``CLM05-1``-style reference (segment id, element, component)."""
        if self.segment_id is None:
            return ""
        if self.element is None:
            return self.segment_id
        return f"{self.segment_id}{self.element:02d}" + (f"-{self.component}" if self.component else "")


@dataclass
class Walk:
    """The result of one pass: segments, structural errors and notes (e.g. which map stood in for which version)."""

    segments: list[WalkedSegment] = field(default_factory=list)
    errors: list[StructuralError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)  # GS08 of every group


class Engine:
    """Reads X12 text with pyx12. Maps are loaded once per engine and reused (they are read-only once built)."""

    def __init__(self) -> None:
        try:
            import pyx12.map_index
            import pyx12.params
        except ModuleNotFoundError as exc:  # pragma: no cover - the claims extra is missing
            from fedinf.errors import ConfigError

            raise ConfigError("the claims workload needs the `claims` extra: pip install 'fedinf[claims]'") from exc
        self._params = pyx12.params.params()
        self._index = pyx12.map_index.map_index()
        self._maps: dict[str, Any] = {}

    def _map(self, name: str) -> Any:
        import pyx12.map_if

        if name not in self._maps:
            self._maps[name] = pyx12.map_if.load_map_file(name, self._params)
        return self._maps[name]

    def map_for(self, icvn: str | None, version: str, fic: str) -> tuple[str | None, str | None]:
        """The map file for a group, and the version whose map stands in (None when the version's own map exists)."""
        found = self._index.get_filename(icvn, version, fic)
        if found:
            return found, None
        family = {"004010": "00401", "005010": "00501"}.get(version[:6])
        for ic, ver in ((icvn, ALIASES.get(version)), (family, version), (family, ALIASES.get(version))):
            if ver and ic:  # an errata version, or a GS08 version under an envelope (ISA12) of the other family
                found = self._index.get_filename(ic, ver, fic)
                if found:
                    return found, ver
        return None, None

    def walk(self, text: str) -> Walk:
        """Read and check one X12 document. Raises :class:`~fedinf.errors.InvalidX12` when it is not X12 at all or
        uses a transaction/version no map covers; everything else is reported as :class:`StructuralError`."""
        _LOG.setLevel(logging.CRITICAL + 1)  # pyx12 logs element values (PHI) at error level: never let them out
        return _Walker(self).run(text)


class _Walker:
    """One pass over one document (per-document state lives here, not on the engine)."""

    def __init__(self, engine: Engine) -> None:
        import pyx12.error_handler
        import pyx12.map_walker

        self.engine = engine
        self.errh = pyx12.error_handler.err_handler()
        self.walker = pyx12.map_walker.walk_tree()
        self.out = Walk()
        self.loops: dict[int, str] = {}
        self.expected: dict[tuple[int, str], str] = {}  # (file index, segment id) -> loop a missing segment belongs to
        self.aliased = False

    def run(self, text: str) -> Walk:
        import pyx12.errors
        import pyx12.x12file

        if not text.strip():
            raise InvalidX12("the document is empty", code="invalid_x12", details={"segment_index": 0})
        try:
            src = pyx12.x12file.X12Reader(io.StringIO(text))
        except pyx12.errors.X12Error as exc:
            raise InvalidX12(f"not an X12 interchange: {_first_line(str(exc))}", code="invalid_x12",
                             details={"segment_index": 1, "segment_id": text.lstrip()[:3] or None}) from None
        control = self.engine._map("x12.control.00501.xml" if src.icvn == "00501" else "x12.control.00401.xml")
        state: dict[str, Any] = {"node": control.getnodebypath("/ISA_LOOP/ISA"), "control": control,
                                 "icvn": None, "map": None}
        try:
            for seg in src:
                self._segment(seg, src, state)
            src.cleanup()
            self.errh.handle_errors(src.pop_errors())
        except pyx12.errors.X12Error as exc:
            raise InvalidX12(f"unreadable X12 at segment {src.get_cur_line()}: {_first_line(str(exc))}",
                             code="invalid_x12", details={"segment_index": src.get_cur_line()}) from None
        except pyx12.errors.EngineError as exc:
            raise InvalidX12(_first_line(str(exc)), code="unsupported_x12",
                             details={"segment_index": src.get_cur_line()}) from None
        except (IndexError, KeyError, ValueError, TypeError, AttributeError) as exc:
            # pyx12 has no error path for some malformed input (e.g. a lower-case segment id): never a 500
            raise InvalidX12(f"unreadable X12 at segment {src.get_cur_line()} ({type(exc).__name__})",
                             code="invalid_x12", details={"segment_index": src.get_cur_line()}) from None
        self.errh.accept(_Collector(self.out, self.loops, self.expected, drop_version=self.aliased))
        return self.out

    def _segment(self, seg: Any, src: Any, state: dict[str, Any]) -> None:
        import pyx12.map_walker
        from pyx12.map_if._segment import apply_segment_errors

        seg_id = seg.get_seg_id() or ""
        orig = state["node"]
        node = orig
        if seg_id == "ISA":
            node = state["control"].getnodebypath("/ISA_LOOP/ISA")
            self.walker.forceWalkCounterToLoopStart("/ISA_LOOP", "/ISA_LOOP/ISA")
        elif seg_id == "GS":
            node = state["control"].getnodebypath("/ISA_LOOP/GS_LOOP/GS")
            self.walker.forceWalkCounterToLoopStart("/ISA_LOOP/GS_LOOP", "/ISA_LOOP/GS_LOOP/GS")
        else:
            node, _pop, _push, walk_errors = self.walker.walk_errors(
                node, seg, src.get_seg_count(), src.get_cur_line(), src.get_ls_id())
            for e in walk_errors:  # a missing segment/loop belongs to the loop the map expected it in
                parent = e.map_node.get_parent() if e.err_cde == "3" and e.map_node is not None else None
                if parent is not None and getattr(parent, "id", None):
                    self.expected[(e.src_line, e.seg_data.get_seg_id() or "")] = parent.id
            pyx12.map_walker.apply_walk_errors(self.errh, walk_errors)
        if node is None:
            node = orig
        else:
            self._handle(seg_id, node, seg, src, state)
            if seg_id in ("GS", "BHT") and state.get("switched"):
                node = state.pop("switched")
            apply_segment_errors(node, seg, self.errh)
        state["node"] = node
        self._record(seg, node, src)

    def _handle(self, seg_id: str, node: Any, seg: Any, src: Any, state: dict[str, Any]) -> None:
        errh = self.errh
        if seg_id == "ISA":
            errh.add_isa_loop(seg, src)
            state["icvn"] = seg.get_value("ISA12")
        elif seg_id == "IEA":
            errh.handle_errors(src.pop_errors())
            errh.close_isa_loop(node, seg, src)
            return
        elif seg_id == "GS":
            self._group(seg, src, state)
            errh.add_gs_loop(seg, src)
        elif seg_id == "GE":
            errh.handle_errors(src.pop_errors())
            errh.close_gs_loop(node, seg, src)
            return
        elif seg_id == "ST":
            errh.add_st_loop(seg, src)
        elif seg_id == "BHT" and state.get("version") in ("004010X094", "004010X094A1"):
            self._bht_278(seg, state)
            errh.add_seg(state["switched"], seg, src.get_seg_count(), src.get_cur_line(), src.get_ls_id())
        elif seg_id == "SE":
            errh.handle_errors(src.pop_errors())
            errh.close_st_loop(node, seg, src)
            return
        else:
            errh.add_seg(node, seg, src.get_seg_count(), src.get_cur_line(), src.get_ls_id())
        errh.handle_errors(src.pop_errors())

    def _group(self, seg: Any, src: Any, state: dict[str, Any]) -> None:
        import pyx12.errors

        fic, version = seg.get_value("GS01") or "", seg.get_value("GS08") or ""
        self.out.versions.append(version)
        name, alias = self.engine.map_for(state["icvn"], version, fic)
        if name is None:
            raise pyx12.errors.EngineError(
                f"no X12 map for functional group {fic or '?'} version {version or '?'}: supported are 837P "
                "(005010X222), 837I (005010X223), 835 (005010X221), 277CA (005010X214), 999 and their 4010 "
                "counterparts")
        if alias:
            self.aliased = self.aliased or alias != version
            note = f"{version} read with the {alias} map"
            if alias == version:
                note = f"{version} read under an ISA12 of the other X12 version family"
            if note not in self.out.notes:
                self.out.notes.append(note)
        cur = self.engine._map(name)
        src.check_837_lx = cur.id == "837"
        state.update(map=cur, version=version, fic=fic, switched=cur.getnodebypath("/ISA_LOOP/GS_LOOP/GS"))

    def _bht_278(self, seg: Any, state: dict[str, Any]) -> None:
        """4010 278s pick their map by BHT02 (the transaction set purpose), as pyx12 does."""
        name = self.engine._index.get_filename(state["icvn"], state["version"], state["fic"], seg.get_value("BHT02"))
        cur = self.engine._map(name) if name else state["map"]
        state.update(map=cur, switched=cur.getnodebypath("/ISA_LOOP/GS_LOOP/ST_LOOP/HEADER/BHT"))

    def _record(self, seg: Any, node: Any, src: Any) -> None:
        parent = node.get_parent() if node is not None else None
        loop = getattr(parent, "id", None) or ""
        path = parent.get_path() if parent is not None else ""
        index = src.get_cur_line()
        self.loops[index] = loop
        seg_id = seg.get_seg_id() or ""
        in_st = seg_id not in ("ISA", "IEA", "GS", "GE")
        elements = tuple(_components(e) for e in getattr(seg, "elements", []))
        self.out.segments.append(WalkedSegment(
            seg_id=seg_id, elements=elements, index=index, position=src.get_seg_count() if in_st else 0,
            loop=loop, loop_path=path, name=getattr(node, "name", "") or ""))


def _components(ele: Any) -> tuple[str, ...]:
    if ele is None:
        return ("",)
    if ele.is_composite():
        return tuple(ele[i].get_value() for i in range(len(ele)))
    return (ele.get_value(),)


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:200]


class _Collector:
    """An error_handler visitor turning pyx12's error tree into :class:`StructuralError` rows."""

    def __init__(self, out: Walk, loops: dict[int, str], expected: dict[tuple[int, str], str], *,
                 drop_version: bool) -> None:
        self.out, self.loops, self.expected, self.drop_version = out, loops, expected, drop_version
        self.st: str | None = None
        self.seg: Any = None

    def visit_root_pre(self, errh: Any) -> None:
        pass

    def visit_root_post(self, errh: Any) -> None:
        pass

    def visit_isa_pre(self, node: Any) -> None:
        self._level("interchange", node, None)

    def visit_isa_post(self, node: Any) -> None:
        pass

    def visit_gs_pre(self, node: Any) -> None:
        self._level("group", node, None)

    def visit_gs_post(self, node: Any) -> None:
        pass

    def visit_st_pre(self, node: Any) -> None:
        self.st = node.trn_set_control_num

    def visit_st_post(self, node: Any) -> None:
        self._level("transaction", node, self.st)

    def _level(self, level: str, node: Any, st: str | None) -> None:
        for cde, msg in node.errors:
            self.out.errors.append(StructuralError(level=level, code=str(cde), message=_scrub(msg), transaction=st,
                                                   index=node.get_cur_line()))

    def visit_seg(self, node: Any) -> None:
        self.seg = node
        line = node.get_cur_line()
        for cde, msg, _val in node.errors:
            loop = self.expected.get((line, node.seg_id or ""), None) if str(cde) == "3" else None
            self.out.errors.append(StructuralError(
                level="segment", code=str(cde), message=_scrub(msg), segment_id=node.seg_id,
                position=node.seg_count, index=line, loop=loop or self.loops.get(line), transaction=self.st))

    def visit_ele(self, node: Any) -> None:
        seg = self.seg
        if seg is None:
            return
        for cde, msg, val in node.errors:
            if self.drop_version and (seg.seg_id, node.ele_pos) in _VERSION_ELEMENTS and str(cde) == "7":
                continue
            self.out.errors.append(StructuralError(
                level="element", code=str(cde), message=_scrub(msg), segment_id=seg.seg_id, position=seg.seg_count,
                index=seg.get_cur_line(), loop=self.loops.get(seg.get_cur_line()), element=node.ele_pos,
                component=node.subele_pos, repeat=node.repeat_pos, data_element=node.ele_ref_num,
                value=val if str(cde) == "7" and val is not None else None, transaction=self.st))


_KEEP = re.compile(r"^([A-Z][A-Z0-9]{1,2}([0-9]{2}(-[0-9]{2})?)?|[0-9]{4}[A-Z]{0,2}|[A-Z_]{1,12}|<[A-Z]{1,4}>|"
                   r"[A-Z0-9]{2,4}=[0-9]{1,9}|min_len|max_len)$")


def _scrub(message: str) -> str:
    """pyx12 quotes offending values in its messages ("(19461301) is not a valid date", "Segment N3*1 MAIN ST not
    found", 'len("SMITH")'). Keep element references, loop ids and short codes; replace anything else with
    ``value``: it may be PHI (a date of birth, an address). Code values travel in ``StructuralError.value``."""
    message = re.sub(r"Segment (\w+)\*.*? not found", r"Segment \1 not found", message)
    message = re.sub(r'len\("[^"]*"\)', "len(value)", message)
    message = re.sub(r"^\([^()]*\)", "(value)", message)  # a leading "(...)" is always the offending value
    return re.sub(r"\(([^()]*)\)", lambda m: m.group(0) if _KEEP.match(m.group(1)) else "(value)", message)
