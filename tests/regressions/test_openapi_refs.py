"""ReDoc showed a blank page: the order webhook's hand-written body schema referred to
`#/components/schemas/OrderLine`, which the document never defined. Every `$ref` must resolve."""

from __future__ import annotations

from typing import Any

from tests.support.fakes import WeChat


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), ref
        assert token in node, f"{ref}: no {token!r}"
        node = node[token]
    return node


async def test_every_reference_in_the_openapi_document_resolves(wechat: WeChat) -> None:
    document = (await wechat.client.get("/openapi.json")).json()
    refs = _refs(document)
    assert any("OrderLine" in ref for ref in refs)  # the nested model that was dangling
    for ref in refs:
        assert isinstance(_resolve(document, ref), dict), ref
