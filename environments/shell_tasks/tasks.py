"""The shell tasks: 37 terminal tasks in five categories, each with a seeded setup, a checker of
the final state, and a reference solution (used by the tests and the gold turns only).

Every setup draws its data from the episode's ``rng``, so the numbers, names and histories
differ between episodes (and repeat for a repeated seed); what the checker expects is computed
here on the host and never written into the sandbox.
"""

from __future__ import annotations

import hashlib
import posixpath
import random
import re
import shlex
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .core import Box, Check, Checker, Probe, Setup, ShellTask, lines, same_set, same_text
from .gitview import GitView

q = shlex.quote

# fmt: off
WORDS = (
    "alpha", "bravo", "cedar", "delta", "ember", "falcon", "garnet", "harbor", "island",
    "jasper", "kettle", "lantern", "meadow", "nectar", "orchid", "pepper", "quartz", "raven",
    "saddle", "timber", "umber", "velvet", "willow", "xenon", "yonder", "zephyr", "amber",
    "basil", "copper", "dune", "echo", "fern", "glacier", "hazel", "iris", "juniper", "kelp",
    "lotus", "maple", "nova", "olive", "pine", "quill", "river", "sage", "thistle", "ultra",
    "violet", "wren", "yarrow", "zinc",
)
NAMES = (
    "Ada", "Alan", "Barbara", "Claude", "Dennis", "Edsger", "Frances", "Grace", "Hedy", "Ivan",
    "John", "Katherine", "Linus", "Margaret", "Niklaus", "Ole", "Radia", "Sophie", "Tim",
    "Unix", "Vint", "Wilma", "Xavier", "Yukihiro", "Zoe",
)
SURNAMES = (
    "Lovelace", "Turing", "Liskov", "Shannon", "Ritchie", "Dijkstra", "Allen", "Hopper",
    "Lamarr", "Sutherland", "Backus", "Johnson", "Torvalds", "Hamilton", "Wirth", "Dahl",
    "Perlman", "Wilson", "Lee", "Cerf", "Moore", "Knuth", "Matsumoto",
)
# fmt: on


def _word_list(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(WORDS) for _ in range(n)]


def _sentence(rng: random.Random, lo: int = 4, hi: int = 9) -> str:
    return " ".join(_word_list(rng, rng.randint(lo, hi)))


def _unique_names(rng: random.Random, n: int, suffix: str = "") -> list[str]:
    chosen: set[str] = set()
    while len(chosen) < n:
        chosen.add(f"{rng.choice(WORDS)}_{rng.randint(1, 99)}{suffix}")
    return sorted(chosen)


