"""RFC 6502 partial notifications: RFC 5261 XML patch documents, both ways.

* :func:`xcon_diff` builds the ``application/xcon-conference-info-diff+xml``
  document (RFC 6502 s5.3) that turns one full XCON document into another:
  ``<add>``, ``<replace>`` and ``<remove>`` operations whose ``sel`` selectors
  use the RFC 5261 s4.1 subset of XPath.  No 'version' (RFC 6502 has none:
  the one-outstanding rule of s5.1 keeps diffs in order).
* :func:`apply_patch` is an RFC 5261 patch applier (the subscriber's side of
  RFC 6502 s5.2); the tests use it to prove ``old + diff == new``.  It
  evaluates selectors itself (no general XPath engine), so a hostile
  selector can only fail with :class:`PatchError`.

How the diff is chosen.  Both documents are compared as trees.  Children are
matched by identity: a key attribute ('entity', 'id', 'label', 'name', or
'uri' with 'method' for ``<xcon:target>``) or a ``<uri>`` child (uri
entries), else their position among same-named siblings.  When every
matched child keeps its relative order, the diff recurses into changed
children, removes vanished ones and adds new ones (``pos="before"`` the next
kept sibling, or appended); otherwise, and for any change of a leaf, of
attributes or of text, the element is replaced whole.  Operations apply in
document order, so selectors are computed against the document as it is
when each one runs.

Selectors use the prefixes declared on the diff's root (``ci`` for RFC 4575
names, ``xcon`` for RFC 6501 ones, ``n1``... for extensions): RFC 5261
resolves selector prefixes against the patch document, and prefixing every
name sidesteps the question of what an unprefixed one means.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

from lxml import etree

from focus.xcon.model import CI_NS, XCON_NS
from focus.xcon.safexml import parse_xml

__all__ = [
    "PATCH_OPS",
    "PatchError",
    "apply_patch",
    "diff_documents",
    "xcon_diff",
]

#: The namespace of <conference-info-diff> (RFC 6502 s5.3).
DIFF_ROOT = f"{{{XCON_NS}}}conference-info-diff"
#: Local names of the RFC 5261 operations.
PATCH_OPS = frozenset({"add", "replace", "remove"})

_KEY_ATTRS = ("entity", "id", "label", "name")
_URI = f"{{{CI_NS}}}uri"
_TARGET = f"{{{XCON_NS}}}target"
_DECLARATION = b"<?xml version='1.0' encoding='UTF-8'?>\n"


class PatchError(ValueError):
    """A patch can not be applied (RFC 5261 s5 error conditions).

    The fault is the patch author's: a subscriber SHOULD renew its
    subscription to get full state again (RFC 6502 s5.2).  ``tag`` is the
    RFC 5261 error element name (``invalid-xpath``, ``unlocated-node``, ...).
    """

    def __init__(self, tag: str, detail: str) -> None:
        super().__init__(f"{tag}: {detail}")
        self.tag = tag
        self.detail = detail


# --------------------------------------------------------------------------- diff


class _Whole(Exception):
    """This element must be replaced as a whole."""


@dataclass
class _Prefixes:
    by_ns: dict[str, str]

    def name(self, tag: str) -> str:
        qname = etree.QName(tag)
        if qname.namespace is None:
            raise _Whole  # unprefixed names are ambiguous in RFC 5261 selectors
        prefix = self.by_ns.get(qname.namespace)
        if prefix is None:
            prefix = self.by_ns[qname.namespace] = f"n{len(self.by_ns) - 1}"
        return f"{prefix}:{qname.localname}"


def _literal(value: str) -> str | None:
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    return None  # XPath 1.0 literals can not hold both quotes


def _identity(el: etree._Element, prefixes: _Prefixes) -> tuple[str, str] | None:
    """(element name, predicate) naming ``el`` among its siblings, or None."""
    tag = str(el.tag)
    name = prefixes.name(tag)
    if tag == _TARGET and el.get("uri") is not None:
        preds = []
        for attr in ("uri", "method"):
            value = el.get(attr)
            lit = _literal(value) if value is not None else None
            if value is not None and lit is None:
                return None
            if lit is not None:
                preds.append(f"[@{attr}={lit}]")
        if el.get("method") is None:
            return None  # a key must fully identify it
        return name, "".join(preds)
    for attr in _KEY_ATTRS:
        value = el.get(attr)
        if value is not None:
            lit = _literal(value)
            return (name, f"[@{attr}={lit}]") if lit is not None else None
    uris = [c for c in el if c.tag == _URI]
    if len(uris) == 1 and len(uris[0]) == 0:
        lit = _literal(uris[0].text or "")
        if lit is not None:
            return name, f"[{prefixes.name(_URI)}={lit}]"
    return None


def _text(value: str | None) -> str:
    return value or ""


def _equal(a: etree._Element, b: etree._Element) -> bool:
    return (
        a.tag == b.tag
        and _attrs(a) == _attrs(b)
        and _text(a.text) == _text(b.text)
        and _text(a.tail) == _text(b.tail)
        and len(a) == len(b)
        and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    )


def _attrs(el: etree._Element) -> dict[str, str]:
    return {str(k): str(v) for k, v in el.attrib.items()}


def _mixed(el: etree._Element) -> bool:
    return bool(_text(el.text).strip()) or any(_text(c.tail).strip() for c in el)


class _Differ:
    def __init__(self, prefixes: _Prefixes) -> None:
        self.prefixes = prefixes
        self.ops: list[etree._Element] = []

    def _op(self, kind: str, sel: str, **attrs: str) -> etree._Element:
        op = etree.Element(f"{{{XCON_NS}}}{kind}", {"sel": sel, **attrs})
        self.ops.append(op)
        return op

    def replace(self, sel: str, new: etree._Element) -> None:
        op = self._op("replace", sel)
        op.append(_detached(new))

    def element(self, sel: str, old: etree._Element, new: etree._Element) -> None:
        if _equal(old, new):
            return
        mark = len(self.ops)
        try:
            if (
                old.tag != new.tag
                or _attrs(old) != _attrs(new)
                or len(old) == 0
                or len(new) == 0
                or _mixed(old)
                or _mixed(new)
                or _text(old.text) != _text(new.text)
            ):
                raise _Whole
            self.children(sel, old, new)
        except _Whole:
            del self.ops[mark:]
            self.replace(sel, new)

    def children(self, sel: str, old: etree._Element, new: etree._Element) -> None:
        old_ids = self._ids(old)
        new_ids = self._ids(new)
        new_set, old_set = set(new_ids), set(old_ids)
        if [i for i in old_ids if i in new_set] != [i for i in new_ids if i in old_set]:
            raise _Whole  # reordered: one replace says it best
        old_by = dict(zip(old_ids, old, strict=True))
        new_by = dict(zip(new_ids, new, strict=True))
        current = list(old_ids)
        for ident in old_ids:
            if ident in new_set:
                self.element(self._sel(sel, current, ident), old_by[ident], new_by[ident])
        for ident in old_ids:
            if ident not in new_set:
                self._op("remove", self._sel(sel, current, ident))
                current.remove(ident)
        for j, ident in enumerate(new_ids):
            if ident in old_set:
                continue
            anchor = next((i for i in new_ids[j + 1 :] if i in current), None)
            if anchor is None:
                op = self._op("add", sel)
                current.append(ident)
            else:
                op = self._op("add", self._sel(sel, current, anchor), pos="before")
                current.insert(current.index(anchor), ident)
            op.append(_detached(new_by[ident]))

    def _ids(self, parent: etree._Element) -> list[tuple[str, str, str]]:
        """Identities of the children: ("k", name, predicate) or ("#", name, n)."""
        ids: list[tuple[str, str, str]] = []
        counts: dict[str, int] = {}
        for child in parent:
            if not isinstance(child.tag, str):
                raise _Whole  # comments and PIs: not in our documents
            ident = _identity(child, self.prefixes)
            if ident is None:
                name = self.prefixes.name(str(child.tag))
                counts[name] = counts.get(name, 0) + 1
                ids.append(("#", name, str(counts[name])))
            else:
                ids.append(("k", *ident))
        if len(set(ids)) != len(ids):
            raise _Whole  # duplicate keys: no selector would be unique
        return ids

    @staticmethod
    def _sel(parent: str, current: list[tuple[str, str, str]], ident: tuple[str, str, str]) -> str:
        kind, name, rest = ident
        if kind == "k":
            return f"{parent}/{name}{rest}"
        position = 1 + sum(1 for i in current[: current.index(ident)] if i[1] == name)
        return f"{parent}/{name}[{position}]"


def _detached(el: etree._Element) -> etree._Element:
    clone = copy.deepcopy(el)
    clone.tail = None
    return clone


def diff_documents(old: etree._Element, new: etree._Element, entity: str) -> etree._Element:
    """The <conference-info-diff> element taking document ``old`` to ``new``."""
    prefixes = _Prefixes({CI_NS: "ci", XCON_NS: "xcon"})
    differ = _Differ(prefixes)
    try:
        root_sel = "/" + prefixes.name(str(old.tag))
        if old.tag != new.tag:
            raise _Whole
        differ.element(root_sel, old, new)
    except _Whole:
        differ.ops.clear()
        differ.replace("/" + prefixes.name(str(old.tag)), new)
    nsmap: dict[str | None, str] = {None: XCON_NS}
    nsmap.update({prefix: ns for ns, prefix in prefixes.by_ns.items()})
    root = etree.Element(DIFF_ROOT, nsmap=nsmap, entity=entity)  # type: ignore[arg-type]
    root.extend(differ.ops)
    return root


def xcon_diff(old: bytes, new: bytes, entity: str) -> bytes | None:
    """The ``application/xcon-conference-info-diff+xml`` body taking the full XCON
    document ``old`` to ``new`` (both as :func:`focus.eventpkg.bodies.xcon_full`
    writes them); None when they are the same."""
    old_root, new_root = _ours(old), _ours(new)
    diff = diff_documents(old_root, new_root, entity)
    if len(diff) == 0:
        return None
    return _DECLARATION + etree.tostring(diff, encoding="UTF-8")


def _ours(data: bytes) -> etree._Element:
    # Our own output, so the limits are generous, but still the hardened parser.
    return parse_xml(data, max_bytes=64 * 1024 * 1024, max_elements=10_000_000)


# --------------------------------------------------------------------------- apply

_NAME = r"[A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?"
_LIT = r"""(?:'[^']*'|"[^"]*")"""
_PRED = re.compile(
    rf"""\[\s*(?:(?P<pos>\d{{1,9}})|@(?P<attr>{_NAME})\s*=\s*(?P<aval>{_LIT})"""
    rf"""|(?P<child>{_NAME}|\.)\s*=\s*(?P<cval>{_LIT}))\s*\]"""
)
_STEP = re.compile(rf"(?P<name>{_NAME}|\*)(?P<preds>.*)$", re.DOTALL)
_MAX_SELECTOR = 4096


