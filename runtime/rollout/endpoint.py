"""The model side of a rollout: one OpenAI-compatible chat completions endpoint.

`ModelClient.complete` sends the conversation and tools, retries rate limits (429), server
errors (5xx), timeouts and refused connections with exponential backoff (honouring
``Retry-After``), and returns the first choice as a `ModelReply`: the assistant message with
tool-call arguments kept verbatim, finish reason, usage, and token ids / logprobs when the
endpoint sends them. Anything else becomes an `EndpointError` with one readable line.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

import openai
from openai.resources.chat.completions import AsyncCompletions
from pydantic import BaseModel, ConfigDict, Field, field_validator

from runtime.tools.messages import Message, ToolCall

RESERVED = frozenset({"model", "messages", "tools", "stream", "n"})
"""Request fields the driver sets itself; they may not appear in the sampling arguments."""
_CREATE_ARGS = frozenset(inspect.signature(AsyncCompletions.create).parameters) - {"self"}
FATAL_STATUS = frozenset({401, 403, 404})
"""Answers that no retry and no other rollout will fix: bad key, no access, unknown model."""


class Usage(BaseModel):
    """Token counts of one call, or summed over a rollout."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
        )


class ModelEndpoint(BaseModel):
    """Where and how to sample: the model, the server, and arguments passed through."""

    model_config = ConfigDict(extra="forbid")

    model: str
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key: str = Field(default="EMPTY", repr=False, exclude=True)
    sampling: dict[str, Any] = Field(default_factory=dict)
    """Passed to `chat.completions.create` (temperature, top_p, max_tokens, logprobs, ...);
    fields the `openai` package does not know (top_k, min_p, ...) go in the request body."""
    timeout_s: float = Field(default=600.0, gt=0)
    """Per request."""
    max_retries: int = Field(default=4, ge=0)
    """Retries of a 429, a 5xx, a timeout or a refused connection."""
    retry_backoff_s: float = Field(default=1.0, ge=0)
    """First retry delay; it doubles on each retry (with jitter), up to `max_backoff_s`."""
    max_backoff_s: float = Field(default=30.0, ge=0)

    @field_validator("sampling")
    @classmethod
    def _no_reserved(cls, value: dict[str, Any]) -> dict[str, Any]:
        taken = sorted(RESERVED & set(value))
        if taken:
            raise ValueError(f"sampling arguments may not set {', '.join(taken)}")
        return value

    def request_arguments(self) -> dict[str, Any]:
        """The sampling arguments split into `create` keywords and `extra_body`."""
        known: dict[str, Any] = {}
        extra: dict[str, Any] = dict(self.sampling.get("extra_body") or {})
        for key, value in self.sampling.items():
            if key == "extra_body":
                continue
            if key in _CREATE_ARGS:
                known[key] = value
            else:
                extra[key] = value
        if extra:
            known["extra_body"] = extra
        return known


