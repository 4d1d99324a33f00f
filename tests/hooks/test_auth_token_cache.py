"""The token cache's fetch counter: what ``benchmarks/fig_tokens.py`` reports as the provider's own
count of IAM token fetches, cross-checked against the emulator's count of token requests.

A cache starts at 0 fetches, counts one per token it obtains (however many hooks and calls share it),
and one more when a rejected token is replaced.
"""

from __future__ import annotations

from collections.abc import Callable

from airflow_provider_imagesearch.auth import TokenCache
from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook


def test_a_new_cache_has_fetched_nothing_and_counts_each_token_it_obtains(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    emulator.upsert_instance("tok-1", status="NORMAL")
    conn_id = imagesearch_conn("iam_password")
    cache = TokenCache()
    assert cache.fetches == 0
    hooks = [ImageSearchHook(conn_id, token_cache=cache) for _ in range(2)]
    try:
        for hook in hooks:
            for _ in range(2):
                assert hook.get_instance("tok-1").instance_name == "tok-1"
        assert (cache.fetches, emulator.stats()["token_requests"]) == (1, 1)
        emulator.control.expire_tokens(include_ready=False)  # the gateway rejects the cached token
        assert hooks[0].get_instance("tok-1").instance_name == "tok-1"
        assert (cache.fetches, emulator.stats()["token_requests"]) == (2, 2)
    finally:
        for hook in hooks:
            hook.close()