def _blob(rng: random.Random, size: int) -> str:
    line = _sentence(rng, 8, 12) + "\n"
    return (line * (size // len(line) + 1))[:size]


def _int_or_none(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def _files(snapshot: dict[str, dict[str, Any]] | None) -> dict[str, str | None]:
    """Path -> sha256 of the regular files of a snapshot."""
    return {p: e.get("h") for p, e in (snapshot or {}).items() if e["t"] == "f"}


def _kinds(snapshot: dict[str, dict[str, Any]] | None) -> dict[str, str]:
    return {p: e["t"] for p, e in (snapshot or {}).items()}


def _entries(snapshot: dict[str, dict[str, Any]]) -> dict[str, tuple[str, str | None]]:
    """Path -> (kind, content hash or link target) of every entry of a snapshot: what a tree
    holds, whatever the kind (a file replaced by a folder, a symlink or a FIFO differs)."""
    return {p: (e["t"], e.get("h") if e["t"] == "f" else e.get("to")) for p, e in snapshot.items()}


def _tree_diff(
    after: dict[str, tuple[str, str | None]], want: dict[str, tuple[str, str | None]]
) -> list[str]:
    """The paths where two `_entries` listings differ (missing, extra, other kind or content)."""
    return sorted(p for p in set(after) | set(want) if after.get(p) != want.get(p))


UNLISTABLE = Check("listing", False, "the folder could not be listed")


# --- git -----------------------------------------------------------------------------------

GIT_PREAMBLE = """\
set -e
git config --global user.name 'Sandbox User'
git config --global user.email 'user@sandbox.invalid'
git config --global init.defaultBranch main
git config --global advice.detachedHead false
mkdir -p repo
cd repo
git init -q
t=1700000000
commit() {
    t=$((t + 3600))
    GIT_AUTHOR_DATE="@$t +0000" GIT_COMMITTER_DATE="@$t +0000" git commit -q "$@"
}
"""


@dataclass(frozen=True)
class Commit:
    """One commit of a setup history: files to write, files to delete, a hash to record."""

    message: str
    write: dict[str, str] = field(default_factory=dict)
    delete: tuple[str, ...] = ()
    record: str | None = None


def git_history(commits: list[Commit], after: str = "") -> str:
    """A setup script building ``/work/repo`` with ``commits`` on main, then running ``after``
    in it; records ``head`` and each commit's ``record`` name."""
    parts = [GIT_PREAMBLE]
    for item in commits:
        for path, content in item.write.items():
            folder = posixpath.dirname(path)
            if folder:
                parts.append(f"mkdir -p {q(folder)}")
            parts.append(f"printf %s {q(content)} > {q(path)}")
        parts.extend(f"git rm -q -- {q(path)}" for path in item.delete)
        parts.append("git add -A")
        parts.append(f"commit -m {q(item.message)}")
        if item.record:
            # Also kept in a shell variable, e.g. "$rec_bad", for the script's ``after`` part.
            var = f"rec_{item.record}"
            parts.append(f'{var}=$(git rev-parse HEAD); echo "@@{item.record}=${var}"')
    parts.append('echo "@@head=$(git rev-parse HEAD)"')
    parts.append(after)
    return "\n".join(parts)


def _app_source(rng: random.Random) -> str:
    name = rng.choice(WORDS)
    return f'"""The {name} service."""\n\n\ndef main() -> None:\n    print("{name}")\n'


def _filler_commits(rng: random.Random, n: int, prefix: str = "") -> list[Commit]:
    out = []
    for i in range(n):
        path = rng.choice(["src/app.py", "docs/guide.md", "src/util.py", "CHANGELOG.md"])
        out.append(
            Commit(
                f"{prefix}{rng.choice(['Update', 'Tweak', 'Refine', 'Document'])} "
                f"{posixpath.basename(path)} ({i + 1})",
                {path: f"# {_sentence(rng)}\n" * rng.randint(1, 6)},
            )
        )
    return out


GitChecker = Callable[[Probe, GitView, dict[str, Any]], Awaitable[list[Check]]]


def with_repo(check: GitChecker) -> Checker:
    """A checker that reads /work/repo through a `GitView` (copied objects in a fresh
    sandbox); when the repository cannot be read that way, a failed ``repository`` check."""

    async def run(p: Probe, exp: dict[str, Any]) -> list[Check]:
        async with p.repo() as g:
            if g.error:
                return [Check("repository", False, g.error)]
            return await check(p, g, exp)

    run.__name__ = run.__qualname__ = check.__name__
    return run


async def _on_main(g: GitView) -> Check:
    ok = await g.head_branch() == "refs/heads/main"
    return Check("head_on_main", ok, "" if ok else "HEAD is not the main branch")


async def _main_moved_forward(g: GitView, old: str) -> tuple[Check, str | None]:
    main = await g.rev("refs/heads/main")
    if main is None:
        return Check("history_kept", False, "there is no main branch"), None
    if main == old:
        return Check("history_kept", False, "main has no new commit"), main
    if not await g.is_ancestor(old, main):
        return Check("history_kept", False, "the old history is not an ancestor of main"), main
    return Check("history_kept", True), main


def _tree_changes(
    old: dict[str, tuple[str, str]] | None, new: dict[str, tuple[str, str]] | None
) -> list[str] | None:
    """Paths whose entry differs between two trees (added, removed or changed)."""
    if old is None or new is None:
        return None
    return sorted(p for p in set(old) | set(new) if old.get(p) != new.get(p))


# --- text processing ---------------------------------------------------------------------

COMPONENTS = ("db", "api", "auth", "cache", "worker", "scheduler")
MESSAGES = (
    "request served",
    "connection opened",
    "timeout waiting for lock",
    "job finished",
    "user logged in",
    "disk usage high",
)
DECOYS = ("no ERROR found in batch", "retrying after ERROR upstream", "ERRORS: 0")


def setup_count_errors(rng: random.Random) -> Setup:
    rows, count = [], 0
    for _ in range(rng.randint(150, 300)):
        level = rng.choices(("INFO", "DEBUG", "WARN", "ERROR"), weights=(5, 3, 2, 2))[0]
        message = rng.choice(MESSAGES)
        if level != "ERROR" and rng.random() < 0.15:
            message = rng.choice(DECOYS)
        count += level == "ERROR"
        stamp = (
            f"2024-03-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
        )
        rows.append(f"{stamp}:{rng.randint(0, 59):02d} {level} {rng.choice(COMPONENTS)}: {message}")
    return Setup(files={"logs/app.log": "\n".join(rows) + "\n"}, expected={"count": count})


async def check_count_errors(p: Probe, exp: dict[str, Any]) -> list[Check]:
    got = _int_or_none(await p.read("answer.txt"))
    return [Check("count", got == exp["count"], f"got {got}, expected {exp['count']}")]


def setup_large_files(rng: random.Random) -> Setup:
    folders = ["", "raw", "raw/2023", "exports", "exports/old/deep", "tmp"]
    files, large = {}, []
    for name in _unique_names(rng, rng.randint(16, 24), ".dat"):
        path = posixpath.join(rng.choice(folders), name)
        big = rng.random() < 0.4
        size = rng.randint(12_000, 40_000) if big else rng.randint(50, 9_000)
        files[f"data/{path}"] = _blob(rng, size)
        if big:
            large.append(path)
    return Setup(files=files, expected={"large": large})


async def check_large_files(p: Probe, exp: dict[str, Any]) -> list[Check]:
    return [same_set("list", lines(await p.read("large.txt")), exp["large"])]


def setup_delete_tmp(rng: random.Random) -> Setup:
    files = {}
    for folder in ("", "src", "build", "cache/a/b", "tmp"):
        for name in _unique_names(rng, rng.randint(2, 4), rng.choice([".py", ".txt", ".tmp"])):
            files[posixpath.join("project", folder, name)] = _sentence(rng) + "\n"
    files["project/notes.tmp.txt"] = "keep me\n"
    files["project/src/.cache.tmp"] = "delete me\n"
    files["project/tmp/keep.txt"] = "keep me too\n"
    files["project/build/out.tmp"] = "delete me\n"
    return Setup(files=files, snapshot=("project",))


async def check_delete_tmp(p: Probe, exp: dict[str, Any]) -> list[Check]:
    after = await p.snapshot("project")
    if after is None:
        return [UNLISTABLE]
    before = _entries(exp["before"]["project"])
    now = _entries(after)
    tmp = {k for k, (kind, _) in before.items() if kind == "f" and k.endswith(".tmp")}
    want = {k: v for k, v in before.items() if k not in tmp}
    left = sorted(k for k in now if k in tmp or (k.endswith(".tmp") and k not in want))
    changed = sorted(k for k in want if now.get(k) != want[k])
    extra = sorted(set(now) - set(want) - tmp)
    return [
        Check("tmp_files_deleted", not left, f"still there (in any form): {left[:5]}"),
        Check("others_kept", not changed, f"missing or changed: {changed[:5]}"),
        Check("nothing_added", not extra, f"new entries: {extra[:5]}"),
    ]


def setup_top_ips(rng: random.Random) -> Setup:
    ips = sorted(
        {f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(12)}
    )
    counts = rng.sample(range(2, 60), len(ips))
    rows = []
    for ip, count in zip(ips, counts, strict=True):
        for _ in range(count):
            path = "/" + "/".join(_word_list(rng, rng.randint(1, 3)))
            rows.append(
                f"{ip} - - [10/Oct/2023:13:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d} "
                f'+0000] "GET {path} HTTP/1.1" {rng.choice([200, 200, 304, 404])} '
                f"{rng.randint(100, 9000)}"
            )
    rng.shuffle(rows)
    top = [ip for _, ip in sorted(zip(counts, ips, strict=True), reverse=True)[:3]]
    return Setup(files={"access.log": "\n".join(rows) + "\n"}, expected={"top": top})


async def check_top_ips(p: Probe, exp: dict[str, Any]) -> list[Check]:
    got = lines(await p.read("top_ips.txt"))
    return [Check("top_three", got == exp["top"], f"got {got[:5]}, expected {exp['top']}")]


def setup_set_config(rng: random.Random) -> Setup:
    body = [
        f"name = {rng.choice(WORDS)}",
        f"port = {rng.randint(1025, 9999)}",
        f"admin_port = {rng.randint(1025, 9999)}",
        f"debug = {rng.choice(['true', 'yes', 'on'])}",
        f"debug_level = {rng.randint(1, 5)}",
        f"workers = {rng.randint(2, 16)}",
        f"report_port = {rng.randint(1025, 9999)}",
    ]
    rng.shuffle(body)
    head = ["# Application settings", f"# port = {rng.randint(1, 999)} was the old value", ""]
    text = "\n".join(head + body) + "\n"
    fixed = [
        "port = 8443"
        if line.startswith("port = ")
        else "debug = false"
        if line.startswith("debug = ")
        else line
        for line in head + body
    ]
    return Setup(files={"app.conf": text}, expected={"text": "\n".join(fixed) + "\n"})


async def check_set_config(p: Probe, exp: dict[str, Any]) -> list[Check]:
    return [same_text("app_conf", await p.read("app.conf"), exp["text"])]


def setup_revenue(rng: random.Random) -> Setup:
    regions = rng.sample(["north", "south", "east", "west", "central"], 4)
    totals: dict[str, Decimal] = dict.fromkeys(regions, Decimal(0))
    rows = ["region,product,units,unit_price"]
    for _ in range(rng.randint(30, 50)):
        region, units = rng.choice(regions), rng.randint(1, 20)
        price = Decimal(rng.randint(100, 99_999)) / 100
        totals[region] += units * price
        rows.append(f"{region},{rng.choice(WORDS)},{units},{price:.2f}")
    want = [f"{r} {totals[r]:.2f}" for r in sorted(regions)]
    return Setup(files={"sales.csv": "\n".join(rows) + "\n"}, expected={"lines": want})


async def check_revenue(p: Probe, exp: dict[str, Any]) -> list[Check]:
    got = [" ".join(line.split()) for line in lines(await p.read("revenue.txt"))]
    return [Check("totals", got == exp["lines"], f"got {got[:5]}, expected {exp['lines']}")]


def setup_todos(rng: random.Random) -> Setup:
    files, found = {}, []
    for folder in ("src", "src/core", "src/core/io", "src/web"):
        for name in _unique_names(rng, rng.randint(1, 3), ".py"):
            rows = []
            for number in range(1, rng.randint(8, 25) + 1):
                if rng.random() < 0.12:
                    rows.append(f"    # TODO: {_sentence(rng, 2, 5)}")
                    found.append(
                        f"{posixpath.relpath(posixpath.join(folder, name), 'src')}:{number}"
                    )
                else:
                    rows.append(f"    value = '{rng.choice(WORDS)}'")
            files[posixpath.join(folder, name)] = "\n".join(rows) + "\n"
    files["src/NOTES.md"] = "TODO: this file is not Python\n"
    files["src/core/todo_list.txt"] = "TODO TODO TODO\n"
    return Setup(files=files, expected={"found": found})


async def check_todos(p: Probe, exp: dict[str, Any]) -> list[Check]:
    return [same_set("locations", lines(await p.read("todos.txt")), exp["found"])]


def setup_emails(rng: random.Random) -> Setup:
    addresses = sorted(
        {
            f"{rng.choice(NAMES).lower()}{rng.choice(['', '.', '_'])}{rng.choice(SURNAMES).lower()}"
            f"{rng.choice(['', str(rng.randint(1, 99))])}@{rng.choice(['example', 'mail', 'corp'])}"
            f".{rng.choice(['com', 'org', 'net', 'io'])}"
            for _ in range(14)
        }
    )
    wrappers = ("{} ", "<{}> ", "({}) ", "{}, ", "{}; ", "mailto:{} ")
    rows = []
    for _ in range(30):
        picked = rng.sample(addresses, rng.randint(0, 3))
        text = "".join(rng.choice(wrappers).format(a) for a in picked)
        rows.append(f"{_sentence(rng, 2, 5)} {text}{_sentence(rng, 1, 3)}")
    rows.extend(f"Also reach {a} today" for a in addresses)
    rng.shuffle(rows)
    return Setup(files={"contacts.txt": "\n".join(rows) + "\n"}, expected={"emails": addresses})


async def check_emails(p: Probe, exp: dict[str, Any]) -> list[Check]:
    return [same_set("emails", lines(await p.read("emails.txt")), exp["emails"])]


def setup_dupes(rng: random.Random) -> Setup:
    vocabulary = rng.sample(WORDS, 40)
    rows = [rng.choice(vocabulary) for _ in range(rng.randint(50, 70))]
    counts = Counter(rows)
    return Setup(
        files={"words.txt": "\n".join(rows) + "\n"},
        expected={"dupes": [w for w, c in counts.items() if c > 1]},
    )


async def check_dupes(p: Probe, exp: dict[str, Any]) -> list[Check]:
    return [same_set("duplicates", lines(await p.read("dupes.txt")), exp["dupes"])]


def setup_high_earners(rng: random.Random) -> Setup:
    people = sorted({f"{rng.choice(NAMES)} {rng.choice(SURNAMES)}" for _ in range(40)})
    rows, want = ["name,department,salary"], []
    for person in people:
        dept = rng.choice(["engineering", "engineering", "sales", "marketing", "support"])
        salary = rng.choice([100_000, rng.randint(60, 160) * 1000 + rng.randint(0, 999)])
        rows.append(f"{person},{dept},{salary}")
        if dept == "engineering" and salary > 100_000:
            want.append(person)
    return Setup(files={"employees.csv": "\n".join(rows) + "\n"}, expected={"names": want})


async def check_high_earners(p: Probe, exp: dict[str, Any]) -> list[Check]:
    return [same_set("names", lines(await p.read("high_earners.txt")), exp["names"])]


def setup_strip_comments(rng: random.Random) -> Setup:
    kinds = [
        "# {}",
        "   # {}",
        "\t# {}",
        "",
        "   ",
        "key_{w} = {w}",
        "color_{w} = #ff00{n}",
        "path_{w} = /srv/{w} # not a comment line",
        "url_{w} = http://x/#{w}",
    ]
    rows = []
    for _ in range(rng.randint(25, 40)):
        kind = rng.choice(kinds)
        rows.append(kind.format(_sentence(rng, 2, 4), w=rng.choice(WORDS), n=rng.randint(10, 99)))
    text = "\n".join(rows) + "\n"
    keep = [r for r in rows if r.strip() and not r.lstrip().startswith("#")]
    return Setup(
        files={"server.conf": text},
        expected={"original": text, "clean": "\n".join(keep) + "\n"},
    )


async def check_strip_comments(p: Probe, exp: dict[str, Any]) -> list[Check]:
    return [
        same_text("clean_conf", await p.read("clean.conf"), exp["clean"]),
        same_text("original_unchanged", await p.read("server.conf"), exp["original"]),
    ]


def setup_rename_jpeg(rng: random.Random) -> Setup:
    files = {}
    for folder in ("photos", "photos/2023", "photos/2023/summer", "photos/raw.jpeg"):
        for name in _unique_names(rng, rng.randint(2, 4)):
            files[f"{folder}/{name}{rng.choice(['.jpeg', '.jpeg', '.png'])}"] = _sentence(rng)
    files["photos/jpeg_notes.txt"] = "not a photo\n"
    files["photos/album.jpeg.txt"] = "not a photo either\n"
    return Setup(files=files, snapshot=("photos",))


async def check_rename_jpeg(p: Probe, exp: dict[str, Any]) -> list[Check]:
    after = await p.snapshot("photos")
    if after is None:
        return [UNLISTABLE]
    before = _entries(exp["before"]["photos"])
    want = {
        (k[: -len(".jpeg")] + ".jpg" if kind == "f" and k.endswith(".jpeg") else k): (kind, h)
        for k, (kind, h) in before.items()
    }
    now = _entries(after)
    wrong = sorted(set(want) ^ set(now))[:6]
    changed = sorted(k for k in want if k in now and now[k] != want[k])
    return [
        Check("files_renamed", not wrong, f"differences: {wrong}"),
        Check("contents_kept", not changed, f"changed (content or kind): {changed[:5]}"),
    ]


def setup_recent(rng: random.Random) -> Setup:
    files, touch, recent = {}, [], []
    for name in _unique_names(rng, rng.randint(10, 14), ".txt"):
        files[f"archive/{name}"] = _sentence(rng) + "\n"
        new = rng.random() < 0.5
        year, month = (
            (2024, rng.randint(2, 11)) if new else (rng.choice([2022, 2023]), rng.randint(2, 11))
        )
        stamp = f"{year}-{month:02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:00:00"
        touch.append(f"touch -d {q(stamp)} archive/{q(name)}")
        if new:
            recent.append(name)
    files["archive/sub/inner.txt"] = "nested\n"
    touch.append("touch -d '2024-06-01 00:00:00' archive/sub/inner.txt archive/sub")
    return Setup(files=files, script="set -e\n" + "\n".join(touch), expected={"recent": recent})


async def check_recent(p: Probe, exp: dict[str, Any]) -> list[Check]:
    return [same_set("files", lines(await p.read("recent.txt")), exp["recent"])]


def setup_line_counts(rng: random.Random) -> Setup:
    files, counts = {}, []
    for name in _unique_names(rng, rng.randint(5, 9), ".txt"):
        n = 0 if rng.random() < 0.15 else rng.randint(1, 60)
        files[f"docs/{name}"] = "".join(_sentence(rng) + "\n" for _ in range(n))
        counts.append(f"{name} {n}")
    files["docs/readme.md"] = "not counted\n" * 3
    files["docs/sub/nested.txt"] = "not counted either\n"
    return Setup(files=files, expected={"counts": counts})


async def check_line_counts(p: Probe, exp: dict[str, Any]) -> list[Check]:
    got = [" ".join(line.split()) for line in lines(await p.read("counts.txt"))]
    return [same_set("counts", got, exp["counts"])]


# --- permissions ---------------------------------------------------------------------------


def _chmod_script(modes: dict[str, int]) -> str:
    # Deepest paths first, so a folder is closed only after its contents were changed.
    ordered = sorted(modes, key=lambda path: path.count("/"), reverse=True)
    return "set -e\n" + "\n".join(f"chmod {modes[p]:o} {q(p)}" for p in ordered)


def _mode_diff(after: dict[str, Any], want: dict[str, int]) -> list[str]:
    bad = []
    for path, mode in sorted(want.items()):
        entry = after.get(path)
        if entry is None:
            bad.append(f"{path} is missing")
        elif entry["m"] != mode:
            bad.append(f"{path} is {entry['m']:o}, expected {mode:o}")
    return bad


def setup_exec_scripts(rng: random.Random) -> Setup:
    files, modes = {}, {}
    for name in _unique_names(rng, rng.randint(3, 5), ".sh"):
        files[f"bin/{name}"] = f"#!/bin/bash\necho {name}\n"
        modes[f"bin/{name}"] = 0o644
    files.update({"bin/README.txt": "docs\n", "bin/config.ini": "x=1\n", "bin/old.sh.bak": "#\n"})
    modes.update({"bin/README.txt": 0o644, "bin/config.ini": 0o600, "bin/old.sh.bak": 0o640})
    return Setup(files=files, script=_chmod_script(modes), snapshot=("bin",))


async def check_exec_scripts(p: Probe, exp: dict[str, Any]) -> list[Check]:
    after = await p.snapshot("bin")
    if after is None:
        return [UNLISTABLE]
    before = exp["before"]["bin"]
    want = {k: (0o755 if k.endswith(".sh") else e["m"]) for k, e in before.items() if e["t"] == "f"}
    scripts = {k: m for k, m in want.items() if k.endswith(".sh")}
    others = {k: m for k, m in want.items() if not k.endswith(".sh")}
    wrong_scripts, wrong_others = _mode_diff(after, scripts), _mode_diff(after, others)
    replaced = _tree_diff(_entries(after), _entries(before))
    return [
        Check("scripts_755", not wrong_scripts, "; ".join(wrong_scripts[:4])),
        Check("others_unchanged", not wrong_others, "; ".join(wrong_others[:4])),
        Check("files_kept", not replaced, f"added, removed or replaced: {replaced[:5]}"),
    ]


def setup_private_key(rng: random.Random) -> Setup:
    key = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(64))
    files = {
        "secrets/key.pem": f"-----BEGIN KEY-----\n{key}\n-----END KEY-----\n",
        "secrets/key.pub": f"ssh-ed25519 {key[:32]} user@host\n",
    }
    script = _chmod_script({"secrets/key.pem": 0o644, "secrets/key.pub": 0o644, "secrets": 0o755})
    return Setup(files=files, script=script, snapshot=("secrets",))


async def check_private_key(p: Probe, exp: dict[str, Any]) -> list[Check]:
    after = await p.snapshot("secrets")
    if after is None:
        return [UNLISTABLE]
    wrong = _mode_diff(after, {".": 0o700, "key.pem": 0o600, "key.pub": 0o644})
    before = _files(exp["before"]["secrets"])
    same = all(_files(after).get(k) == h for k, h in before.items())
    return [
        Check("modes", not wrong, "; ".join(wrong)),
        Check("contents_kept", same, "a key file was changed or removed"),
    ]


def _random_tree(
    rng: random.Random, root: str, dir_modes: list[int], file_modes: list[int]
) -> tuple[dict[str, str], dict[str, int]]:
    files, modes = {}, {}
    folders = [root, f"{root}/{rng.choice(WORDS)}", f"{root}/{rng.choice(WORDS)}_b/inner"]
    for folder in folders:
        for name in _unique_names(rng, rng.randint(2, 4), ".txt"):
            files[f"{folder}/{name}"] = _sentence(rng) + "\n"
            modes[f"{folder}/{name}"] = rng.choice(file_modes)
    for folder in folders:
        parts = folder.split("/")
        for i in range(1, len(parts) + 1):
            modes["/".join(parts[:i])] = rng.choice(dir_modes)
    return files, modes


def setup_world_writable(rng: random.Random) -> Setup:
    files, modes = _random_tree(
        rng,
        "shared",
        [0o777, 0o775, 0o757, 0o755, 0o700],
        [0o666, 0o664, 0o646, 0o644, 0o600, 0o602, 0o777, 0o755],
    )
    modes["shared"] = 0o777
    first = sorted(k for k in modes if k.endswith(".txt"))[0]
    modes[first] = 0o646
    return Setup(files=files, script=_chmod_script(modes), snapshot=("shared",))


async def check_world_writable(p: Probe, exp: dict[str, Any]) -> list[Check]:
    after = await p.snapshot("shared")
    if after is None:
        return [UNLISTABLE]
    before = exp["before"]["shared"]
    wrong = _mode_diff(after, {k: e["m"] & ~0o002 for k, e in before.items()})
    extra = sorted(set(after) - set(before))
    return [
        Check("modes", not wrong, "; ".join(wrong[:4])),
        Check("entries_kept", not extra and _files(after) == _files(before), "entries changed"),
    ]


def setup_site_perms(rng: random.Random) -> Setup:
    files, modes = _random_tree(
        rng, "site", [0o700, 0o750, 0o777, 0o711], [0o600, 0o640, 0o777, 0o755, 0o444, 0o604]
    )
    modes["site"] = 0o700
    return Setup(files=files, script=_chmod_script(modes), snapshot=("site",))


async def check_site_perms(p: Probe, exp: dict[str, Any]) -> list[Check]:
    after = await p.snapshot("site")
    if after is None:
        return [UNLISTABLE]
    before = exp["before"]["site"]
    want = {k: (0o755 if e["t"] == "d" else 0o644) for k, e in before.items()}
    wrong = _mode_diff(after, want)
    return [
        Check("modes", not wrong, "; ".join(wrong[:4])),
        Check(
            "entries_kept",
            _kinds(after) == _kinds(before) and _files(after) == _files(before),
            "entries were added, removed or changed",
        ),
    ]


def setup_list_executables(rng: random.Random) -> Setup:
    files, modes = {}, {}
    choices = [0o755, 0o744, 0o700, 0o644, 0o654, 0o645, 0o600, 0o500, 0o611]
    for name in _unique_names(rng, rng.randint(7, 10)):
        files[f"tools/{name}"] = "#!/bin/sh\n"
        modes[f"tools/{name}"] = rng.choice(choices)
    files["tools/lib/helper"] = "#!/bin/sh\n"
    modes.update({"tools/lib/helper": 0o755, "tools/lib": 0o755})
    modes[sorted(k for k in modes if k.count("/") == 1 and k != "tools/lib")[0]] = 0o754
    want = [
        k.split("/")[1]
        for k, m in modes.items()
        if k.count("/") == 1 and k != "tools/lib" and m & 0o100
    ]
    return Setup(
        files=files, script=_chmod_script(modes), snapshot=("tools",), expected={"names": want}
    )


async def check_list_executables(p: Probe, exp: dict[str, Any]) -> list[Check]:
    after = await p.snapshot("tools")
    before = exp["before"]["tools"]
    unchanged = after is not None and {k: e["m"] for k, e in after.items()} == {
        k: e["m"] for k, e in before.items()
    }
    return [
        same_set("names", lines(await p.read("executables.txt")), exp["names"]),
        Check("modes_unchanged", unchanged, "permissions under /work/tools were changed"),
    ]


def setup_readonly_reports(rng: random.Random) -> Setup:
    files, modes = _random_tree(
        rng, "reports", [0o755, 0o775, 0o700], [0o644, 0o664, 0o666, 0o640, 0o600, 0o444, 0o754]
    )
    modes[sorted(k for k in modes if k.endswith(".txt"))[0]] = 0o666
    return Setup(files=files, script=_chmod_script(modes), snapshot=("reports",))


async def check_readonly_reports(p: Probe, exp: dict[str, Any]) -> list[Check]:
    after = await p.snapshot("reports")
    if after is None:
        return [UNLISTABLE]
    before = exp["before"]["reports"]
    want_files = {k: e["m"] & ~0o222 for k, e in before.items() if e["t"] == "f"}
    want_dirs = {k: e["m"] for k, e in before.items() if e["t"] == "d"}
    wrong_files, wrong_dirs = _mode_diff(after, want_files), _mode_diff(after, want_dirs)
    return [
        Check("files_read_only", not wrong_files, "; ".join(wrong_files[:4])),
        Check("folders_unchanged", not wrong_dirs, "; ".join(wrong_dirs[:4])),
        Check("contents_kept", _files(after) == _files(before), "files were changed"),
    ]


# --- scripting (run in a fresh sandbox on inputs made at check time) --------------------


async def _copy_script(p: Probe, box: Box, path: str) -> Check | None:
    """Copy ``/work/path`` from the model's sandbox into ``box``; a Check if it is missing."""
    source = await p.read(path)
    if source is None:
        return Check("script_exists", False, f"/work/{path} is missing or not a regular file")
    await box.write({path: source})
    return None


def _text_with_words(rng: random.Random) -> str:
    vocabulary = rng.sample(WORDS, 12)
    weights = [rng.randint(1, 30) for _ in vocabulary]
    out = []
    for _ in range(rng.randint(80, 160)):
        word = rng.choices(vocabulary, weights=weights)[0]
        word = rng.choice([word, word.upper(), word.capitalize()])
        out.append(word + rng.choice(["", "", ",", ".", "!", "?", ";", "'s", "-", "42"]))
        if rng.random() < 0.1:
            out.append("\n")
    return " ".join(out) + "\n"


def _top_words(text: str, n: int) -> list[str]:
    counts = Counter(w.lower() for w in re.findall(r"[A-Za-z]+", text))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]
    return [f"{c} {w}" for w, c in ranked]


def setup_wordfreq(rng: random.Random) -> Setup:
    return Setup(files={"sample.txt": _text_with_words(rng)})


async def check_wordfreq(p: Probe, exp: dict[str, Any]) -> list[Check]:
    rng = random.Random()
    async with p.fresh() as box:
        if (missing := await _copy_script(p, box, "wordfreq.sh")) is not None:
            return [missing]
        checks = []
        for case in range(3):
            text, n = _text_with_words(rng), rng.randint(2, 8)
            await box.write({f"case{case}/in put.txt": text})
            target = f"/work/case{case}/in put.txt" if case else "in put.txt"
            result = await box.run_subject(
                f"cd case{case} && bash /work/wordfreq.sh {q(target)} {n}"
            )
            got = [" ".join(line.split()) for line in lines(result.stdout)]
            want = _top_words(text, n)
            checks.append(
                Check(f"case_{case}", got == want, f"N={n}: got {got[:3]}, expected {want[:3]}")
            )
    return checks


def _txt_tree(rng: random.Random) -> dict[str, str]:
    files = {f"{name}.txt": _sentence(rng) + "\n" for name in _unique_names(rng, rng.randint(2, 5))}
    files["with space.txt"] = "spaced\n"
    files["upper.TXT"] = "not copied\n"
    files["image.png"] = "not copied\n"
    files["folder.txt/inside.txt"] = "not copied\n"
    return files


def setup_backup(rng: random.Random) -> Setup:
    return Setup(files={f"notes/{k}": v for k, v in _txt_tree(rng).items()})


async def check_backup(p: Probe, exp: dict[str, Any]) -> list[Check]:
    rng = random.Random()
    async with p.fresh() as box:
        if (missing := await _copy_script(p, box, "backup.sh")) is not None:
            return [missing]
        checks = []
        for case in range(2):
            tree = _txt_tree(rng)
            await box.write({f"src{case}/{k}": v for k, v in tree.items()})
            before = await box.snapshot(f"src{case}")
            dest = f"out{case}/deep/dest" if case else f"out{case}"
            result = await box.run_subject(f"bash /work/backup.sh src{case} {dest}")
            copied = {k: v for k, v in tree.items() if k.endswith(".txt") and "/" not in k}
            after = await box.snapshot(dest)
            got = {k: e.get("h") for k, e in (after or {}).items() if e["t"] == "f"}
            source_after = _files(await box.snapshot(f"src{case}"))
            want_names = {f"{k}.bak" for k in copied}
            same_content = all(got.get(f"{k}.bak") == _files(before).get(k) for k in copied)
            printed = lines(result.stdout)
            checks.extend(
                [
                    Check(
                        f"case_{case}_copies",
                        set(got) == want_names and same_content,
                        f"got {sorted(got)[:6]}, expected {sorted(want_names)}",
                    ),
                    Check(
                        f"case_{case}_count",
                        printed[-1:] == [str(len(copied))],
                        f"printed {printed[-1:]}, expected {len(copied)}",
                    ),
                    Check(
                        f"case_{case}_source_kept", source_after == _files(before), "SRC changed"
                    ),
                ]
            )
    return checks


def _csv_numbers(rng: random.Random) -> tuple[str, list[list[int]]]:
    cols = rng.randint(2, 5)
    rows = [[rng.randint(-1000, 100_000) for _ in range(cols)] for _ in range(rng.randint(3, 40))]
    header = ",".join(rng.sample(WORDS, cols))
    return header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows), rows