class EndpointError(Exception):
    """The model endpoint failed; ``kind`` says how, ``fatal`` whether every rollout would."""

    def __init__(self, kind: str, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.fatal = fatal


class ModelReply(BaseModel):
    """The first choice of one completion, plus what a trainer keeps with it."""

    message: Message
    finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    token_ids: list[int] = Field(default_factory=list)
    logprobs: list[float] = Field(default_factory=list)
    prompt_token_ids: list[int] = Field(default_factory=list)
    reasoning_content: str | None = None
    model_s: float = 0.0
    attempts: int = 1


def _error_text(exc: openai.APIStatusError) -> str:
    body: Any = exc.body
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            inner = inner.get("message") or inner.get("detail") or inner
        body = inner
    text = body if isinstance(body, str) and body else exc.message
    return " ".join(str(text).split())[:300]


def _retry_after(exc: openai.APIStatusError) -> float | None:
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return max(0.0, float(headers.get(name, "")) * scale)
        except ValueError:
            continue
    return None


def _root_cause(exc: BaseException) -> str:
    """The innermost reason of a connection failure, e.g. 'Connection refused'."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    for item in reversed(seen):
        if isinstance(item, OSError) and item.errno:
            return os.strerror(item.errno)
    return str(seen[-1]) or type(seen[-1]).__name__


def _token_ids(choice: Mapping[str, Any], tokens: Sequence[Mapping[str, Any]]) -> list[int]:
    for key in ("token_ids", "output_token_ids"):
        ids = choice.get(key)
        if isinstance(ids, list) and all(isinstance(i, int) for i in ids):
            return list(ids)
    # vLLM with `return_tokens_as_token_ids`: each token reads "token_id:123".
    texts = [str(t.get("token", "")) for t in tokens]
    if texts and all(t.startswith("token_id:") and t[9:].isdigit() for t in texts):
        return [int(t[9:]) for t in texts]
    return []


def parse_reply(data: Mapping[str, Any]) -> ModelReply:
    """A chat completion body (as JSON) to a `ModelReply`; tool-call ids are made unique."""
    choices = data.get("choices") or []
    if not choices or not isinstance(choices[0], Mapping):
        raise EndpointError("endpoint_error", "the model endpoint answered with no choices")
    choice = choices[0]
    raw = choice.get("message") or {}
    calls: list[ToolCall] = []
    seen: set[str] = set()
    for i, call in enumerate(raw.get("tool_calls") or []):
        function = call.get("function") or {}
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = "" if arguments is None else json.dumps(arguments)
        call_id = str(call.get("id") or "")
        if not call_id or call_id in seen:
            call_id = f"call_{i}_{len(seen)}"
        seen.add(call_id)
        calls.append(
            ToolCall(id=call_id, name=str(function.get("name") or ""), arguments=arguments)
        )
    content = raw.get("content")
    logprob_block = choice.get("logprobs") or {}
    tokens = [t for t in (logprob_block.get("content") or []) if isinstance(t, Mapping)]
    usage = data.get("usage") or {}
    prompt_ids = data.get("prompt_token_ids") or choice.get("prompt_token_ids") or []
    reasoning = raw.get("reasoning_content") or raw.get("reasoning")
    return ModelReply(
        message=Message(
            role="assistant",
            content=content if isinstance(content, str) else None,
            tool_calls=calls,
        ),
        finish_reason=choice.get("finish_reason"),
        usage=Usage(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            total_tokens=int(usage.get("total_tokens") or 0),
        ),
        token_ids=_token_ids(choice, tokens),
        logprobs=[float(t["logprob"]) for t in tokens if isinstance(t.get("logprob"), int | float)],
        prompt_token_ids=[int(i) for i in prompt_ids if isinstance(i, int)],
        reasoning_content=reasoning if isinstance(reasoning, str) else None,
    )


class ModelClient:
    """Sends chat completion requests to one endpoint, with retries and backoff."""

    def __init__(self, endpoint: ModelEndpoint) -> None:
        self.endpoint = endpoint
        self._openai = openai.AsyncOpenAI(
            base_url=endpoint.base_url,
            api_key=endpoint.api_key or "EMPTY",
            timeout=endpoint.timeout_s,
            max_retries=0,
        )
        self._arguments = endpoint.request_arguments()

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._openai.close()

    async def check(self) -> None:
        """Fail fast with a fatal `EndpointError` when the endpoint is down or refuses us.

        Asks for the model list; a server without that route (404, 405) passes.
        """
        try:
            await self._openai.models.list(timeout=min(self.endpoint.timeout_s, 30.0))
        except openai.APIStatusError as exc:
            if exc.status_code in (401, 403):
                raise self._status_error(exc) from None
        except openai.APIConnectionError as exc:
            raise self._connection_error(exc) from None

    async def complete(
        self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]
    ) -> ModelReply:
        """One completion; retried on 429, 5xx, timeouts and refused connections."""
        started = time.monotonic()
        request: dict[str, Any] = {
            "model": self.endpoint.model,
            "messages": list(messages),
            **self._arguments,
        }
        if tools:
            request["tools"] = list(tools)
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._openai.chat.completions.create(**request)
            except openai.APIStatusError as exc:
                retryable = exc.status_code in (408, 409, 429) or exc.status_code >= 500
                if not retryable or attempt > self.endpoint.max_retries:
                    raise self._status_error(exc, attempt) from None
                await asyncio.sleep(self._delay(attempt, _retry_after(exc)))
            except openai.APIConnectionError as exc:
                if attempt > self.endpoint.max_retries:
                    raise self._connection_error(exc, attempt) from None
                await asyncio.sleep(self._delay(attempt, None))
            except openai.OpenAIError as exc:
                raise EndpointError("endpoint_error", f"bad model response: {exc}") from None
            else:
                dump = getattr(response, "model_dump", None)
                if dump is None:  # not JSON: some proxies answer 200 with an HTML page
                    raise EndpointError(
                        "endpoint_error",
                        f"the model endpoint answered with no chat completion: {response!r:.200}",
                    )
                reply = parse_reply(dump())
                reply.model_s = time.monotonic() - started
                reply.attempts = attempt
                return reply

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, max(self.endpoint.max_backoff_s, 1.0) * 4)
        base = self.endpoint.retry_backoff_s * 2.0 ** (attempt - 1)
        return min(base, self.endpoint.max_backoff_s) * (0.75 + random.random() / 4)

    def _status_error(self, exc: openai.APIStatusError, attempts: int = 1) -> EndpointError:
        code = exc.status_code
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        text = f"the model endpoint answered {code}{tries}: {_error_text(exc)}"
        if code in FATAL_STATUS:
            return EndpointError("endpoint_rejected", text, fatal=True)
        kind = "endpoint_bad_request" if code < 500 and code != 429 else "endpoint_error"
        return EndpointError(kind, text)

    def _connection_error(self, exc: openai.APIConnectionError, attempts: int = 1) -> EndpointError:
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        if isinstance(exc, openai.APITimeoutError):
            return EndpointError(
                "endpoint_timeout",
                f"the model endpoint at {self.endpoint.base_url} did not answer within "
                f"{self.endpoint.timeout_s:g} s{tries}",
            )
        return EndpointError(
            "endpoint_unreachable",
            f"cannot reach the model endpoint at {self.endpoint.base_url}{tries}: "
            f"{_root_cause(exc)}",
            fatal=True,
        )
