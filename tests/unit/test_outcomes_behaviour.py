"""Task outcomes and the messages users read in the task log, as the mutation run found them untested
(docs/mutation-testing.rst)."""

from __future__ import annotations

import pytest

from airflow_provider_imagesearch.errors import (
    ImageSearchApiError,
    ImageSearchAuthError,
    ImageSearchConfigError,
    ImageSearchResponseError,
    ImageSearchServerError,
    ImageSearchThrottledError,
    ImageSearchTransportError,
    ImageSearchValidationError,
)
from airflow_provider_imagesearch.models import InstanceStatus
from airflow_provider_imagesearch.outcomes import (
    failure_status_message,
    is_permanent,
    missing_message,
    result_of_wait_event,
)


def test_one_missing_instance_of_a_fleet_is_named_with_its_project() -> None:
    assert missing_message(["shop-2"], "p1") == "ImageSearch instance 'shop-2' does not exist in project p1"
    assert missing_message(["shop-2"], None) == (
        "ImageSearch instance 'shop-2' does not exist in project (connection default)"
    )


def test_several_missing_instances_are_each_named_in_input_order() -> None:
    assert missing_message(["b", "a"], "p1") == "2 ImageSearch instances do not exist in project p1: b, a"
    assert missing_message(["b", "a", "c"], None) == (
        "3 ImageSearch instances do not exist in project (connection default): b, a, c"
    )


def test_a_failure_status_names_the_status_its_meaning_and_why_the_task_fails_now() -> None:
    message = failure_status_message("shop", InstanceStatus.ABNORMAL)
    assert message == (
        f"ImageSearch instance 'shop' is ABNORMAL: {InstanceStatus.ABNORMAL.meaning}. "
        "It will not become ready by waiting, so the task fails now."
    )


# --- the sensor's and the lifecycle operators' outcome of a trigger's wait event -----------------------

# Plain test ids (no spaces or quotes): mutmut and CI's mutation sample pass node ids on a command line.
_EVENT_OUTCOMES = [
    pytest.param(
        {"status": "timeout", "message": "gave up after 60 s"}, "AirflowSensorTimeout", id="timeout"
    ),
    pytest.param({"status": "failure", "message": "shop is ABNORMAL"}, "AirflowFailException", id="failure"),
    pytest.param(
        {"status": "not_found", "message": "shop does not exist"}, "AirflowFailException", id="not_found"
    ),
    pytest.param({"status": "error", "message": "refused credentials"}, "AirflowFailException", id="error"),
    pytest.param(
        {"status": "error", "message": "refused credentials", "retryable": False},
        "AirflowFailException",
        id="error-not-retryable",
    ),
    pytest.param(
        {"status": "error", "message": "endpoint down", "retryable": True},
        "ImageSearchWaitError",
        id="error-retryable",
    ),
    pytest.param({"status": "surprise", "message": "odd"}, "AirflowException", id="unknown-status"),
]


@pytest.mark.parametrize(("event", "raised"), _EVENT_OUTCOMES)
def test_each_wait_event_ends_the_task_as_documented_with_the_triggers_message(
    event: dict[str, object], raised: str
) -> None:
    # AirflowFailException fails at once (no retry); ImageSearchWaitError goes through task retries; a
    # sensor timeout is a timeout (soft_fail turns it into a skip).
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the exact type is asserted below
        result_of_wait_event(event, "shop")
    assert type(caught.value).__name__ == raised
    assert str(caught.value) == event["message"]


def test_a_wait_that_ends_without_an_event_or_with_an_unknown_one_says_so() -> None:
    from airflow_provider_imagesearch.version_compat import AirflowException

    with pytest.raises(AirflowException, match=r"^Trigger for shop ended without an event$"):
        result_of_wait_event(None, "shop")
    with pytest.raises(AirflowException, match=r"^Trigger for shop ended without an event$"):
        result_of_wait_event({}, "shop")
    with pytest.raises(AirflowException) as caught:
        result_of_wait_event({"status": "surprise"}, "shop")
    assert type(caught.value) is AirflowException
    assert str(caught.value) == "Unexpected trigger event 'surprise'"


def test_success_returns_the_instance_or_the_fleet_in_input_order() -> None:
    one = {"instance_name": "shop", "status": "NORMAL"}
    fleet = [{"instance_name": "b"}, {"instance_name": "a"}]
    assert result_of_wait_event({"status": "success", "instance": one}, "shop") == one
    assert result_of_wait_event({"status": "success", "instances": fleet, "instance": None}, "b,a") == fleet
    # an instance that is gone (a delete wait): None
    assert result_of_wait_event({"status": "success", "instance": None}, "shop") is None


def _api(cls: type[ImageSearchApiError], status: int | None, code: str) -> ImageSearchApiError:
    return cls(status=status, error_code=code, error_msg="m", method="GET", path="/v1/p/shop")


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        # a refused certificate is configuration: no retry fixes it, the task fails at once
        (_api(ImageSearchTransportError, None, "TLS_ERROR"), True),
        (_api(ImageSearchTransportError, None, "CONNECTION_ERROR"), False),
        (_api(ImageSearchTransportError, None, "TIMEOUT"), False),
        (_api(ImageSearchServerError, 503, "APIGW.0613"), False),
        (_api(ImageSearchThrottledError, 429, "APIGW.0308"), False),
        (_api(ImageSearchResponseError, 200, "RESPONSE"), False),
        (_api(ImageSearchApiError, 400, "IS.0002"), True),
        (_api(ImageSearchAuthError, 401, "APIGW.0301"), True),
        (ImageSearchConfigError("no host"), True),
        (ImageSearchValidationError("instance_name", "1-64 letters", "!"), True),
        (RuntimeError("not ours"), False),
    ],
    ids=lambda v: f"{type(v).__name__}-{getattr(v, 'error_code', '')}",
)
def test_only_errors_no_retry_can_fix_fail_the_task_at_once(error: BaseException, permanent: bool) -> None:
    assert is_permanent(error) is permanent