def setup_colsum(rng: random.Random) -> Setup:
    return Setup(files={"numbers.csv": _csv_numbers(rng)[0]})


async def check_colsum(p: Probe, exp: dict[str, Any]) -> list[Check]:
    rng = random.Random()
    async with p.fresh() as box:
        if (missing := await _copy_script(p, box, "colsum.sh")) is not None:
            return [missing]
        checks = []
        for case in range(3):
            text, rows = _csv_numbers(rng)
            col = rng.randint(1, len(rows[0]))
            await box.write({f"case{case}.csv": text})
            result = await box.run_subject(f"bash /work/colsum.sh case{case}.csv {col}")
            want = str(sum(r[col - 1] for r in rows))
            got = lines(result.stdout)
            checks.append(
                Check(f"case_{case}", got == [want], f"col {col}: got {got[:2]}, expected {want}")
            )
    return checks


def _numbers(rng: random.Random) -> list[int]:
    return [rng.randint(-500, 500) for _ in range(rng.randint(1, 30))]


def setup_stats(rng: random.Random) -> Setup:
    return Setup(files={"numbers.txt": "\n".join(map(str, _numbers(rng))) + "\n"})


def _stats_ok(output: str, numbers: list[int]) -> tuple[bool, str]:
    got = lines(output)
    if len(got) != 3:
        return False, f"expected 3 lines, got {got[:4]}"
    mean = Decimal(sum(numbers)) / len(numbers)
    match = re.fullmatch(r"mean (-?\d+\.\d\d)", got[2])
    ok = (
        got[0] == f"min {min(numbers)}"
        and got[1] == f"max {max(numbers)}"
        and match is not None
        and abs(Decimal(match.group(1)) - mean) <= Decimal("0.005")
    )
    return ok, f"got {got}, expected min {min(numbers)}, max {max(numbers)}, mean {mean:.2f}"


