"""The eight v1 routes: happy paths, documented validation errors and emulator-specific codes."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator

from .helpers import JPEG, OBS, PNG, Api, assert_error, b64

INSTANCE_KEYS = {"domain", "desc", "registerDate", "expiredDate", "level", "tags", "status", "instanceName"}


# --- create / query / delete instance --------------------------------------------------------------
def test_create_and_query_instance_shape(api: Api) -> None:
    response = api.create("shop-1", description="demo lib", tags=["animal"])
    assert response.status_code == 200
    body = response.json()
    assert set(body) == INSTANCE_KEYS
    assert body["instanceName"] == "shop-1"
    assert body["desc"] == "demo lib"
    assert body["level"] == 30000000
    assert body["expiredDate"] == -1
    assert isinstance(body["registerDate"], int)
    assert body["registerDate"] > 1_600_000_000_000  # epoch milliseconds
    assert body["tags"] == ["animal"]
    assert response.headers["X-Request-Id"]
    queried = api.query("shop-1").json()
    assert queried["status"] == "NORMAL"
    assert queried["registerDate"] == body["registerDate"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"model": "common-search"}, "IS.0001"),
        ({"name": "x"}, "IS.0001"),
        ({"name": 5, "model": "common-search"}, "IS.0002"),
        ({"name": "Upper", "model": "common-search"}, "IS.0007"),
        ({"name": "9starts-digit", "model": "common-search"}, "IS.0007"),
        ({"name": "a" * 17, "model": "common-search"}, "IS.0007"),
        ({"name": "service", "model": "common-search"}, "IS.0007"),
        ({"name": "ok", "model": "no-such-model"}, "IS.0002"),
        ({"name": "ok", "model": "common-search", "tags": "animal"}, "IS.0002"),
        ({"name": "ok", "model": "common-search", "tags": ["Animal"]}, "IS.0002"),
        ({"name": "ok", "model": "common-search", "tags": [f"t{i}" for i in range(11)]}, "IS.0002"),
        ({"name": "ok", "model": "common-search", "level": 5}, "IS.0002"),
        ({"name": "ok", "model": "common-search", "description": 3}, "IS.0002"),
    ],
)
def test_create_instance_validation(api: Api, body: dict[str, Any], code: str) -> None:
    assert_error(api.v1("POST", "/service", body), 400, code)
    assert_error(api.query("ok"), 400, "IS.0007")  # nothing was created


def test_create_instance_bad_json(api: Api) -> None:
    headers = {"Content-Type": "application/json"}
    assert_error(api.v1("POST", "/service", data=b"{not json", headers=headers), 400, "IS.0008")
    assert_error(api.v1("POST", "/service", data=b'["a"]', headers=headers), 400, "IS.0008")
    assert_error(api.v1("POST", "/service", data=b"", headers=headers), 400, "IS.0008")


def test_duplicate_instance_is_the_emulators_own_code(api: Api) -> None:
    assert api.create("dup").status_code == 200
    # No documented code says "exists" (IS.0013 is "The token is empty."): the emulator's own, IS.9001.
    body = assert_error(api.create("dup"), 400, "IS.9001")
    assert body["error_msg"] == "The instance already exists. (emulator-specific code)"


def test_query_unknown_instance_is_is0007(api: Api) -> None:
    body = assert_error(api.query("missing"), 400, "IS.0007")
    assert body["error_msg"] == "Invalid instance name."


def test_delete_instance(api: Api, ready_instance: str) -> None:
    response = api.v1("DELETE", f"/service/{ready_instance}")
    assert response.json() == {"result": "success"}
    assert_error(api.query(ready_instance), 400, "IS.0007")
    assert_error(api.v1("DELETE", f"/service/{ready_instance}"), 400, "IS.0007")


# --- images ----------------------------------------------------------------------------------------
def test_add_check_modify_delete_image(api: Api, ready_instance: str) -> None:
    base = f"/{ready_instance}/image"
    added = api.v1("POST", base, {"path": f"{OBS}/cat.jpg", "file": b64(PNG), "tags": {"animal": "cat"}})
    assert added.json() == {"result": "Success"}
    assert api.v1("POST", base + "/check", {"path": f"{OBS}/cat.jpg"}).json() == {"exist": "true"}
    assert api.v1("POST", base + "/check", {"path": f"{OBS}/none.jpg"}).json() == {"exist": "false"}
    modified = api.v1("PUT", base, {"path": f"{OBS}/cat.jpg", "tags": {"color": "black"}})
    assert modified.json() == {"result": "Success"}
    hit = api.v1("POST", base + "/search", {"path": f"{OBS}/cat.jpg"}).json()["result"][0]
    assert hit["tags"] == {"color": "black"}  # modify replaces the tags
    deleted = api.v1("DELETE", base, {"path": f"{OBS}/cat.jpg"})
    assert deleted.json() == {"result": "Success"}
    assert api.v1("POST", base + "/check", {"path": f"{OBS}/cat.jpg"}).json() == {"exist": "false"}


def test_image_path_errors(api: Api, ready_instance: str) -> None:
    base = f"/{ready_instance}/image"
    for method, suffix in (("POST", ""), ("DELETE", ""), ("PUT", ""), ("POST", "/check")):
        body = assert_error(api.v1(method, base + suffix, {"tags": {"animal": "x"}}), 400, "IS.0003")
        assert body["error_msg"] == "Arguments of path can not be null."
        assert_error(api.v1(method, base + suffix, {"path": ""}), 400, "IS.0003")
        assert_error(api.v1(method, base + suffix, {"path": 12}), 400, "IS.0002")


def test_add_image_rejects_bad_files_and_tags(api: Api, ready_instance: str) -> None:
    base = f"/{ready_instance}/image"
    assert_error(api.v1("POST", base, {"path": "p", "file": "@@not base64@@"}), 400, "IS.0002")
    assert_error(api.v1("POST", base, {"path": "p", "file": b64(b"GIF89a....")}), 400, "IS.0002")
    assert_error(api.v1("POST", base, {"path": "p", "file": 42}), 400, "IS.0002")
    assert_error(api.v1("POST", base, {"path": f"{OBS}/p.jpg", "tags": ["animal"]}), 400, "IS.0002")
    body = assert_error(
        api.v1("POST", base, {"path": f"{OBS}/p.jpg", "tags": {"undefined": "x"}}), 400, "IS.9003"
    )
    assert "not defined" in body["error_msg"]
    for data in (JPEG, PNG, b"BM" + b"\x00" * 60):
        assert api.v1("POST", base, {"path": "p", "file": b64(data)}).status_code == 200


def test_delete_or_modify_unknown_image_is_the_emulators_own_code(api: Api, ready_instance: str) -> None:
    base = f"/{ready_instance}/image"
    assert_error(api.v1("DELETE", base, {"path": f"{OBS}/nope"}), 400, "IS.9002")
    assert_error(api.v1("PUT", base, {"path": f"{OBS}/nope", "tags": {"animal": "x"}}), 400, "IS.9002")
    api.v1("POST", base, {"path": f"{OBS}/there"})
    assert_error(api.v1("PUT", base, {"path": f"{OBS}/there"}), 400, "IS.0001")
    assert_error(api.v1("PUT", base, {"path": f"{OBS}/there", "tags": {"bad": "x"}}), 400, "IS.9003")


def test_image_ops_on_unknown_instance_is_is0007(api: Api) -> None:
    assert_error(api.v1("POST", "/ghost/image", {"path": f"{OBS}/p.jpg"}), 400, "IS.0007")
    assert_error(api.v1("POST", "/ghost/image/search", {"path": "p"}), 400, "IS.0007")


def test_image_ops_on_non_normal_instance_is_is0014(emulator: Emulator, api: Api) -> None:
    emulator.upsert_instance("busy", status="CREATION", transition_after_s=60)
    body = assert_error(api.v1("POST", "/busy/image", {"path": f"{OBS}/p.jpg"}), 400, "IS.0014")
    assert body["error_msg"] == "Instance status is abnormal."
    emulator.upsert_instance("poor", status="ARREARAGE")
    assert_error(api.v1("POST", "/poor/image/check", {"path": "p"}), 400, "IS.0014")


def test_image_ops_on_an_instance_whose_model_is_missing_is_is0015(emulator: Emulator, api: Api) -> None:
    emulator.upsert_instance("odd", model="retired-model")  # a model the service does not have
    body = assert_error(api.v1("POST", "/odd/image/check", {"path": "p"}), 400, "IS.0015")
    assert body["error_msg"] == "The model file does not exist."
    assert api.query("odd").status_code == 200  # instance calls do not need the model


# --- search ----------------------------------------------------------------------------------------
def _fill(api: Api, name: str, count: int) -> None:
    for i in range(count):
        tags = {"animal": "cat" if i % 2 else "dog"}
        assert api.v1("POST", f"/{name}/image", {"path": f"{OBS}/{i}.jpg", "tags": tags}).status_code == 200


def test_search_exact_match_first_sorted_and_paged(api: Api, ready_instance: str) -> None:
    _fill(api, ready_instance, 12)
    url = f"/{ready_instance}/image/search"
    full = api.v1("POST", url, {"path": f"{OBS}/3.jpg", "limit": 100}).json()
    assert full["count"] == 12
    sims = [hit["sim"] for hit in full["result"]]
    assert full["result"][0] == {"path": f"{OBS}/3.jpg", "sim": 1.0, "tags": {"animal": "cat"}}
    assert sims == sorted(sims, reverse=True)
    assert all(0 < s < 1 for s in sims[1:])
    page = api.v1("POST", url, {"path": f"{OBS}/3.jpg", "limit": 5, "offset": 5}).json()
    assert page["count"] == 12  # total before paging
    assert page["result"] == full["result"][5:10]
    default = api.v1("POST", url, {"path": f"{OBS}/3.jpg"}).json()
    assert len(default["result"]) == 10
    again = api.v1("POST", url, {"path": f"{OBS}/3.jpg", "limit": 100}).json()
    assert again == full  # deterministic


def test_search_by_file_wins_over_path(api: Api, ready_instance: str) -> None:
    base = f"/{ready_instance}/image"
    api.v1("POST", base, {"path": f"{OBS}/png", "file": b64(PNG)})
    api.v1("POST", base, {"path": f"{OBS}/jpeg", "file": b64(JPEG)})
    result = api.v1("POST", base + "/search", {"file": b64(JPEG), "path": f"{OBS}/png"}).json()["result"]
    assert result[0] == {"path": f"{OBS}/jpeg", "sim": 1.0, "tags": {}}
    assert result[1]["sim"] < 1.0


def test_search_tag_filter(api: Api, ready_instance: str) -> None:
    _fill(api, ready_instance, 6)
    url = f"/{ready_instance}/image/search"
    cats = api.v1("POST", url, {"path": f"{OBS}/0.jpg", "tags": {"animal": "cat"}}).json()
    assert cats["count"] == 3
    assert {hit["tags"]["animal"] for hit in cats["result"]} == {"cat"}
    assert_error(api.v1("POST", url, {"path": f"{OBS}/0.jpg", "tags": {"size": "xl"}}), 400, "IS.9003")


def test_search_crop_box(api: Api, ready_instance: str) -> None:
    _fill(api, ready_instance, 3)
    url = f"/{ready_instance}/image/search"
    box = {"x": 0, "y": 0, "width": 50, "height": 40}
    snake = api.v1("POST", url, {"path": f"{OBS}/0.jpg", "is_crop": True, "box": box}).json()
    camel = api.v1("POST", url, {"path": f"{OBS}/0.jpg", "isCrop": True, "box": box}).json()
    plain = api.v1("POST", url, {"path": f"{OBS}/0.jpg"}).json()
    assert snake == camel
    assert snake != plain  # the crop changes the query
    assert_error(api.v1("POST", url, {"path": f"{OBS}/0.jpg", "is_crop": True}), 400, "IS.0001")
    bad_box = {"x": 0, "y": 0, "width": "50", "height": 40}
    assert_error(
        api.v1("POST", url, {"path": f"{OBS}/0.jpg", "is_crop": True, "box": bad_box}), 400, "IS.0002"
    )
    assert_error(api.v1("POST", url, {"path": f"{OBS}/0.jpg", "is_crop": "yes"}), 400, "IS.0002")


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"limit": 0}, "IS.0002"),
        ({"limit": 101}, "IS.0002"),
        ({"limit": "10"}, "IS.0002"),
        ({"limit": True}, "IS.0002"),
        ({"offset": -1}, "IS.0002"),
        ({"offset": 1.5}, "IS.0002"),
    ],
)
def test_search_limit_offset_validation(
    api: Api, ready_instance: str, extra: dict[str, Any], code: str
) -> None:
    assert_error(api.v1("POST", f"/{ready_instance}/image/search", {"path": "p", **extra}), 400, code)


def test_search_limits_accepted_at_bounds(api: Api, ready_instance: str) -> None:
    url = f"/{ready_instance}/image/search"
    assert api.v1("POST", f"/{ready_instance}/image", {"path": "p", "file": b64(PNG)}).status_code == 200
    for extra in ({"limit": 1}, {"limit": 100}, {"offset": 0}):
        assert api.v1("POST", url, {"path": "p", **extra}).json()["count"] == 1
    assert_error(api.v1("POST", url, {}), 400, "IS.0001")


# --- gateway-level ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/v1/{DEFAULT_PROJECT_ID}/service"),
        ("PATCH", f"/v1/{DEFAULT_PROJECT_ID}/service/lib"),
        ("GET", f"/v1/{DEFAULT_PROJECT_ID}/lib/image"),
        ("GET", f"/v1/{DEFAULT_PROJECT_ID}/lib/image/search"),
        ("POST", "/v2/whatever"),
        ("GET", "/"),
    ],
)
def test_unknown_route_or_method_is_404_apigw0101(api: Api, method: str, path: str) -> None:
    response = api.call(method, path)
    body = assert_error(response, 404, "APIGW.0101")
    assert body["request_id"] == response.headers["X-Request-Id"]


def test_body_size_limits(api: Api, ready_instance: str) -> None:
    url = f"/{ready_instance}/image"
    big = b'{"path": "p", "file": "' + b"A" * (11 * 1024 * 1024) + b'"}'
    assert_error(api.v1("POST", url, data=big, headers={"Content-Type": "application/json"}), 400, "IS.0006")
    huge = b"A" * (12 * 1024 * 1024 + 10)
    response = api.v1("POST", url, data=huge, headers={"Content-Type": "application/json"})
    assert_error(response, 413, "APIGW.0201")


def test_every_response_has_a_unique_request_id(api: Api, ready_instance: str) -> None:
    responses = [
        api.query(ready_instance),
        api.query("missing"),
        api.query(ready_instance, token=None),
        api.call("GET", "/nowhere"),
        api.password_token(),
        api.session.get(api.url + "/_emulator/health"),
    ]
    ids = [r.headers["X-Request-Id"] for r in responses]
    assert all(len(i) == 32 for i in ids)
    assert len(set(ids)) == len(ids)
