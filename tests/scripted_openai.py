"""A real OpenAI-compatible HTTP server on a loopback port, answering from a script.

``ScriptedOpenAI(policy)`` serves ``POST /v1/chat/completions`` (non-streaming) and
``GET /v1/models`` on 127.0.0.1 in a thread. For each completion request it calls
``policy(request)`` and sends back the `Reply` it returns: a completion (text, tool calls, with
malformed arguments if the script says so, optional logprobs and token ids), or an error status
with an OpenAI-style JSON error body (429, 500, ...), after an optional delay. Choosing the reply
from the request (the user prompt, the turn) keeps concurrent rollouts deterministic.

Every request is recorded (`requests`) for assertions: the tools sent, the messages the model
saw, the sampling arguments that came through.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    """One request the server received."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    status: int = 0
    """The status the server answered with."""

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def prompt(self) -> str:
        """The first user message's content."""
        return next((str(m["content"]) for m in self.messages if m["role"] == "user"), "")

    @property
    def turn(self) -> int:
        """The turn this request asks for: assistant messages so far, plus one."""
        return 1 + sum(1 for m in self.messages if m["role"] == "assistant")

    @property
    def last_tool_output(self) -> str:
        """The content of the last tool message, '' if there is none."""
        tools = [m for m in self.messages if m["role"] == "tool"]
        return str(tools[-1]["content"]) if tools else ""


@dataclass
class Reply:
    """What to answer: a status, a JSON body, headers, and a delay before answering."""

    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


Policy = Callable[[Request], Reply]


def call(name: str, arguments: dict[str, Any] | str) -> tuple[str, str]:
    """A tool call for `completion`; a string is sent verbatim (it may be malformed JSON)."""
    return (name, arguments if isinstance(arguments, str) else json.dumps(arguments))


def completion(
    request: Request,
    *,
    content: str | None = None,
    calls: Sequence[tuple[str, str]] = (),
    finish_reason: str | None = None,
    delay_s: float = 0.0,
) -> Reply:
    """A chat completion; logprobs and token ids are added when the request asked for them."""
    tool_calls = [
        {
            "id": f"call_{request.turn}_{i}",
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }
        for i, (name, arguments) in enumerate(calls)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    words = (content or "").split() + [name for name, _ in calls] or ["(empty)"]
    choice: dict[str, Any] = {
        "index": 0,
        "message": message,
        "finish_reason": finish_reason or ("tool_calls" if calls else "stop"),
    }
    if request.body.get("logprobs"):
        choice["logprobs"] = {
            "content": [
                {"token": w, "logprob": -0.25 * (i + 1), "bytes": None, "top_logprobs": []}
                for i, w in enumerate(words)
            ]
        }
    if request.body.get("return_token_ids"):
        choice["token_ids"] = [100 + i for i in range(len(words))]
    prompt_tokens = sum(len(str(m.get("content") or "")) for m in request.messages) // 4 + 1
    body = {
        "id": f"chatcmpl-{request.turn}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.body.get("model", ""),
        "choices": [choice],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(words),
            "total_tokens": prompt_tokens + len(words),
        },
    }
    return Reply(body=body, delay_s=delay_s)


def error(status: int, message: str, *, headers: dict[str, str] | None = None) -> Reply:
    """An error answer with an OpenAI-style body."""
    kind = {401: "invalid_request_error", 404: "invalid_request_error", 429: "rate_limit_error"}
    kind_name = kind.get(status, "server_error" if status >= 500 else "error")
    return Reply(
        status=status,
        body={"error": {"message": message, "type": kind_name, "code": status}},
        headers=headers or {},
    )


class ScriptedOpenAI:
    """The server; use as a context manager, or `start` / `stop`."""

    def __init__(
        self, policy: Policy, *, models: Sequence[str] = ("scripted",), api_key: str | None = None
    ) -> None:
        self.policy = policy
        self.api_key = api_key
        """When set, a request without ``Authorization: Bearer <api_key>`` gets a 401."""
        self.models = list(models)
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        # A client that went away (a cancelled rollout) is no test failure: stay quiet.
        self._server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The API base URL, ending in /v1."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def completions(self) -> list[Request]:
        """The chat completion requests received so far."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def start(self) -> ScriptedOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ScriptedOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _answer(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        request = Request(path=path, body=body, headers=headers)
        if self.api_key and headers.get("authorization") != f"Bearer {self.api_key}":
            reply = error(401, "Incorrect API key provided")
        elif path.rstrip("/").endswith("/models"):
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "tests"} for m in self.models
            ]
            reply = Reply(body={"object": "list", "data": data})
        elif path.endswith("/chat/completions"):
            try:
                reply = self.policy(request)
            except Exception as exc:  # a broken script must show up, not hang the client
                reply = error(500, f"script failed: {type(exc).__name__}: {exc}")
        else:
            reply = error(404, f"no route {path}")
        request.status = reply.status
        with self._lock:
            self.requests.append(request)
        return reply

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _respond(self, body: dict[str, Any]) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = owner._answer(self.path, body, headers)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                data = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    body = {"_unparsable": raw.decode("utf-8", "replace")}
                self._respond(body)

            def do_GET(self) -> None:
                self._respond({})

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
