"""Request dispatch: control routes, fault injection, authentication, the API, statistics.

One :class:`App` per server. It is only ever called from the server's event loop, so none of its state
needs locks; in-process users reach it over HTTP (``EmulatorClient``) like everybody else.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any

from airflow_provider_imagesearch.emulator import constants as c
from airflow_provider_imagesearch.emulator import iam
from airflow_provider_imagesearch.emulator.auth import auth_kind, authenticate, check_token
from airflow_provider_imagesearch.emulator.faults import (
    DROP_AFTER,
    GATEWAY_FAULTS,
    MALFORMED_KINDS,
    SERVICE_FAULTS,
    UNAVAILABLE_AFTER,
    FaultConfig,
    FaultConfigError,
    FaultInjector,
    malform,
    service_error_api,
)
from airflow_provider_imagesearch.emulator.routes import (
    R_CREATE,
    R_PROJECTS,
    R_TOKENS,
    R_UNKNOWN,
    V1,
    Settings,
    match,
    service_error,
)
from airflow_provider_imagesearch.emulator.routes_v2 import V2, V2_ROUTES, match_v2
from airflow_provider_imagesearch.emulator.state import (
    SeedError,
    State,
    load_json_file,
    load_v2_items,
    save_json_file,
)
from airflow_provider_imagesearch.emulator.stats import Stats
from airflow_provider_imagesearch.emulator.wire import JSON_TYPE, Request, Response

_MALFORMED = frozenset(MALFORMED_KINDS)
_IAM_ROUTES = frozenset({R_TOKENS, R_PROJECTS})
CONTROL_PREFIX = "/_emulator/"


def gateway_error(error: tuple[int, str, str], request: Request) -> Response:
    status, code, message = error
    return Response.json(status, {"error_code": code, "error_msg": message, "request_id": request.request_id})


def _control_error(status: int, message: str) -> Response:
    return Response.json(status, {"error": message})


class App:
    def __init__(
        self,
        *,
        seed: dict[str, Any] | None = None,
        faults: FaultConfig | dict[str, Any] | None = None,
        settings: Settings | None = None,
        state_file: str | None = None,
    ) -> None:
        self.state_file = state_file
        if state_file and os.path.exists(state_file):
            seed = load_json_file(state_file)
        self.state = State.from_seed(seed)
        #: What ``POST /_emulator/reset`` goes back to: the state, faults and settings of the start.
        initial_faults = faults.to_dict() if isinstance(faults, FaultConfig) else copy.deepcopy(faults)
        self._initial = (copy.deepcopy(seed), initial_faults, dataclasses.replace(settings or Settings()))
        if isinstance(faults, dict):
            faults = FaultConfig.from_dict(faults)
        self.injector = FaultInjector(faults)
        self.settings = settings or Settings()
        self.stats = Stats()
        self.v1 = V1(self.state, self.settings)
        self.v2 = V2(self.state, self.settings)

    def reset(self, *, keep_tokens: bool = True) -> None:
        """Back to the start: the seed's data, its faults and settings, zeroed statistics.

        IAM tokens issued since are kept unless ``keep_tokens`` is False (they are credentials, not data:
        a client that cached one goes on using it, as it would across a test's data being reset).
        """
        seed, faults, settings = self._initial
        state = State.from_seed(copy.deepcopy(seed))
        if keep_tokens:
            for value, token in self.state.tokens.items():
                if not token.ready:
                    state.tokens[value] = token
        self.state = state
        self.v1.state = self.v2.state = state
        for key, value in vars(settings).items():
            setattr(self.settings, key, value)
        self.injector.configure(FaultConfig.from_dict(faults) if faults else FaultConfig())
        self.stats.reset()

    # --- entry point ------------------------------------------------------------------------------
    def handle(
        self, request: Request, client_gone: Callable[[], bool]
    ) -> Response | Coroutine[Any, Any, Response]:
        """Answer ``request``; returns a coroutine instead only when a fault or latency must delay it."""
        if request.path.startswith(CONTROL_PREFIX):
            return self._control(request)
        matched = match(request.method, request.path) or match_v2(request.method, request.path)
        auth = auth_kind(request)
        if matched is None:
            response = gateway_error(c.GW_NOT_FOUND, request)
            self._record(request, R_UNKNOWN, 404, None, auth, None, response)
            return response
        route, project_id, name = matched
        injector = self.injector
        fault: str | None = None
        if injector.in_scope("iam" if route in _IAM_ROUTES else "api"):
            fault = injector.choose(None if route in _IAM_ROUTES else "v2" if route in V2_ROUTES else "v1")
            delay = injector.config.latency_seconds
            if fault == "slow":
                delay += injector.config.slow_seconds
            if delay:
                return self._delayed(delay, client_gone, request, route, project_id, name, fault, auth)
        return self._answer(request, route, project_id, name, fault, auth)

    async def _delayed(
        self,
        delay: float,
        client_gone: Callable[[], bool],
        request: Request,
        route: str,
        project_id: str,
        name: str | None,
        fault: str | None,
        auth: str,
    ) -> Response:
        await asyncio.sleep(delay)
        if client_gone():  # the client timed out: the request never reaches the "backend"
            self._record(request, route, None, fault, auth, name)
            return Response(0, drop=True)
        return self._answer(request, route, project_id, name, fault, auth)

    def _answer(
        self, request: Request, route: str, project_id: str, name: str | None, fault: str | None, auth: str
    ) -> Response:
        if fault in GATEWAY_FAULTS:
            response = self._gateway_fault(fault, request)
            self._record(
                request, route, None if response.drop else response.status, fault, auth, name, response
            )
            return response
        now = time.time()
        if route in _IAM_ROUTES:
            if fault in SERVICE_FAULTS:  # an ImageSearch code has no meaning on IAM: not applied
                fault = None
            response = self._iam(route, request, now)
        elif route not in V2_ROUTES and _empty_token(request):
            # The service's own word for it (IS.0013 "The token is empty."), not the gateway's.
            self.stats.auth_failures += 1
            response = service_error(c.IS_TOKEN_EMPTY)
            if fault in SERVICE_FAULTS:
                fault = None
        else:
            outcome = authenticate(request, project_id, self.state, self.injector, now)
            if fault in SERVICE_FAULTS and service_error_api(fault) != ("v2" if route in V2_ROUTES else "v1"):
                fault = None  # a v1 code is never answered on a v2 route, nor the reverse
            if outcome.error is not None:
                self.stats.auth_failures += 1
                self.stats.token_expiries += outcome.expired
                response = gateway_error(outcome.error, request)
                if fault in SERVICE_FAULTS:  # the gateway answered before the service saw it
                    fault = None
            elif fault in SERVICE_FAULTS:
                # The service failed before the operation took effect: nothing is processed.
                response = service_error(c.SERVICE_FAULT_ERRORS[fault])
            elif route in V2_ROUTES:
                response = self.v2.handle(route, request, project_id, name)
            else:
                response = self.v1.handle(route, request, project_id, name, now)
            if route == R_CREATE:
                name = _created_name(request)
        if fault in _MALFORMED:
            response, fault = self._malform(fault, response)
        if fault == DROP_AFTER:  # processed (state changed), then the answer is lost
            self._record(request, route, None, fault, auth, name)
            return Response(0, drop=True)
        if fault == UNAVAILABLE_AFTER:  # processed (state changed), then the gateway answers 503
            response = gateway_error(c.GW_UNAVAILABLE, request)
        self._record(request, route, response.status, fault, auth, name, response)
        return response

    def _record(
        self,
        request: Request,
        route: str,
        status: int | None,
        fault: str | None,
        auth: str,
        name: str | None,
        response: Response | None = None,
    ) -> None:
        self.stats.record(
            method=request.method,
            path=request.path,
            route=route,
            status=status,
            fault=fault,
            auth=auth,
            instance=name,
            error_code=_error_code(response),
        )

    def _gateway_fault(self, fault: str, request: Request) -> Response:
        if fault == "drop":
            return Response(0, drop=True)
        if fault == "502_html":
            return Response(502, c.BAD_GATEWAY_HTML.encode(), "text/html")
        if fault == "429":
            response = gateway_error(c.GW_THROTTLED, request)
            response.headers.append(("Retry-After", self.injector.config.retry_after))
            return response
        error = {"500_json": c.GW_INTERNAL, "503_json": c.GW_UNAVAILABLE, "403": c.GW_FORBIDDEN}[fault]
        return gateway_error(error, request)

    @staticmethod
    def _malform(fault: str, response: Response) -> tuple[Response, str | None]:
        if not 200 <= response.status < 300 or response.content_type != JSON_TYPE:
            return response, None
        changed = malform(fault, json.loads(response.body))
        if changed is None:
            return response, None
        status, body, content_type = changed
        headers = response.headers
        if fault == "missing_fields" or status >= 300:
            headers = [h for h in headers if h[0] != "X-Subject-Token"]
        return Response(status, body, content_type, headers), fault

    def _iam(self, route: str, request: Request, now: float) -> Response:
        base_url = "http://" + request.headers.get("host", "127.0.0.1")
        if route == R_TOKENS:
            self.stats.token_requests += 1
            response = iam.issue_token(request, self.state, self.settings.token_lifetime, now, base_url)
            if response.status == 201:
                self.stats.tokens_issued += 1
            elif response.status == 401:
                self.stats.auth_failures += 1
            return response
        outcome = check_token(request.headers.get("x-auth-token", ""), self.state, self.injector, now)
        if outcome.error is not None or outcome.token is None:
            self.stats.auth_failures += 1
            self.stats.token_expiries += outcome.expired
            return iam.keystone_error(401, "The request you have made requires authentication.")
        return iam.list_projects(request, self.state, outcome.token)

    # --- control endpoints ------------------------------------------------------------------------
    def _control(self, request: Request) -> Response:
        action = request.path[len(CONTROL_PREFIX) :]
        method = request.method
        try:
            body = json.loads(request.body) if request.body.strip() else {}
        except ValueError:
            return _control_error(400, "control request body must be JSON")
        try:
            if method == "GET":
                return self._control_get(action, request)
            if method == "POST":
                return self._control_post(action, body)
            if method == "DELETE" and action.startswith("instances/"):
                project_id, _, name = action[len("instances/") :].partition("/")
                if self.state.instances.pop((project_id, name), None) is None:
                    return _control_error(404, f"no instance {project_id}/{name}")
                return Response.json(200, {"deleted": f"{project_id}/{name}"})
        except (SeedError, FaultConfigError) as exc:
            return _control_error(400, str(exc))
        return _control_error(404, f"unknown control endpoint {method} {request.path}")

    def _control_get(self, action: str, request: Request) -> Response:
        now = time.time()
        if action == "health":
            return Response.json(200, {"status": "ok", "uptime_s": round(now - self.stats.started, 3)})
        if action == "stats":
            return Response.json(200, self.stats.snapshot(self.injector.forced_expiries(now)))
        if action == "requests":
            log = list(self.stats.log)
            for item in request.query.split("&"):
                key, _, value = item.partition("=")
                if key == "limit" and value.isdigit():
                    log = log[-int(value) :] if int(value) else []
            return Response.json(200, log)
        if action == "faults":
            return Response.json(200, self.injector.snapshot())
        if action == "state":
            return Response.json(200, self.state.to_seed(now))
        if action == "config":
            return Response.json(200, vars(self.settings))
        return _control_error(404, f"unknown control endpoint GET /_emulator/{action}")

    def _control_post(self, action: str, body: Any) -> Response:
        if action == "faults":
            self.injector.configure(self.injector.config.merged(body))
            return Response.json(200, self.injector.snapshot())
        if action == "reset-stats":
            self.stats.reset()
            return Response.json(200, {"reset": True})
        if action == "reset":
            if not isinstance(body, dict) or set(body) - {"keep_tokens"}:
                raise SeedError("reset accepts only {'keep_tokens': true|false}")
            keep = body.get("keep_tokens", True)
            if not isinstance(keep, bool):
                raise SeedError("keep_tokens must be true or false")
            self.reset(keep_tokens=keep)
            return Response.json(200, {"reset": True})
        if action == "expire-tokens":
            include_ready = not (isinstance(body, dict) and body.get("include_ready") is False)
            expired = 0
            for token in self.state.tokens.values():
                if (include_ready or not token.ready) and not token.revoked:
                    token.revoked = True
                    expired += 1
            self.stats.token_expiry_events += 1
            return Response.json(200, {"expired": expired})
        if action == "instances":
            items = body.get("instances") if isinstance(body, dict) else body
            if not isinstance(items, list):
                raise SeedError("expected a list of instances (or {'instances': [...]})")
            now = time.time()
            upserted = [self.state.upsert_instance(item, now).to_api() for item in items]
            return Response.json(200, {"instances": upserted})
        if action == "images":
            return Response.json(200, {"images": self._add_images(body)})
        if action == "v2-items":
            return Response.json(200, {"items": self._add_v2_items(body)})
        if action == "v2-services":
            items = body.get("services") if isinstance(body, dict) else body
            if not isinstance(items, list):
                raise SeedError("expected a list of v2 services (or {'services': [...]})")
            return Response.json(200, {"services": [self.state.upsert_service(i).to_seed() for i in items]})
        if action == "save":
            if not self.state_file:
                return _control_error(400, "the emulator was started without a state file")
            self.save()
            return Response.json(200, {"saved": self.state_file})
        if action == "config":
            return self._configure(body)
        return _control_error(404, f"unknown control endpoint POST /_emulator/{action}")

    def _add_images(self, body: Any) -> int:
        """``{"project_id"?, "instance", "images": {path: {"tags"?, "digest"?}}}``: added to (or replacing
        the same paths of) an existing instance's images; its other images are kept."""
        if not isinstance(body, dict) or not isinstance(body.get("instance"), str):
            raise SeedError("expected {'instance': name, 'images': {path: image}, 'project_id'?: id}")
        project_id = body.get("project_id", next(iter(self.state.projects.values())))
        instance = self.state.instances.get((project_id, body["instance"]))
        if instance is None:
            raise SeedError(f"no instance {project_id}/{body['instance']}")
        self.state._load_images(instance, body.get("images"))
        return len(instance.images)

    def _add_v2_items(self, body: Any) -> int:
        """``{"project_id"?, "service", "items": {item_id: seed item}}``: added to (or replacing the same ids
        of) an existing v2 service's items; its other items are kept."""
        if not isinstance(body, dict) or not isinstance(body.get("service"), str):
            raise SeedError("expected {'service': name, 'items': {item_id: item}, 'project_id'?: id}")
        project_id = body.get("project_id", next(iter(self.state.projects.values())))
        service = self.state.services.get((project_id, body["service"]))
        if service is None:
            raise SeedError(f"no v2 service {project_id}/{body['service']}")
        service.items.update(load_v2_items(body.get("items")))
        return len(service.items)

    def _configure(self, body: Any) -> Response:
        if not isinstance(body, dict) or set(body) - set(vars(self.settings)):
            raise SeedError(f"config accepts only {sorted(vars(self.settings))}")
        for key, value in body.items():
            if key == "own_codes_as":
                if value is not None and (not isinstance(value, str) or not value.strip()):
                    raise SeedError("own_codes_as must be an error code string, or null")
                self.settings.own_codes_as = value
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise SeedError(f"{key} must be a number >= 0")
            setattr(self.settings, key, float(value))
        return Response.json(200, vars(self.settings))

    def save(self) -> None:
        """Write the state file (no-op without one)."""
        if self.state_file:
            save_json_file(self.state_file, self.state.to_seed(time.time()))


def _error_code(response: Response | None) -> str | None:
    """The ``error_code`` of an error answer (JSON, gateway or service shape), for the request log."""
    if response is None or response.status < 400 or response.drop or response.content_type != JSON_TYPE:
        return None
    try:
        body = json.loads(response.body)
    except ValueError:
        return None
    code = body.get("error_code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def _empty_token(request: Request) -> bool:
    token = request.headers.get("x-auth-token")
    return token is not None and not token.strip()


def _created_name(request: Request) -> str | None:
    try:
        name = json.loads(request.body).get("name")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None
    return name if isinstance(name, str) else None
