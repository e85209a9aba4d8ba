"""Bounded <xpathFilter> evaluation (RFC 6503 s5.3.1, s5.3.2, s5.3.7, s5.3.9).

The filter comes from the client, so it is checked against a small grammar before lxml ever
sees it: child steps by name, predicates comparing a relative path (or the context node) to a
literal with = != < <= > >=, `and`/`or`, parentheses, and the functions not(), contains(),
starts-with(), count(), string-length(), normalize-space(), true(), false(). No axes, no `//`,
no variables, no other functions; the expression length, the number of steps and the
predicate nesting are capped, and one side of every comparison must be a literal or a
function result (two node-sets would compare pairwise). Each such expression runs in time
linear in the document size times its own size, and documents are bounded too, so no
filter can stall the server.

Names are matched by local name: the RFC's examples are written without prefixes
("/conference-info[conference-description/conference-state/active='false']") although the
documents are namespaced, so prefixes in the filter are dropped and the filter runs on a
namespace-free copy of each document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

ALLOWED_FUNCTIONS = frozenset(
    {
        "not",
        "contains",
        "starts-with",
        "count",
        "string-length",
        "normalize-space",
        "true",
        "false",
    }
)
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"[^"]*"|'[^']*')
      | (?P<number>\d+(?:\.\d+)?)
      | (?P<op>!=|<=|>=|=|<|>|\(|\)|\[|\]|/|,|\.|@)
      | (?P<name>[A-Za-z_][A-Za-z0-9_.-]*(?::[A-Za-z_][A-Za-z0-9_.-]*)?)
    )""",
    re.VERBOSE,
)


_COMPARISONS = frozenset({"=", "!=", "<", "<=", ">", ">="})
_STEP_CONTEXT = frozenset({None, "/", "[", "(", ",", "@"})


class XPathFilterError(ValueError):
    """The client's filter is outside the supported subset: answer 400 with the message."""


@dataclass(frozen=True, slots=True)
class XPathLimits:
    max_length: int = 512
    max_steps: int = 16
    max_depth: int = 4


def compile_filter(expression: str, limits: XPathLimits = XPathLimits()) -> etree.XPath:
    """Check `expression` against the safe subset and compile it (prefixes dropped)."""
    text = expression.strip()
    if not text:
        raise XPathFilterError("empty xpathFilter")
    if len(text) > limits.max_length:
        raise XPathFilterError(f"xpathFilter longer than {limits.max_length} characters")
    out: list[str] = []
    pos = 0
    steps = 0
    depth = 0
    prev: str | None = None
    # What the last complete operand was: "path" (a node-set) or "value" (a literal or a
    # function result). Comparing two node-sets costs the product of their sizes, so one
    # side of every comparison must be a value.
    last = "value"
    compared: str | None = None
    parens: list[str] = []
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise XPathFilterError(f"xpathFilter: unsupported syntax at {text[pos : pos + 12]!r}")
        pos = m.end()
        kind = m.lastgroup
        tok = m.group(kind or "op")
        call = kind == "name" and text[pos:].lstrip().startswith("(")
        is_operator = kind == "name" and tok in ("and", "or") and prev not in _STEP_CONTEXT
        if compared is not None and not is_operator:
            right = "value" if kind in ("string", "number") or call else "path"
            if compared == "path" and right == "path":
                raise XPathFilterError(
                    "xpathFilter compares two node-sets; compare a path with a literal"
                )
            compared = None
        if kind == "name":
            local = tok.rsplit(":", 1)[-1]
            if call:
                if tok not in ALLOWED_FUNCTIONS:
                    raise XPathFilterError(f"xpathFilter: function {tok}() is not supported")
                out.append(tok)
            elif is_operator:
                out.append(f" {tok} ")
            else:
                steps += 1
                if steps > limits.max_steps:
                    raise XPathFilterError(
                        f"xpathFilter has more than {limits.max_steps} location steps"
                    )
                out.append(local)
                last = "path"
        elif kind == "op":
            if tok == "/" and prev == "/":
                raise XPathFilterError("xpathFilter: '//' (descendant search) is not supported")
            if tok == "[":
                depth += 1
                if depth > limits.max_depth:
                    raise XPathFilterError(
                        f"xpathFilter nests predicates deeper than {limits.max_depth}"
                    )
            elif tok == "]":
                depth -= 1
                last = "path"
            elif tok == "(":
                parens.append("call" if prev in ALLOWED_FUNCTIONS else "group")
            elif tok == ")":
                last = "value" if parens and parens.pop() == "call" else "path"
            elif tok == ".":
                last = "path"
            elif tok in _COMPARISONS:
                compared = last
            out.append(tok)
        else:
            out.append(tok)
            last = "value"
        prev = tok
    if "$" in text:
        raise XPathFilterError("xpathFilter: variables are not supported")
    try:
        return etree.XPath("".join(out), smart_strings=False)
    except etree.XPathSyntaxError as exc:
        raise XPathFilterError(f"xpathFilter is not valid XPath: {exc}") from None


def _strip_namespaces(el: etree._Element) -> etree._Element:
    copy = etree.Element(etree.QName(el).localname)
    for name, value in el.attrib.items():
        copy.set(etree.QName(name).localname, value)
    copy.text = el.text
    for child in el:
        if isinstance(child.tag, str):
            sub = _strip_namespaces(child)
            sub.tail = child.tail
            copy.append(sub)
    return copy


def matches(xpath: etree.XPath, document: etree._Element) -> bool:
    """Whether `document` (a conference-info element) satisfies the filter.

    The document is evaluated as the root of its own tree, so "/conference-info[...]"
    selects it when the predicate holds; a node-set result matches when non-empty.
    """
    root = _strip_namespaces(document)
    etree.ElementTree(root)
    try:
        result = xpath(root)
    except etree.XPathEvalError as exc:
        raise XPathFilterError(f"xpathFilter cannot be evaluated: {exc}") from None
    if isinstance(result, list):
        return len(result) > 0
    return bool(result)
