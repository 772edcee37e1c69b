"""``PATCH /items/{gid}`` answered by ``api.fast_edit`` gives what the FastAPI route gives (both stores).

The route still answers what the fast path does not take (here: a gid in
upper case, which the route canonicalises), so each request is sent both
ways and the answers compared.
"""

from __future__ import annotations

from typing import Any

import pytest

from api.fast_paths import FastItemEdits
from tests.api.conftest import Api, is_problem


def fast_path(api: Api) -> FastItemEdits:
    layer: Any = api.client.app.middleware_stack
    while not isinstance(layer, FastItemEdits):
        layer = layer.app
    return layer


def both_ways(api: Api, item: dict[str, Any], **request: Any) -> tuple[Any, Any]:
    """The answers of the fast path and of the route to the same request (the route's first: a change
    made by the first would make the second stale)."""
    routed = api.patch(f"/items/{item['gid'].upper()}", **request)
    fast = api.patch(f"/items/{item['gid']}", **request)
    return fast, routed


def without_instance(response: Any) -> dict[str, Any]:
    return {k: v for k, v in response.json().items() if k != "instance"}


def test_an_ordinary_edit_takes_the_fast_path_and_answers_as_a_read_of_the_item_does(api: Api) -> None:
    headers = api.auth()
    item = api.create(headers)
    path = fast_path(api)
    before = path.answered

    edited = api.patch(f"/items/{item['gid']}", json={"markdown": "two\n"},
                       headers={**headers, "If-Match": f'"{item["head"]}"'})
    read = api.get(f"/items/{item['gid']}", headers=headers)

    assert path.answered == before + 1
    assert edited.status_code == 200 and edited.json() == read.json()
    assert edited.headers["ETag"] == read.headers["ETag"]
    assert edited.headers["content-type"] == "application/json"
    metrics = api.get("/metrics", headers=api.auth("root", role="admin")).text
    assert 'method="PATCH",route="/items/{gid}",status="200"' in metrics


@pytest.mark.parametrize(("name", "request_parts", "status"), [
    ("stale head", {"json": {"markdown": "x\n", "parent": "00000000-0000-4000-8000-000000000000"}}, 409),
    ("no head named", {"json": {"markdown": "x\n"}}, 428),
    ("a bad If-Match", {"json": {"markdown": "x\n"}, "headers": {"If-Match": "W/nonsense"}}, 400),
    ("If-Match and parent disagree", {"json": {"markdown": "x\n", "parent": "00000000-0000-4000-8000-000000000000"},
                                      "headers": {"If-Match": '"11111111-1111-4111-8111-111111111111"'}}, 400),
    ("a forged token", {"json": {"markdown": "x\n"}, "headers": {"Authorization": "Bearer forged"}}, 401),
])
def test_refusals_of_the_fast_path_are_the_routes_word_for_word(api: Api, name: str, request_parts: dict,
                                                                 status: int) -> None:
    headers = api.auth()
    item = api.create(headers)
    parts = {"json": request_parts["json"], "headers": {**headers, **request_parts.get("headers", {})}}
    before = fast_path(api).answered

    fast, routed = both_ways(api, item, **parts)

    assert fast_path(api).answered == before + 1, name
    assert fast.status_code == routed.status_code, name
    assert is_problem(fast, status), (name, fast.text)
    assert without_instance(fast) == without_instance(routed), name
    assert fast.headers.get("WWW-Authenticate") == routed.headers.get("WWW-Authenticate")
    assert api.get(f"/items/{item['gid']}", headers=headers).json()["head"] == item["head"]  # nothing changed


def test_an_item_nobody_has_is_404_on_both_paths(api: Api) -> None:
    absent = {"gid": "c0ffee00-0000-4000-8000-000000000000"}
    parts = {"json": {"markdown": "x\n", "parent": "11111111-1111-4111-8111-111111111111"}, "headers": api.auth()}

    fast, routed = both_ways(api, absent, **parts)

    assert is_problem(fast, 404) and without_instance(fast) == without_instance(routed)


@pytest.mark.parametrize(("name", "send", "status"), [
    ("no token", {"json": {"markdown": "x\n"}, "headers": {}}, 401),
    ("another scheme", {"json": {"markdown": "x\n"}, "headers": {"Authorization": "Basic YTpi"}}, 401),
    ("malformed JSON", {"content": b'{"markdown": ', "headers": {"Content-Type": "application/json"}}, 400),
    ("an unknown field", {"json": {"markdown": "x\n", "colour": "red"}}, 422),
    ("a wrong type", {"json": {"markdown": 7}}, 422),
    ("nothing changed", {"json": {}}, 422),
    ("not an object", {"json": ["markdown"]}, 422),
    ("another media type", {"content": b'{"markdown": "x\\n"}', "headers": {"Content-Type": "text/plain"}}, 422),
])
def test_what_the_fast_path_does_not_take_goes_to_the_route_with_its_body(api: Api, name: str, send: dict,
                                                                         status: int) -> None:
    headers = api.auth()
    item = api.create(headers)
    sent_headers = send.get("headers", headers) if "content" not in send else {**headers, **send["headers"]}
    if name in ("no token", "another scheme"):
        sent_headers = send["headers"]
    before = fast_path(api).answered

    answer = api.patch(f"/items/{item['gid']}", headers={**sent_headers, "If-Match": f'"{item["head"]}"'},
                       **{k: v for k, v in send.items() if k != "headers"})

    assert fast_path(api).answered == before, name
    assert is_problem(answer, status), (name, answer.text)
    assert api.get(f"/items/{item['gid']}", headers=headers).json()["head"] == item["head"]  # nothing changed