@dataclass
class _Attr:
    element: etree._Element
    name: str


@dataclass
class _Text:
    element: etree._Element


_Target = etree._Element | _Attr | _Text


class _Selector:
    def __init__(self, op: etree._Element) -> None:
        self.op = op
        self.nsmap: dict[str | None, str] = dict(op.nsmap)

    def clark(self, name: str) -> str:
        prefix, _, local = name.rpartition(":")
        if not prefix:
            # RFC 5261 s4.2.2: an unprefixed name is in the patch's default namespace
            ns = self.nsmap.get(None)
            return f"{{{ns}}}{local}" if ns else local
        ns = self.nsmap.get(prefix)
        if ns is None:
            raise PatchError("invalid-namespace-prefix", f"prefix {prefix!r} is not declared")
        return f"{{{ns}}}{local}"

    def locate(self, sel: str, doc: etree._ElementTree) -> _Target:
        if not sel or len(sel) > _MAX_SELECTOR:
            raise PatchError("invalid-xpath", f"selector of {len(sel)} characters")
        steps = _split(sel.lstrip("/") if sel.startswith("/") else sel)
        nodes: list[etree._Element] = []
        context: list[etree._Element] | None = None  # None: the document node
        for i, step in enumerate(steps):
            last = i == len(steps) - 1
            if last and context is not None and len(context) == 1:
                if step.startswith("@"):
                    name = self.clark(step[1:]) if ":" in step else step[1:]
                    if name not in context[0].attrib:
                        raise PatchError("unlocated-node", f"{sel!r}: no attribute {step}")
                    return _Attr(context[0], name)
                if step == "text()":
                    return _Text(context[0])
            nodes = self._step(step, context, doc, sel)
            context = nodes
        if len(nodes) != 1:
            raise PatchError("unlocated-node", f"{sel!r} matches {len(nodes)} nodes, not one")
        return nodes[0]

    def _step(
        self,
        step: str,
        context: list[etree._Element] | None,
        doc: etree._ElementTree,
        sel: str,
    ) -> list[etree._Element]:
        match = _STEP.match(step)
        if match is None:
            raise PatchError("invalid-xpath", f"{sel!r}: can not read step {step!r}")
        name = match.group("name")
        if context is None:
            candidates = [doc.getroot()]
        else:
            candidates = [c for parent in context for c in parent if isinstance(c.tag, str)]
        if name != "*":
            clark = self.clark(name)
            candidates = [c for c in candidates if c.tag == clark]
        preds = match.group("preds")
        at = 0
        while at < len(preds):
            pred = _PRED.match(preds, at)
            if pred is None:
                raise PatchError("invalid-xpath", f"{sel!r}: can not read predicate in {step!r}")
            candidates = self._filter(candidates, pred)
            at = pred.end()
        return candidates

    def _filter(self, nodes: list[etree._Element], pred: re.Match[str]) -> list[etree._Element]:
        if pred.group("pos") is not None:
            n = int(pred.group("pos"))
            return [nodes[n - 1]] if 1 <= n <= len(nodes) else []
        if pred.group("attr") is not None:
            attr = pred.group("attr")
            name = self.clark(attr) if ":" in attr else attr
            value = pred.group("aval")[1:-1]
            return [n for n in nodes if n.get(name) == value]
        child, value = pred.group("child"), pred.group("cval")[1:-1]
        if child == ".":
            return [n for n in nodes if _string_value(n) == value]
        clark = self.clark(child)
        return [n for n in nodes if any(c.tag == clark and _string_value(c) == value for c in n)]