async def check_stats(p: Probe, exp: dict[str, Any]) -> list[Check]:
    rng = random.Random()
    async with p.fresh() as box:
        if (missing := await _copy_script(p, box, "stats.py")) is not None:
            return [missing]
        checks = []
        for case in range(3):
            numbers = _numbers(rng)
            text = "\n".join(f"{n}\n" if rng.random() < 0.2 else str(n) for n in numbers) + "\n"
            await box.write({f"case{case}.txt": text})
            result = await box.run_subject(f"python3 /work/stats.py < case{case}.txt")
            ok, detail = _stats_ok(result.stdout, numbers)
            checks.append(Check(f"case_{case}", ok, detail))
    return checks


def _mixed_case_dir(rng: random.Random) -> dict[str, str]:
    names = {f"{rng.choice(WORDS).capitalize()}_{rng.randint(1, 99)}.TXT" for _ in range(3)}
    names |= {f"{rng.choice(WORDS)}{rng.randint(1, 9)}.md", "Report 2024.Csv", "MiXeD"}
    files = {name: _sentence(rng) + "\n" for name in names}
    files["SubDir/Inner.TXT"] = "stays as it is\n"
    return files


def setup_lowercase(rng: random.Random) -> Setup:
    return Setup(files={f"inbox/{k}": v for k, v in _mixed_case_dir(rng).items()})


async def check_lowercase(p: Probe, exp: dict[str, Any]) -> list[Check]:
    rng = random.Random()
    async with p.fresh() as box:
        if (missing := await _copy_script(p, box, "lower.sh")) is not None:
            return [missing]
        checks = []
        for case in range(2):
            tree = _mixed_case_dir(rng)
            folder = f"case {case}"
            await box.write({f"{folder}/{k}": v for k, v in tree.items()})
            before = _files(await box.snapshot(folder))
            await box.run_subject(f"bash /work/lower.sh {q(folder)}")
            after = _files(await box.snapshot(folder))
            want = {(k if "/" in k else k.lower()): h for k, h in before.items()}
            diff = sorted(set(after) ^ set(want))[:6]
            checks.append(Check(f"case_{case}", after == want, f"differences: {diff}"))
    return checks


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))


def setup_is_prime(rng: random.Random) -> Setup:
    return Setup()


