"""Each password credential has its own cached token, and a hook whose credentials need no token asks for no
token scope.

Protected: a connection whose password IAM refuses fails, even after another connection of the same process
has a token cached (it never borrows that token); an AK/SK or ready-token connection without ``project_id``
or ``region`` works for calls given ``project_id=`` (only an IAM token needs a project scope).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.errors import ImageSearchAuthError
from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook
from tests.support.connections import connection_fields, set_connection


def test_a_refused_password_fails_though_another_connection_has_a_token_cached(
    emulator: Emulator,
    imagesearch_conn: Callable[..., str],
    instance: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = instance("catalog")
    imagesearch_conn(conn_id="imagesearch_good")
    wrong = {**connection_fields(emulator.url), "password": "not-the-password"}
    set_connection(monkeypatch, "imagesearch_wrong_password", **wrong)
    assert ImageSearchHook("imagesearch_good").get_instance(name).instance_name == name
    with pytest.raises(ImageSearchAuthError):
        ImageSearchHook("imagesearch_wrong_password").get_instance(name)
    assert emulator.stats()["token_requests"] == 2


@pytest.mark.parametrize("auth", ["aksk", "token"])
def test_a_connection_without_a_project_or_region_works_for_calls_given_their_project(
    auth: str, imagesearch_conn: Callable[..., str], instance: Callable[..., str]
) -> None:
    name = instance("catalog")
    conn_id = imagesearch_conn(auth, project_id=None, region=None)
    hook = ImageSearchHook(conn_id)
    assert hook.get_instance(name, project_id=DEFAULT_PROJECT_ID).instance_name == name