def _string_value(el: etree._Element) -> str:
    return "".join(str(t) for t in el.itertext())


def _split(sel: str) -> list[str]:
    """Split on '/' outside predicates and string literals."""
    steps: list[str] = []
    depth, quote, start = 0, "", 0
    for i, ch in enumerate(sel):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "/" and depth == 0:
            steps.append(sel[start:i])
            start = i + 1
    steps.append(sel[start:])
    if any(not s for s in steps):
        raise PatchError("invalid-xpath", f"{sel!r}: empty step")
    return steps


def apply_patch(document: bytes, diff: bytes) -> bytes:
    """``document`` with the RFC 5261 operations of ``diff`` applied, in order.

    Both are parsed with the hardened parser.  Supported: every operation on
    elements, ``<add type="@name">``, attribute and ``text()`` targets of
    ``<replace>`` and ``<remove>``, and ``pos`` ``before``/``after``/
    ``prepend``.  Not supported (PatchError): namespace declarations,
    comments, processing instructions and ``id()`` selectors, none of which
    a conference diff needs.
    """
    tree = etree.ElementTree(parse_xml(document))
    patch = parse_xml(diff)
    for op in patch.iterchildren("*"):
        qname = etree.QName(op)
        if qname.localname not in PATCH_OPS or qname.namespace != etree.QName(patch).namespace:
            continue  # RFC 6502 s5.3: unknown elements are ignored
        sel = op.get("sel")
        if sel is None:
            raise PatchError("invalid-patch-directive", f"<{qname.localname}> without 'sel'")
        target = _Selector(op).locate(sel, tree)
        if qname.localname == "add":
            _add(op, target)
        elif qname.localname == "replace":
            new_root = _replace(op, target)
            if new_root is not None:
                tree = etree.ElementTree(new_root)
        else:
            _remove(target)
    return _DECLARATION + etree.tostring(tree.getroot(), encoding="UTF-8")