async def check_is_prime(p: Probe, exp: dict[str, Any]) -> list[Check]:
    rng = random.Random()
    numbers = [0, 1, 2, 3, 4, 961, 7919, 999_983, 1_000_000]
    numbers += [rng.randint(5, 1_000_000) for _ in range(8)]
    while sum(map(_is_prime, numbers)) < 8:
        numbers.append(rng.randint(1_000, 999_000))
    async with p.fresh() as box:
        if (missing := await _copy_script(p, box, "isprime.sh")) is not None:
            return [missing]
        wrong = []
        for n in numbers:
            result = await box.run_subject(f"bash /work/isprime.sh {n} >/dev/null 2>&1")
            want = 0 if _is_prime(n) else 1
            if result.exit_code != want:
                wrong.append(f"{n}: exit {result.exit_code}, expected {want}")
            if result.timed_out:
                wrong.append("stopped: the script timed out")
                break
    return [Check("exit_statuses", not wrong, "; ".join(wrong[:4]))]


# --- git -----------------------------------------------------------------------------------


def setup_git_branch(rng: random.Random) -> Setup:
    commits = [
        Commit(
            "Initial commit",
            {"README.md": "# Demo\n", "greeting.txt": "Hello\n", "src/app.py": _app_source(rng)},
        ),
        *_filler_commits(rng, rng.randint(2, 4)),
    ]
    return Setup(script=git_history(commits))


@with_repo
async def check_git_branch(p: Probe, g: GitView, exp: dict[str, Any]) -> list[Check]:
    old = exp["setup"]["head"]
    main = await g.rev("refs/heads/main")
    branch = await g.rev("refs/heads/feature/greeting")
    checks = [Check("main_unchanged", main == old, "main was moved")]
    if branch is None:
        return [*checks, Check("branch_exists", False, "no branch feature/greeting")]
    content = await g.git("cat-file", "blob", f"{branch}:greeting.txt")
    text = content.stdout if content.exit_code == 0 else None
    changes = _tree_changes(await g.tree(old), await g.tree(branch))
    return [
        *checks,
        Check("branch_exists", True),
        same_text("greeting", text, "Hello, world!\n"),
        Check(
            "only_greeting",
            changes == ["greeting.txt"],
            f"the branch changes {(changes or [])[:5]} compared with main",
        ),
        Check(
            "branched_from_main",
            branch != old and await g.is_ancestor(old, branch),
            "the branch does not hold a new commit on top of main",
        ),
    ]


def setup_git_find_commit(rng: random.Random) -> Setup:
    token = "".join(rng.choice("0123456789abcdef") for _ in range(24))
    env = {"DB_HOST": "localhost", "DB_PORT": "5432", "TOKEN_TTL": "3600"}

    def settings(extra: dict[str, str]) -> str:
        return "".join(f"{k}={v}\n" for k, v in {**env, **extra}.items())

    commits = [
        Commit("Initial commit", {"settings.env": settings({}), "src/app.py": _app_source(rng)})
    ]
    before, after = rng.randint(2, 7), rng.randint(3, 8)
    commits += _filler_commits(rng, before)
    extra: dict[str, str] = {}
    commits.append(
        Commit(
            rng.choice(["Update configuration", "Wire up the client", "Settings"]),
            {
                "settings.env": settings({}) + f"API_TOKEN={token}\n",
                "src/client.py": "TOKEN_VAR = 'API_TOKEN'\n",
            },
            record="target",
        )
    )
    extra["API_TOKEN"] = token
    for i in range(after):
        if i % 2:
            env["DB_PORT"] = str(rng.randint(5000, 6000))
            commits.append(
                Commit(f"Change the database port ({i})", {"settings.env": settings(extra)})
            )
        else:
            commits.extend(_filler_commits(rng, 1, "Later: "))
    env["TOKEN_TTL"] = "7200"
    commits.append(Commit("Rotate token settings", {"settings.env": settings(extra)}))
    return Setup(script=git_history(commits))


async def check_git_find_commit(p: Probe, exp: dict[str, Any]) -> list[Check]:
    got = (await p.read("answer.txt") or "").strip().lower()
    want = exp["setup"]["target"]
    return [Check("hash", got == want, f"got {got[:50]!r}, expected the commit {want[:12]}")]


def setup_git_revert(rng: random.Random) -> Setup:
    commits = [
        Commit(
            "Initial commit",
            {
                "build.sh": "#!/bin/sh\necho building\nexit 0\n",
                "config.yml": "mode: release\n",
                "src/app.py": _app_source(rng),
            },
        ),
        *_filler_commits(rng, rng.randint(1, 3)),
        Commit(
            "Break the build",
            {
                "build.sh": "#!/bin/sh\necho building\nexit 1\n",
                "config.yml": "mode: release\nbroken: true\n",
            },
            record="bad",
        ),
        *_filler_commits(rng, rng.randint(2, 3), "After: "),
    ]
    # The tree main should end with: the current one with the bad commit's diff undone,
    # computed in a scratch index (no commit, no reflog entry for the model to find).
    expected_tree = """
export GIT_INDEX_FILE=/tmp/expected-index
git read-tree HEAD
git diff "$rec_bad" "$rec_bad^" | git apply --cached
echo "@@tree=$(git write-tree)"
rm -f /tmp/expected-index
"""
    return Setup(script=git_history(commits, after=expected_tree))


@with_repo
async def check_git_revert(p: Probe, g: GitView, exp: dict[str, Any]) -> list[Check]:
    moved, main = await _main_moved_forward(g, exp["setup"]["head"])
    if main is None:
        return [moved]
    tree = await g.rev(f"{main}^{{tree}}")
    return [
        moved,
        Check(
            "reverted",
            tree == exp["setup"]["tree"],
            "main's files are not those of the history with 'Break the build' undone",
        ),
        await _on_main(g),
        await g.clean_tree(),
    ]


TYPO_LINES = (
    "This is teh demo project.",
    "Run teh build with ./build.sh and read teh output.",
    "Nothing to fix on this line.",
    "Install teh tools first; then the rest.",
    "Tehran and tehee stay as they are.",
)


def setup_git_typos(rng: random.Random) -> Setup:
    body = list(TYPO_LINES) + [_sentence(rng) for _ in range(rng.randint(2, 5))]
    rng.shuffle(body)
    text = "# Readme\n\n" + "\n".join(body) + "\n"
    commits = [
        Commit("Initial commit", {"README.md": text, "src/app.py": _app_source(rng)}),
        *_filler_commits(rng, rng.randint(1, 3)),
    ]
    fixed = re.sub(r"\bteh\b", "the", text)
    return Setup(script=git_history(commits), expected={"fixed": fixed})


@with_repo
async def check_git_typos(p: Probe, g: GitView, exp: dict[str, Any]) -> list[Check]:
    old = exp["setup"]["head"]
    main = await g.rev("refs/heads/main")
    if main is None:
        return [Check("commit", False, "there is no main branch")]
    parent = await g.rev(f"{main}^")
    subject = await g.git("log", "-1", "--format=%s", main)
    names = _tree_changes(await g.tree(old), await g.tree(main)) or []
    content = await g.git("cat-file", "blob", f"{main}:README.md")
    return [
        Check("one_new_commit", parent == old, "main is not one new commit on top of the old one"),
        Check(
            "message",
            subject.stdout.strip() == "Fix typos in README",
            f"the message is {subject.stdout.strip()[:60]!r}",
        ),
        Check(
            "only_readme",
            names == ["README.md"],
            f"changed files: {names[:5]}",
        ),
        same_text("readme", content.stdout if content.exit_code == 0 else None, exp["fixed"]),
        await _on_main(g),
        await g.clean_tree(),
    ]


def setup_git_restore(rng: random.Random) -> Setup:
    versions = [f"# Notes\n\n{_sentence(rng)}\n" for _ in range(3)]
    commits = [
        Commit("Initial commit", {"notes.md": versions[0], "src/app.py": _app_source(rng)}),
        Commit("Expand the notes", {"notes.md": versions[0] + versions[1]}),
        *_filler_commits(rng, rng.randint(0, 2)),
        Commit(
            "Polish the notes", {"notes.md": versions[0] + versions[1] + versions[2]}, record="last"
        ),
        Commit("Remove notes", delete=("notes.md",)),
        *_filler_commits(rng, rng.randint(1, 3), "After: "),
    ]
    return Setup(
        script=git_history(commits, after='echo "@@blob=$(git rev-parse "$rec_last:notes.md")"')
    )


@with_repo
async def check_git_restore(p: Probe, g: GitView, exp: dict[str, Any]) -> list[Check]:
    moved, main = await _main_moved_forward(g, exp["setup"]["head"])
    if main is None:
        return [moved]
    blob = await g.rev(f"{main}:notes.md")
    changes = _tree_changes(await g.tree(exp["setup"]["head"]), await g.tree(main))
    return [
        moved,
        Check(
            "restored",
            blob == exp["setup"]["blob"],
            "notes.md on main is missing or differs from its last version",
        ),
        Check(
            "only_notes",
            changes == ["notes.md"],
            f"main changes {(changes or [])[:5]}, not just notes.md",
        ),
        await _on_main(g),
        await g.clean_tree(),
    ]


def setup_git_tag(rng: random.Random) -> Setup:
    commits = [
        Commit("Initial commit", {"VERSION": "1.0.0\n", "src/app.py": _app_source(rng)}),
        *_filler_commits(rng, rng.randint(1, 2)),
        Commit("Release 1.1.0", {"VERSION": "1.1.0\n"}),
        *_filler_commits(rng, rng.randint(1, 3)),
        Commit("Prepare release 1.2.0", {"CHANGELOG.md": "## 1.2.0\n"}),
        Commit("Release 1.2.0", {"VERSION": "1.2.0\n"}, record="target"),
        *_filler_commits(rng, rng.randint(1, 3), "After: "),
    ]
    return Setup(script=git_history(commits))


@with_repo
async def check_git_tag(p: Probe, g: GitView, exp: dict[str, Any]) -> list[Check]:
    kind = await g.git("cat-file", "-t", "refs/tags/v1.2.0")
    target = await g.rev("refs/tags/v1.2.0^{commit}")
    main = await g.rev("refs/heads/main")
    return [
        Check(
            "annotated",
            kind.stdout.strip() == "tag",
            "v1.2.0 is missing" if kind.exit_code else f"v1.2.0 is a {kind.stdout.strip()}",
        ),
        Check("target", target == exp["setup"]["target"], "v1.2.0 is not on 'Release 1.2.0'"),
        Check("main_unchanged", main == exp["setup"]["head"], "main was moved"),
    ]


ARTIFACTS = ("build/app", "build/main.o", "build/obj/util.o", "src/main.o", "src/util.o", "lib.o")


def setup_git_ignore(rng: random.Random) -> Setup:
    commits = [
        Commit(
            "Initial commit",
            {
                "src/main.c": "int main(void) { return 0; }\n",
                "src/util.c": "int util(void) { return 1; }\n",
                "docs/build.md": "How to build\n",
                "Makefile": "all:\n",
            },
        ),
        *_filler_commits(rng, rng.randint(0, 2)),
    ]
    contents = {a: f"bin {rng.randint(0, 999)}" for a in ARTIFACTS}
    make = "\n".join(
        f"mkdir -p {q(posixpath.dirname(a) or '.')} && printf %s {q(text)} > {q(a)}"
        for a, text in contents.items()
    )
    return Setup(script=git_history(commits, after=make), expected={"artifacts": contents})


def _blob_id(text: str) -> str:
    data = text.encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _is_artifact(path: str) -> bool:
    return path == "build" or path.startswith("build/") or path.endswith(".o")


@with_repo
async def check_git_ignore(p: Probe, g: GitView, exp: dict[str, Any]) -> list[Check]:
    moved, main = await _main_moved_forward(g, exp["setup"]["head"])
    if main is None:
        return [moved]
    tree = await g.tree(main) or {}
    tracked_artifacts = sorted(path for path in tree if _is_artifact(path))
    loose = await g.not_ignored(main, list(ARTIFACTS))
    contents: dict[str, str] = exp["artifacts"]
    lost = sorted(
        a
        for a, text in contents.items()
        if g.worktree.get(a, ("", ""))[1] != _blob_id(text) or g.worktree[a][0] == "120000"
    )
    return [
        moved,
        Check("gitignore_committed", ".gitignore" in tree, "main has no .gitignore"),
        Check(
            "sources_tracked",
            {"src/main.c", "src/util.c"} <= set(tree),
            "the sources are no longer tracked",
        ),
        Check(
            "artifacts_not_committed",
            not tracked_artifacts,
            f"main tracks build artifacts: {tracked_artifacts[:5]}",
        ),
        Check(
            "artifacts_ignored",
            loose == [],
            "the committed .gitignore files do not ignore "
            + (f"{loose[:5]}" if loose is not None else "(could not be checked)"),
        ),
        Check("artifacts_kept", not lost, f"build artifacts deleted or changed: {lost[:5]}"),
        await _on_main(g),
        await g.clean_tree(),
    ]


# --- fixing broken scripts -----------------------------------------------------------------

BROKEN_COUNT = """\
#!/bin/bash
# Print the total number of lines of the .txt files in the directory given as $1.
total=0
for f in "$1"/*.txt; do
    n=$(wc -l < "$f")
    total=$((total + n))
echo "$total"
"""


def _count_tree(rng: random.Random) -> tuple[dict[str, str], int]:
    files, total = {}, 0
    for name in [*_unique_names(rng, rng.randint(2, 5), ".txt"), "two words.txt"]:
        n = rng.randint(0, 40)
        files[name] = "".join(f"{_sentence(rng)}\n" for _ in range(n))
        total += n
    files["skip.md"] = "x\n" * 7
    files["sub/nested.txt"] = "x\n" * 5
    return files, total


def setup_fix_count(rng: random.Random) -> Setup:
    files = {f"texts/{k}": v for k, v in _count_tree(rng)[0].items()}
    return Setup(files={"count_lines.sh": BROKEN_COUNT, **files})


async def check_fix_count(p: Probe, exp: dict[str, Any]) -> list[Check]:
    rng = random.Random()
    async with p.fresh() as box:
        if (missing := await _copy_script(p, box, "count_lines.sh")) is not None:
            return [missing]
        checks = []
        for case in range(2):
            files, total = _count_tree(rng)
            await box.write({f"dir {case}/{k}": v for k, v in files.items()})
            result = await box.run_subject(f"bash /work/count_lines.sh {q(f'dir {case}')}")
            got = lines(result.stdout)
            checks.append(
                Check(f"case_{case}", got == [str(total)], f"got {got[:2]}, expected {total}")
            )
    return checks


BROKEN_ARCHIVE = """\
#!/bin/bash
# Move every .log file in the directory given as $1 into $1/old/ (created if missing).
mkdir -p $1/old
for f in $(ls $1/*.log); do
    mv $f $1/old/
done
"""


def _log_tree(rng: random.Random) -> dict[str, str]:
    files = {
        f"{name}": _sentence(rng) + "\n" for name in _unique_names(rng, rng.randint(1, 3), ".log")
    }
    files["app server.log"] = "spaced\n"
    files["notes.txt"] = "stays\n"
    files["rotated.log.gz"] = "stays\n"
    return files


def setup_fix_archive(rng: random.Random) -> Setup:
    files = {f"logs/{k}": v for k, v in _log_tree(rng).items()}
    return Setup(files={"archive_logs.sh": BROKEN_ARCHIVE, **files})


async def check_fix_archive(p: Probe, exp: dict[str, Any]) -> list[Check]:
    rng = random.Random()
    async with p.fresh() as box:
        if (missing := await _copy_script(p, box, "archive_logs.sh")) is not None:
            return [missing]
        checks = []
        for case in range(2):
            tree = _log_tree(rng)
            folder = f"my logs {case}"
            await box.write({f"{folder}/{k}": v for k, v in tree.items()})
            before = _files(await box.snapshot(folder))
            await box.run_subject(f"bash /work/archive_logs.sh {q(folder)}")
            after = _files(await box.snapshot(folder))
            want = {(f"old/{k}" if k.endswith(".log") else k): h for k, h in before.items()}
            diff = sorted(set(after) ^ set(want))[:6]
            checks.append(Check(f"case_{case}", after == want, f"differences: {diff}"))
    return checks


BROKEN_REPORT = """\
import csv
import sys

# Print "TOTAL <sum of quantity * price>" with two decimals for a CSV file with the header
# item,quantity,price (the file is given as the first argument).
total = 0
with open(sys.argv[1]) as handle:
    for row in csv.reader(handle):
        total += row[1] * row[2]
print("TOTAL", total)
"""


def _orders(rng: random.Random) -> tuple[str, Decimal]:
    rows, total = ["item,quantity,price"], Decimal(0)
    for _ in range(rng.randint(2, 25)):
        qty, price = rng.randint(1, 50), Decimal(rng.randint(1, 50_000)) / 100
        total += qty * price
        rows.append(f"{rng.choice(WORDS)},{qty},{price:.2f}")
    return "\n".join(rows) + "\n", total


def setup_fix_report(rng: random.Random) -> Setup:
    return Setup(files={"report.py": BROKEN_REPORT, "orders.csv": _orders(rng)[0]})


async def check_fix_report(p: Probe, exp: dict[str, Any]) -> list[Check]:
    rng = random.Random()
    async with p.fresh() as box:
        if (missing := await _copy_script(p, box, "report.py")) is not None:
            return [missing]
        checks = []
        for case in range(3):
            text, total = _orders(rng)
            await box.write({f"orders{case}.csv": text})
            result = await box.run_subject(f"python3 /work/report.py orders{case}.csv")
            got = lines(result.stdout)
            want = f"TOTAL {total:.2f}"
            checks.append(Check(f"case_{case}", got == [want], f"got {got[:2]}, expected {want}"))
    return checks


BROKEN_CHECK = """\
#!/bin/bash
# Usage: check_files.sh FILE...
# Prints "missing: NAME" for each FILE that does not exist; exits with status 1 if any file
# is missing, 0 otherwise.
status=0
printf '%s\\n' "$@" | while read -r name; do
    if [ ! -e "$name" ]; then
        echo "missing: $name"
        status=1
    fi
done
exit $status
"""


def setup_fix_exit(rng: random.Random) -> Setup:
    return Setup(files={"check_files.sh": BROKEN_CHECK, "present.txt": "here\n"})


async def check_fix_exit(p: Probe, exp: dict[str, Any]) -> list[Check]:
    rng = random.Random()
    async with p.fresh() as box:
        if (missing := await _copy_script(p, box, "check_files.sh")) is not None:
            return [missing]
        present = [f"here {i}.txt" for i in range(rng.randint(1, 3))]
        absent = [f"gone_{rng.randint(100, 999)}.txt", "not here.txt"]
        await box.write(dict.fromkeys(present, "x\n"))
        ok_run = await box.run_subject(
            "bash /work/check_files.sh " + " ".join(q(f) for f in present)
        )
        args = [*present, *absent]
        rng.shuffle(args)
        bad_run = await box.run_subject("bash /work/check_files.sh " + " ".join(q(f) for f in args))
    want_missing = sorted(f"missing: {f}" for f in absent)
    return [
        Check(
            "all_present_exit_0",
            ok_run.exit_code == 0 and not lines(ok_run.stdout),
            f"exit {ok_run.exit_code}, output {lines(ok_run.stdout)[:2]}",
        ),
        Check("missing_exit_1", bad_run.exit_code == 1, f"exit {bad_run.exit_code}, expected 1"),
        Check(
            "missing_reported",
            sorted(lines(bad_run.stdout)) == want_missing,
            f"printed {lines(bad_run.stdout)[:3]}",
        ),
    ]


# --- the list --------------------------------------------------------------------------------