def _content(op: etree._Element) -> list[etree._Element]:
    return [copy.deepcopy(c) for c in op if isinstance(c.tag, str)]


def _add(op: etree._Element, target: _Target) -> None:
    if not isinstance(target, etree._Element):
        raise PatchError("invalid-patch-directive", "<add> must select an element")
    kind = op.get("type")
    if kind is not None:
        if not kind.startswith("@"):
            raise PatchError("unsupported", f"<add type={kind!r}>")
        name = kind[1:]
        if ":" in name:
            name = _Selector(op).clark(name)
        if name in target.attrib:
            raise PatchError("invalid-attribute-value", f"attribute {kind} already exists")
        target.set(name, op.text or "")
        return
    nodes = _content(op)
    pos = op.get("pos")
    if pos is None:
        for node in nodes:
            node.tail = None
            target.append(node)
    elif pos == "prepend":
        for i, node in enumerate(nodes):
            node.tail = None
            target.insert(i, node)
    elif pos in ("before", "after"):
        parent = target.getparent()
        if parent is None:
            raise PatchError("invalid-root-element-operation", "no siblings of the root")
        at = parent.index(target) + (1 if pos == "after" else 0)
        for i, node in enumerate(nodes):
            node.tail = None
            parent.insert(at + i, node)
    else:
        raise PatchError("invalid-patch-directive", f"pos={pos!r}")


def _replace(op: etree._Element, target: _Target) -> etree._Element | None:
    """Apply a <replace>; returns the new root element when the root was replaced."""
    if isinstance(target, _Attr):
        target.element.set(target.name, op.text or "")
        return None
    if isinstance(target, _Text):
        target.element.text = op.text or None
        return None
    nodes = _content(op)
    if len(nodes) != 1:
        raise PatchError("invalid-patch-directive", "<replace> of an element needs one element")
    node = nodes[0]
    parent = target.getparent()
    if parent is None:
        return node
    node.tail = target.tail
    parent.replace(target, node)
    return None


def _remove(target: _Target) -> None:
    if isinstance(target, _Attr):
        del target.element.attrib[target.name]
        return
    if isinstance(target, _Text):
        target.element.text = None
        return
    parent = target.getparent()
    if parent is None:
        raise PatchError("invalid-root-element-operation", "the root can not be removed")
    parent.remove(target)