WORDFREQ_SOLUTION = r"""cat > wordfreq.sh <<'EOF'
#!/bin/bash
tr -cs 'A-Za-z' '\n' < "$1" | tr 'A-Z' 'a-z' | grep -v '^$' | sort | uniq -c \
  | sort -k1,1nr -k2,2 | head -n "$2" | awk '{print $1, $2}'
EOF
"""

BACKUP_SOLUTION = r"""cat > backup.sh <<'EOF'
#!/bin/bash
mkdir -p -- "$2"
n=0
for f in "$1"/*.txt; do
    [ -f "$f" ] && [ ! -L "$f" ] || continue
    cp -- "$f" "$2/$(basename -- "$f").bak"
    n=$((n + 1))
done
echo "$n"
EOF
"""

STATS_SOLUTION = r"""cat > stats.py <<'EOF'
import sys
numbers = [int(line) for line in sys.stdin if line.strip()]
print("min", min(numbers))
print("max", max(numbers))
print(f"mean {sum(numbers) / len(numbers):.2f}")
EOF
"""

LOWER_SOLUTION = r"""cat > lower.sh <<'EOF'
#!/bin/bash
for f in "$1"/*; do
    [ -f "$f" ] || continue
    base=$(basename -- "$f")
    low=$(printf '%s' "$base" | tr 'A-Z' 'a-z')
    [ "$base" = "$low" ] || mv -- "$f" "$1/$low"
done
EOF
"""

PRIME_SOLUTION = r"""cat > isprime.sh <<'EOF'
#!/bin/bash
n=$1
[ "$n" -lt 2 ] && exit 1
i=2
while [ $((i * i)) -le "$n" ]; do
    [ $((n % i)) -eq 0 ] && exit 1
    i=$((i + 1))
done
exit 0
EOF
"""

TASKS: tuple[ShellTask, ...] = (
    # text processing: find, grep, sed, awk, sort
    ShellTask(
        "count_errors",
        "text_processing",
        "/work/logs/app.log is a log file whose lines look like `DATE TIME LEVEL COMPONENT: "
        "MESSAGE`. Count the lines whose LEVEL (the third field) is exactly ERROR and write "
        "just that number to /work/answer.txt.",
        setup_count_errors,
        check_count_errors,
        "awk '$3 == \"ERROR\"' logs/app.log | wc -l > answer.txt",
    ),
    ShellTask(
        "large_files",
        "text_processing",
        "Find every regular file anywhere under /work/data that is larger than 10 KiB (more "
        "than 10240 bytes). Write their paths relative to /work/data (like `raw/2023/x.dat`), "
        "one per line in any order, to /work/large.txt.",
        setup_large_files,
        check_large_files,
        "cd data && find . -type f -size +10k | sed 's|^\\./||' > ../large.txt",
    ),
    ShellTask(
        "delete_tmp_files",
        "text_processing",
        "Delete every file whose name ends in `.tmp` anywhere under /work/project (hidden "
        "files included). Keep every other file and every directory exactly as it is.",
        setup_delete_tmp,
        check_delete_tmp,
        "find project -type f -name '*.tmp' -delete",
    ),
    ShellTask(
        "top_ips",
        "text_processing",
        "/work/access.log is a web server log; the first field of each line is the client's IP "
        "address. Write the three IP addresses with the most requests to /work/top_ips.txt, one "
        "per line, the busiest first.",
        setup_top_ips,
        check_top_ips,
        "awk '{print $1}' access.log | sort | uniq -c | sort -rn | head -3 | awk '{print $2}' "
        "> top_ips.txt",
    ),
    ShellTask(
        "set_config_values",
        "text_processing",
        "In /work/app.conf, set `port` to 8443 and `debug` to false: change the line "
        "`port = ...` to `port = 8443` and the line `debug = ...` to `debug = false`. Change "
        "nothing else in the file (other keys, comments and line order stay as they are).",
        setup_set_config,
        check_set_config,
        "sed -i -e 's/^port = .*/port = 8443/' -e 's/^debug = .*/debug = false/' app.conf",
    ),
    ShellTask(
        "revenue_by_region",
        "text_processing",
        "/work/sales.csv has the header `region,product,units,unit_price`. For each region, "
        "compute the revenue: the sum of units * unit_price over its rows. Write one line per "
        "region, `REGION TOTAL` with TOTAL printed with exactly two decimals (e.g. `north "
        "1234.50`), sorted by region name, to /work/revenue.txt.",
        setup_revenue,
        check_revenue,
        "awk -F, 'NR > 1 {t[$1] += $3 * $4} END {for (r in t) printf \"%s %.2f\\n\", r, t[r]}' "
        "sales.csv | sort > revenue.txt",
    ),
    ShellTask(
        "todo_locations",
        "text_processing",
        "Find every line that contains `TODO` in the Python files (`*.py`) anywhere under "
        "/work/src. Write each as `PATH:LINE` (PATH relative to /work/src, LINE the 1-based "
        "line number, e.g. `core/io/x.py:12`), one per line in any order, to /work/todos.txt.",
        setup_todos,
        check_todos,
        "cd src && grep -rn --include='*.py' TODO . | cut -d: -f1,2 | sed 's|^\\./||' "
        "> ../todos.txt",
    ),
    ShellTask(
        "extract_emails",
        "text_processing",
        "Extract every distinct e-mail address that appears in /work/contacts.txt and write "
        "them to /work/emails.txt, one per line, each once.",
        setup_emails,
        check_emails,
        "grep -oE '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}' contacts.txt | sort -u "
        "> emails.txt",
    ),
    ShellTask(
        "duplicate_lines",
        "text_processing",
        "Write every line of /work/words.txt that occurs more than once in it to "
        "/work/dupes.txt, each such line once, in any order.",
        setup_dupes,
        check_dupes,
        "sort words.txt | uniq -d > dupes.txt",
    ),
    ShellTask(
        "high_earners",
        "text_processing",
        "/work/employees.csv has the header `name,department,salary`. Write the names of the "
        "employees of the `engineering` department whose salary is above 100000 (strictly) to "
        "/work/high_earners.txt, one per line.",
        setup_high_earners,
        check_high_earners,
        "awk -F, 'NR > 1 && $2 == \"engineering\" && $3 > 100000 {print $1}' employees.csv "
        "> high_earners.txt",
    ),
    ShellTask(
        "strip_comments",
        "text_processing",
        "Write /work/clean.conf: a copy of /work/server.conf without its comment lines (lines "
        "whose first non-blank character is `#`) and without blank lines (empty or only "
        "whitespace). Every other line stays exactly as it is, in the same order. Do not "
        "change /work/server.conf.",
        setup_strip_comments,
        check_strip_comments,
        "grep -vE '^[[:space:]]*(#|$)' server.conf > clean.conf",
    ),
    ShellTask(
        "rename_jpeg",
        "text_processing",
        "Rename every file whose name ends in `.jpeg` anywhere under /work/photos so that it "
        "ends in `.jpg` instead (`a.jpeg` -> `a.jpg`). Directories keep their names, and "
        "file contents and all other files stay as they are.",
        setup_rename_jpeg,
        check_rename_jpeg,
        "find photos -type f -name '*.jpeg' -exec sh -c "
        '\'for f; do mv -- "$f" "${f%.jpeg}.jpg"; done\' sh {} +',
    ),
    ShellTask(
        "modified_in_2024",
        "text_processing",
        "Write the names (without any directory part) of the regular files directly inside "
        "/work/archive (not in subfolders) that were last modified on or after 2024-01-01 to "
        "/work/recent.txt, one per line in any order.",
        setup_recent,
        check_recent,
        "find archive -maxdepth 1 -type f -newermt '2024-01-01' -printf '%f\\n' > recent.txt",
    ),
    ShellTask(
        "line_counts",
        "text_processing",
        "For each file ending in `.txt` directly inside /work/docs (not in subfolders), write "
        "a line `NAME COUNT` to /work/counts.txt, where NAME is the file name and COUNT its "
        "number of lines.",
        setup_line_counts,
        check_line_counts,
        'cd docs && for f in *.txt; do printf \'%s %s\\n\' "$f" "$(wc -l < "$f")"; done '
        "> ../counts.txt",
    ),
    # permissions
    ShellTask(
        "make_scripts_executable",
        "permissions",
        "Give every file ending in `.sh` in /work/bin the mode 755 (rwxr-xr-x). Do not change "
        "the permissions of any other file.",
        setup_exec_scripts,
        check_exec_scripts,
        "chmod 755 bin/*.sh",
    ),
    ShellTask(
        "private_key",
        "permissions",
        "Lock down /work/secrets: the private key /work/secrets/key.pem must have mode 600 and "
        "the directory /work/secrets mode 700. The public key key.pub stays at 644; do not "
        "change any file's content.",
        setup_private_key,
        check_private_key,
        "chmod 600 secrets/key.pem && chmod 700 secrets",
    ),
    ShellTask(
        "remove_world_writable",
        "permissions",
        "Remove the write permission for others (o-w) from every file and directory under "
        "/work/shared, /work/shared itself included, that has it. Change no other permission "
        "bit, and no file.",
        setup_world_writable,
        check_world_writable,
        "chmod -R o-w shared",
    ),
    ShellTask(
        "site_permissions",
        "permissions",
        "Normalise the permissions under /work/site (/work/site itself included): every "
        "directory must have mode 755 and every regular file mode 644. Do not add, remove or "
        "change any file.",
        setup_site_perms,
        check_site_perms,
        "find site -type d -exec chmod 755 {} + && find site -type f -exec chmod 644 {} +",
    ),
    ShellTask(
        "list_executables",
        "permissions",
        "Write the names of the regular files directly inside /work/tools that their owner may "
        "execute (the owner's x bit is set) to /work/executables.txt, one per line in any "
        "order. Do not change any permission.",
        setup_list_executables,
        check_list_executables,
        "find tools -maxdepth 1 -type f -perm -u=x -printf '%f\\n' > executables.txt",
    ),
    ShellTask(
        "read_only_reports",
        "permissions",
        "Make every regular file under /work/reports read-only for everybody by removing all "
        "of its write bits (owner, group and others). Keep the read and execute bits as they "
        "are, and leave the directories' permissions unchanged.",
        setup_readonly_reports,
        check_readonly_reports,
        "find reports -type f -exec chmod a-w {} +",
    ),
    # small scripting
    ShellTask(
        "script_word_frequency",
        "scripting",
        "Write a bash script /work/wordfreq.sh that is run as `bash /work/wordfreq.sh FILE N` "
        "and prints the N most frequent words of the text file FILE, one per line as `COUNT "
        "WORD`. A word is a maximal run of ASCII letters; words are compared ignoring case and "
        "printed in lower case. Order by COUNT (highest first), ties by WORD alphabetically. "
        "/work/sample.txt is an example input. The script is tested on other files.",
        setup_wordfreq,
        check_wordfreq,
        WORDFREQ_SOLUTION,
    ),
    ShellTask(
        "script_backup",
        "scripting",
        "Write a bash script /work/backup.sh that is run as `bash /work/backup.sh SRC DEST`. It "
        "copies every regular file directly inside the directory SRC whose name ends in `.txt` "
        "into the directory DEST (created, with its parents, if missing) under the name "
        "`NAME.bak` (e.g. `a b.txt` -> `a b.txt.bak`), leaves SRC unchanged, and finally prints "
        "the number of files it copied. /work/notes is an example SRC. The script is tested on "
        "other directories.",
        setup_backup,
        check_backup,
        BACKUP_SOLUTION,
    ),
    ShellTask(
        "script_column_sum",
        "scripting",
        "Write a bash script /work/colsum.sh that is run as `bash /work/colsum.sh FILE COL`: "
        "FILE is a comma-separated file whose first line is a header, and the script prints "
        "the sum of the integers in column number COL (1-based) over all the other lines, and "
        "nothing else. /work/numbers.csv is an example. The script is tested on other files.",
        setup_colsum,
        check_colsum,
        "cat > colsum.sh <<'EOF'\n#!/bin/bash\n"
        'awk -F, -v c="$2" \'NR > 1 {s += $c} END {print s + 0}\' "$1"\nEOF\n',
    ),
    ShellTask(
        "script_stats",
        "scripting",
        "Write a Python script /work/stats.py that is run as `python3 /work/stats.py < FILE`. "
        "It reads integers from standard input, one per line (blank lines are ignored), and "
        "prints exactly three lines: `min MIN`, `max MAX` and `mean MEAN`, where MEAN is the "
        "average rounded to two decimals (e.g. `mean -3.50`). /work/numbers.txt is an example "
        "input. The script is tested on other inputs.",
        setup_stats,
        check_stats,
        STATS_SOLUTION,
    ),
    ShellTask(
        "script_lowercase_names",
        "scripting",
        "Write a bash script /work/lower.sh that is run as `bash /work/lower.sh DIR` and "
        "renames every regular file directly inside DIR whose name contains upper-case ASCII "
        "letters to the same name in lower case (no two names collide). Subdirectories and "
        "their contents are left alone. /work/inbox is an example DIR. The script is tested "
        "on other directories.",
        setup_lowercase,
        check_lowercase,
        LOWER_SOLUTION,
    ),
    ShellTask(
        "script_is_prime",
        "scripting",
        "Write a bash script /work/isprime.sh that is run as `bash /work/isprime.sh N` for an "
        "integer 0 <= N <= 1000000 and exits with status 0 if N is a prime number and with "
        "status 1 if it is not. What it prints does not matter.",
        setup_is_prime,
        check_is_prime,
        PRIME_SOLUTION,
    ),
    # git
    ShellTask(
        "git_feature_branch",
        "git",
        "In the git repository /work/repo, create a branch named `feature/greeting` from "
        "`main` and commit on it a change that makes greeting.txt contain exactly the line "
        "`Hello, world!`. The `main` branch must stay where it is.",
        setup_git_branch,
        check_git_branch,
        "cd repo && git checkout -q -b feature/greeting main && echo 'Hello, world!' > "
        "greeting.txt && git commit -qam 'Greet the world'",
    ),
    ShellTask(
        "git_find_commit",
        "git",
        "In the git repository /work/repo, find the commit that added the line starting with "
        "`API_TOKEN=` to settings.env. Write its full 40-character commit hash, and nothing "
        "else, to /work/answer.txt.",
        setup_git_find_commit,
        check_git_find_commit,
        "cd repo && git log --format=%H -S 'API_TOKEN=' -- settings.env | tail -1 > ../answer.txt",
    ),
    ShellTask(
        "git_revert",
        "git",
        "In the git repository /work/repo, undo the commit whose message is `Break the build` "
        "without rewriting history: add a new commit on `main` that reverts exactly that "
        "commit's changes, keeping the changes of the commits after it. Leave the working "
        "tree clean.",
        setup_git_revert,
        check_git_revert,
        "cd repo && git revert --no-edit \"$(git log --format=%H --grep='^Break the build$' -n1)\"",
    ),
    ShellTask(
        "git_fix_typos",
        "git",
        "In the git repository /work/repo, replace every occurrence of the word `teh` in "
        "README.md with `the` (only the whole word in lower case; `Tehran` and `tehee` stay), "
        "and commit just that change on `main` as one commit with the message `Fix typos in "
        "README`. Leave the working tree clean.",
        setup_git_typos,
        check_git_typos,
        "cd repo && sed -i 's/\\bteh\\b/the/g' README.md && git commit -qam 'Fix typos in README'",
    ),
    ShellTask(
        "git_restore_file",
        "git",
        "The file notes.md was deleted from the git repository /work/repo some commits ago. "
        "Restore it with the content it had just before it was deleted and commit it on "
        "`main` (any message), on top of the current history. Leave the working tree clean.",
        setup_git_restore,
        check_git_restore,
        "cd repo && d=$(git log --format=%H --diff-filter=D -n1 -- notes.md) && "
        "git checkout \"$d^\" -- notes.md && git commit -qm 'Restore notes.md'",
    ),
    ShellTask(
        "git_tag_release",
        "git",
        "In the git repository /work/repo, create an annotated tag `v1.2.0` on the commit "
        "whose message is `Release 1.2.0` (not on the latest commit). Do not move `main`.",
        setup_git_tag,
        check_git_tag,
        "cd repo && git tag -a v1.2.0 -m 'Version 1.2.0' "
        "\"$(git log --format=%H --grep='^Release 1.2.0$' -n1)\"",
    ),
    ShellTask(
        "git_ignore_artifacts",
        "git",
        "The git repository /work/repo has untracked build artifacts: the build/ directory and "
        "`*.o` files. Make git ignore them by committing a .gitignore on `main`, so that `git "
        "status --porcelain` prints nothing afterwards. Do not delete the artifacts.",
        setup_git_ignore,
        check_git_ignore,
        "cd repo && printf 'build/\\n*.o\\n' > .gitignore && git add .gitignore && "
        "git commit -qm 'Ignore build artifacts'",
    ),
    # fixing broken scripts
    ShellTask(
        "fix_count_lines",
        "fix_script",
        "/work/count_lines.sh should print the total number of lines of the `.txt` files "
        "directly inside the directory given as its argument (run as `bash "
        "/work/count_lines.sh DIR`; try it on /work/texts), but it is broken. Fix it in place. "
        "It is tested on other directories.",
        setup_fix_count,
        check_fix_count,
        "cat > count_lines.sh <<'EOF'\n#!/bin/bash\ntotal=0\nfor f in \"$1\"/*.txt; do\n"
        '    [ -f "$f" ] || continue\n    n=$(wc -l < "$f")\n    total=$((total + n))\n'
        'done\necho "$total"\nEOF\n',
    ),
    ShellTask(
        "fix_archive_logs",
        "fix_script",
        "/work/archive_logs.sh (run as `bash /work/archive_logs.sh DIR`) should move every "
        "file ending in `.log` directly inside DIR into DIR/old/, creating it if needed, but "
        "it fails on some names, for example in /work/logs. Fix it in place. It is tested on "
        "other directories.",
        setup_fix_archive,
        check_fix_archive,
        "cat > archive_logs.sh <<'EOF'\n#!/bin/bash\nmkdir -p -- \"$1/old\"\n"
        'for f in "$1"/*.log; do\n    [ -f "$f" ] || continue\n    mv -- "$f" "$1/old/"\n'
        "done\nEOF\n",
    ),
    ShellTask(
        "fix_python_report",
        "fix_script",
        "/work/report.py (run as `python3 /work/report.py FILE`) should print `TOTAL X`, X "
        "being the sum of quantity * price over the rows of a CSV file with the header "
        "`item,quantity,price`, with exactly two decimals (e.g. `TOTAL 1234.50`), but it "
        "crashes on /work/orders.csv. Fix it in place. It is tested on other files.",
        setup_fix_report,
        check_fix_report,
        "cat > report.py <<'EOF'\nimport csv\nimport sys\nfrom decimal import Decimal\n"
        "total = Decimal(0)\nwith open(sys.argv[1]) as handle:\n"
        "    for row in csv.DictReader(handle):\n"
        "        total += int(row['quantity']) * Decimal(row['price'])\n"
        "print(f'TOTAL {total:.2f}')\nEOF\n",
    ),
    ShellTask(
        "fix_exit_status",
        "fix_script",
        "/work/check_files.sh (run as `bash /work/check_files.sh FILE...`) should print "
        "`missing: NAME` for every argument that does not exist and exit with status 1 if any "
        "is missing (0 otherwise), but it always exits with 0. Fix it in place. It is tested "
        "with other file names.",
        setup_fix_exit,
        check_fix_exit,
        "cat > check_files.sh <<'EOF'\n#!/bin/bash\nstatus=0\nfor name in \"$@\"; do\n"
        '    if [ ! -e "$name" ]; then\n        echo "missing: $name"\n        status=1\n'
        "    fi\ndone\nexit $status\nEOF\n",
    ),
)
"""Every task, in dataset order."""

CATEGORIES: tuple[str, ...] = ("text_processing", "permissions", "scripting", "git", "fix_script")
