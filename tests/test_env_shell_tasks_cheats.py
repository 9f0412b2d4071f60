"""shell_tasks rewards cannot be forged: for every task, the cheats an optimising policy would
try (do nothing, fake the checked state, rename, commit, symlink, replace with a folder or a
FIFO, hard-code the expected output, plant git config, hooks, commondir, index flags, ignore
rules outside the committed .gitignore) score 0, and the task's reference solution still
scores 1 on the same sandbox afterwards (so the zeros come from the checker, not a broken
sandbox).

`CHEATS` is the table: task id -> cheats, each a name and the bash commands a model would
run. One episode per task plays them all: the setup's /work is saved once, and before each
cheat it is restored, the cheat runs, and the episode is scored mid-way (scoring kills the
model's processes first, the episode goes on).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import docker
import pytest
from conftest import in_process_runtime

from runtime.client.in_process import InProcessClient
from runtime.env import Message, ToolCall
from runtime.env.loader import resolve_module

REPO = Path(__file__).resolve().parents[1]
ENV_DIR = REPO / "environments" / "shell_tasks"
CONCURRENCY = 6
SEED = 7


@dataclass(frozen=True)
class Cheat:
    """One way to (try to) get the reward without doing the task: bash commands run in /work,
    each as one turn, in order."""

    name: str
    steps: tuple[str, ...] = ()


def cheat(name: str, *steps: str) -> Cheat:
    return Cheat(name, steps)


NOTHING = cheat("do_nothing")

FIND_BAD = "$(git log --format=%H --grep='^Break the build$' -n1)"
REVERT = f"cd repo && git revert --no-edit {FIND_BAD}"
FIX_TYPOS = "cd repo && sed -i 's/\\bteh\\b/the/g' README.md"
DELETED = "$(git log --format=%H --diff-filter=D -n1 -- notes.md)"
RELEASE = "$(git log --format=%H --grep='^Release 1.2.0$' -n1)"
COMMIT_EMPTY_IGNORE = "cd repo && touch .gitignore && git add .gitignore && git commit -qm ignore"
COMMONDIR_FSMONITOR = (
    # The model's own copy of the metadata, with a config whose fsmonitor is its program;
    # .git/commondir makes git read config, refs and objects from there.
    "mkdir -p /work/meta && cp -a repo/.git/. /work/meta/ && rm -f /work/meta/commondir\n"
    "cat > /work/fsm.sh <<'EOF'\n#!/bin/sh\n"
    "rm -rf /work/repo/build /work/repo/lib.o /work/repo/src/*.o /work/repo/junk\nexit 1\nEOF\n"
    "chmod +x /work/fsm.sh\n"
    "git --git-dir=/work/meta config core.fsmonitor /work/fsm.sh\n"
    "echo /work/meta > repo/.git/commondir"
)


PLANT_PROGRAMS = (
    # Everything a checker might run or load from /work or $HOME: each, if ever run, writes
    # the right answer (computed now), so a score of 1 would mean the checker ran it.
    "n=$(awk '$3 == \"ERROR\"' logs/app.log | wc -l)\n"
    "mkdir -p bin .local/bin .config/git .local/lib/python3.11/site-packages\n"
    "for f in bin/python3 bin/stat bin/env bin/git bin/bash bin/sh bin/cat .local/bin/python3 "
    "python3 env git stat; do printf '#!/bin/sh\\necho %s > /work/answer.txt\\n' \"$n\" > $f; "
    "chmod +x $f; done\n"
    "for f in .bashrc .bash_profile .profile .bash_login .bash_logout; do "
    "printf 'echo %s > /work/answer.txt\\n' \"$n\" > $f; done\n"
    "for f in sitecustomize.py usercustomize.py .local/lib/python3.11/site-packages/a.pth; do "
    'printf \'import os; open("/work/answer.txt", "w").write("%s\\\\n")\\n\' "$n" '
    "> $f; done\n"
    "printf '[core]\\n\\tfsmonitor = /work/bin/sh\\n\\tpager = /work/bin/sh\\n' "
    "> .gitconfig\n"
    "cp .gitconfig .config/git/config\n"
    "echo 'export BASH_ENV=/work/.bashrc PATH=/work/bin:$PATH' >> .bashrc"
)
TAG_BY_HOOKS = (
    # Hooks, fsmonitor and aliases that would create the tag if any git of the checker's
    # honoured them (the repository's config, the global config, a hooks path).
    "cat > /work/tagger.sh <<'EOF'\n#!/bin/sh\ncd /work/repo && "
    "GIT_DIR=/work/repo/.git git tag -f -a v1.2.0 -m v "
    "\"$(git log --format=%H --grep='^Release 1.2.0$' -n1)\" >/dev/null 2>&1\nexit 1\nEOF\n"
    "chmod +x /work/tagger.sh && mkdir -p /work/hooks && "
    "for h in reference-transaction post-checkout post-index-change pre-auto-gc; do "
    "cp /work/tagger.sh /work/hooks/$h; cp /work/tagger.sh repo/.git/hooks/$h; done\n"
    "for c in 'git -C repo config' 'git config --global'; do "
    "$c core.fsmonitor /work/tagger.sh && $c core.hooksPath /work/hooks && "
    "$c core.pager /work/tagger.sh && $c alias.rev-parse '!/work/tagger.sh'; done"
)


DOCTORED_REVERT = r"""cd repo
# The setup computed the reverted tree in the repository (a dangling object): commit it on
# main without touching the work tree, then overwrite that tree's object file with the old
# tree's content, so that the work tree (never reverted) matches what "HEAD's tree" reads as.
for t in $(git fsck --no-reflogs 2>/dev/null | awk '$2 == "tree" {print $3}'); do
    git ls-tree "$t" | grep -q 'build.sh' && target=$t
done
test -n "$target"
old=$(git rev-parse 'HEAD^{tree}')
c=$(git commit-tree "$target" -p HEAD -m 'Revert "Break the build"')
git update-ref refs/heads/main "$c"
python3 - "$target" "$old" <<'EOF'
import os, subprocess, sys, zlib
target, old = sys.argv[1:]
body = subprocess.run(["git", "cat-file", "tree", old], capture_output=True, check=True).stdout
path = f".git/objects/{target[:2]}/{target[2:]}"
os.chmod(path, 0o644)
with open(path, "wb") as handle:
    handle.write(zlib.compress(b"tree %d\0" % len(body) + body))
EOF
git status --porcelain | wc -l"""


def hard_coded(script: str, output_command: str) -> str:
    """A script at ``script`` that prints what ``output_command`` prints on the example now."""
    return (
        f"out=$({output_command})\n"
        f'printf \'#!/bin/bash\\ncat <<"XEOF"\\n%s\\nXEOF\\n\' "$out" > {script}\n'
        f"cat {script}"
    )


CHEATS: dict[str, list[Cheat]] = {
    # --- text processing ---
    "count_errors": [
        NOTHING,
        cheat("grep_count_includes_decoys", "grep -c ERROR logs/app.log > answer.txt"),
        cheat("answer_is_a_folder", "mkdir answer.txt"),
        cheat("programs_planted_for_the_checker", PLANT_PROGRAMS),
    ],
    "large_files": [
        cheat("list_everything", "cd data && find . -type f | sed 's|^\\./||' > ../large.txt"),
        cheat("wrong_prefix", "find data -type f -size +10k > large.txt"),
        cheat(
            "make_all_files_large_then_list_all",
            "find data -type f -exec truncate -s 20k {} +",
            "cd data && find . -type f -size +10k | sed 's|^\\./||' > ../large.txt",
        ),
    ],
    "delete_tmp_files": [
        NOTHING,
        cheat("rename_to_keep", "find project -name '*.tmp' -exec mv {} {}.keep \\;"),
        cheat(
            "replace_with_folders",
            "find project -type f -name '*.tmp' | while IFS= read -r f; do "
            'rm -- "$f" && mkdir -- "$f"; done',
        ),
        cheat(
            "replace_with_symlinks",
            "find project -type f -name '*.tmp' | while IFS= read -r f; do "
            'rm -- "$f" && ln -s /dev/null "$f"; done',
        ),
        cheat(
            "replace_with_fifos",
            "find project -type f -name '*.tmp' | while IFS= read -r f; do "
            'rm -- "$f" && mkfifo -- "$f"; done',
        ),
        cheat("delete_everything", "rm -rf project/*"),
    ],
    "top_ips": [
        cheat(
            "least_busy_order",
            "awk '{print $1}' access.log | sort | uniq -c | sort -n | tail -3 "
            "| awk '{print $2}' > top_ips.txt",
        ),
        cheat("first_three_lines", "head -3 access.log | awk '{print $1}' > top_ips.txt"),
    ],
    "set_config_values": [
        cheat(
            "unanchored_sed",
            "sed -i -e 's/port = .*/port = 8443/' -e 's/debug = .*/debug = false/' app.conf",
        ),
        cheat("only_the_two_lines", "printf 'port = 8443\\ndebug = false\\n' > app.conf"),
    ],
    "revenue_by_region": [
        cheat(
            "integer_totals",
            "awk -F, 'NR > 1 {t[$1] += $3 * $4} END {for (r in t) printf \"%s %d\\n\", r, t[r]}'"
            " sales.csv | sort > revenue.txt",
        ),
        cheat(
            "sum_of_prices",
            "awk -F, 'NR > 1 {t[$1] += $4} END {for (r in t) printf \"%s %.2f\\n\", r, t[r]}'"
            " sales.csv | sort > revenue.txt",
        ),
    ],
    "todo_locations": [
        cheat("every_file", "cd src && grep -rn TODO . | cut -d: -f1,2 > ../todos.txt"),
        cheat("src_prefix", "grep -rn --include='*.py' TODO src | cut -d: -f1,2 > todos.txt"),
    ],
    "extract_emails": [
        cheat("words_with_at", "grep -o '[^ ]*@[^ ]*' contacts.txt | sort -u > emails.txt"),
        cheat(
            "not_deduplicated",
            "grep -oE '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}' contacts.txt > emails.txt",
        ),
    ],
    "duplicate_lines": [
        cheat("unsorted_uniq", "uniq -d words.txt > dupes.txt"),
        cheat("every_line", "sort -u words.txt > dupes.txt"),
    ],
    "high_earners": [
        cheat(
            "at_least_instead_of_above",
            "awk -F, 'NR > 1 && $2 == \"engineering\" && $3 >= 100000 {print $1}' "
            "employees.csv > high_earners.txt",
        ),
        cheat(
            "all_engineers",
            "awk -F, '$2 == \"engineering\" {print $1}' employees.csv > high_earners.txt",
        ),
    ],
    "strip_comments": [
        cheat("only_column_one_hashes", "grep -v '^#' server.conf > clean.conf"),
        cheat("every_hash", "grep -vE '#|^[[:space:]]*$' server.conf > clean.conf"),
        cheat(
            "edit_the_original",
            "sed -i -E '/^[[:space:]]*(#|$)/d' server.conf && cp server.conf clean.conf",
        ),
    ],
    "rename_jpeg": [
        cheat(
            "folder_renamed_too",
            "find photos -depth -name '*.jpeg' -exec sh -c "
            '\'for f; do mv -- "$f" "${f%.jpeg}.jpg"; done\' sh {} +',
        ),
        cheat(
            "copied_not_renamed",
            "find photos -type f -name '*.jpeg' -exec sh -c "
            '\'for f; do cp -p -- "$f" "${f%.jpeg}.jpg"; done\' sh {} +',
        ),
        cheat(
            "symlink_left_behind",
            "find photos -type f -name '*.jpeg' -exec sh -c "
            '\'for f; do mv -- "$f" "${f%.jpeg}.jpg" && '
            'ln -s "$(basename -- "${f%.jpeg}.jpg")" "$f"; done\' sh {} +',
        ),
        cheat(
            "folder_left_behind",
            "find photos -type f -name '*.jpeg' -exec sh -c "
            '\'for f; do mv -- "$f" "${f%.jpeg}.jpg" && mkdir -- "$f"; done\' sh {} +',
        ),
    ],
    "modified_in_2024": [
        cheat("every_name", "find archive -mindepth 1 -maxdepth 1 -printf '%f\\n' > recent.txt"),
        cheat(
            "touch_everything_first",
            "find archive -maxdepth 1 -type f -exec touch {} +",
            "find archive -maxdepth 1 -type f -newermt 2024-01-01 -printf '%f\\n' > recent.txt",
        ),
        cheat(
            "recursive",
            "find archive -type f -newermt 2024-01-01 -printf '%f\\n' > recent.txt",
        ),
    ],
    "line_counts": [
        cheat("raw_wc", "wc -l docs/*.txt > counts.txt"),
        cheat("recursive_grep", "grep -rc '' docs | tr ':' ' ' > counts.txt"),
    ],
    # --- permissions ---
    "make_scripts_executable": [
        cheat("everything_755", "chmod 755 bin/*"),
        cheat(
            "scripts_replaced",
            'for f in bin/*.sh; do rm -- "$f"; printf \'#!/bin/sh\\n\' > "$f"; '
            'chmod 755 -- "$f"; done',
        ),
        cheat("scripts_symlinked", 'for f in bin/*.sh; do rm -- "$f"; ln -s /bin/true "$f"; done'),
    ],
    "private_key": [
        cheat("public_key_too", "chmod 700 secrets && chmod 600 secrets/*"),
        cheat(
            "new_key",
            "rm secrets/key.pem && echo new > secrets/key.pem && chmod 600 secrets/key.pem "
            "&& chmod 700 secrets",
        ),
    ],
    "remove_world_writable": [
        cheat("group_too", "chmod -R go-w shared"),
        cheat("everything_755", "chmod -R 755 shared"),
    ],
    "site_permissions": [
        cheat("everything_755", "chmod -R 755 site"),
        cheat("files_only", "find site -type f -exec chmod 644 {} +"),
    ],
    "list_executables": [
        cheat(
            "make_all_executable",
            "chmod u+x tools/* && find tools -maxdepth 1 -type f -printf '%f\\n' > executables.txt",
        ),
        cheat("recursive", "find tools -type f -perm -u=x -printf '%f\\n' > executables.txt"),
    ],
    "read_only_reports": [
        cheat("folders_too", "chmod -R a-w reports"),
        cheat("no_bits_at_all", "find reports -type f -exec chmod 0 {} +"),
    ],
    # --- scripting: the script runs on new inputs in a fresh sandbox ---
    "script_word_frequency": [
        cheat(
            "hard_coded_sample_answer",
            hard_coded(
                "wordfreq.sh",
                "tr -cs 'A-Za-z' '\\n' < sample.txt | tr 'A-Z' 'a-z' | grep -v '^$' | sort "
                "| uniq -c | sort -k1,1nr -k2,2 | head -n 5 | awk '{print $1, $2}'",
            ),
        ),
        cheat(
            "case_sensitive",
            'printf \'#!/bin/bash\\ntr -cs A-Za-z "\\\\n" < "$1" | grep -v "^$" | sort '
            '| uniq -c | sort -k1,1nr -k2,2 | head -n "$2" | awk "{print \\\\$1, \\\\$2}"\\n\''
            " > wordfreq.sh",
        ),
    ],
    "script_backup": [
        NOTHING,
        cheat(
            "no_bak_suffix",
            'printf \'#!/bin/bash\\nmkdir -p "$2"\\ncp "$1"/*.txt "$2"/\\n'
            'ls "$1"/*.txt | wc -l\\n\' > backup.sh',
        ),
    ],
    "script_column_sum": [
        cheat(
            "hard_coded_sample_answer",
            hard_coded("colsum.sh", "awk -F, 'NR > 1 {s += $2} END {print s + 0}' numbers.csv"),
        ),
    ],
    "script_stats": [
        cheat(
            "hard_coded_sample_answer",
            "python3 - <<'EOF'\nnums = [int(x) for x in open('numbers.txt') if x.strip()]\n"
            "text = f'min {min(nums)}\\nmax {max(nums)}\\nmean {sum(nums) / len(nums):.2f}'\n"
            "open('stats.py', 'w').write(f'print({text!r})\\n')\nEOF",
        ),
    ],
    "script_lowercase_names": [
        cheat(
            "subfolders_renamed_too",
            "cat > lower.sh <<'EOF'\n#!/bin/bash\nfor f in \"$1\"/*; do\n"
            '    b=$(basename -- "$f"); l=$(printf %s "$b" | tr A-Z a-z)\n'
            '    [ "$b" = "$l" ] || mv -- "$f" "$1/$l"\ndone\nEOF',
        ),
        cheat(
            # A correct script that also turns the next case's folder into a symlink out of
            # /work, so that the checker cannot write that case's input.
            "sabotages_the_next_case",
            "cat > lower.sh <<'EOF'\n#!/bin/bash\nln -s /tmp '/work/case 1' 2>/dev/null\n"
            'for f in "$1"/*; do\n    [ -f "$f" ] || continue\n'
            '    b=$(basename -- "$f"); l=$(printf %s "$b" | tr A-Z a-z)\n'
            '    [ "$b" = "$l" ] || mv -- "$f" "$1/$l"\ndone\nEOF',
        ),
    ],
    "script_is_prime": [
        cheat("always_prime", "printf '#!/bin/bash\\nexit 0\\n' > isprime.sh"),
        cheat("odd_is_prime", "printf '#!/bin/bash\\nexit $(( $1 %% 2 == 0 ))\\n' > isprime.sh"),
    ],
    # --- fixing broken scripts ---
    "fix_count_lines": [
        NOTHING,
        cheat(
            "hard_coded_example_total",
            hard_coded("count_lines.sh", "cat texts/*.txt | wc -l"),
        ),
        cheat(
            "unquoted_argument",
            "printf '#!/bin/bash\\ncat $1/*.txt | wc -l\\n' > count_lines.sh",
        ),
    ],
    "fix_archive_logs": [
        NOTHING,
        cheat(
            "hard_coded_example_folder",
            "printf '#!/bin/bash\\nmkdir -p /work/logs/old\\nmv /work/logs/*.log "
            "/work/logs/old/\\n' > archive_logs.sh",
        ),
        cheat(
            "moves_everything",
            'printf \'#!/bin/bash\\nmkdir -p "$1/old"\\nfor f in "$1"/*; do '
            '[ -f "$f" ] && mv -- "$f" "$1/old/"; done\\nexit 0\\n\' > archive_logs.sh',
        ),
    ],
    "fix_python_report": [
        NOTHING,
        cheat(
            "hard_coded_example_total",
            "python3 - <<'EOF'\nimport csv\nfrom decimal import Decimal\n"
            "rows = list(csv.DictReader(open('orders.csv')))\n"
            "t = sum(int(r['quantity']) * Decimal(r['price']) for r in rows)\n"
            "open('report.py', 'w').write(f'print(\"TOTAL {t:.2f}\")\\n')\nEOF",
        ),
    ],
    "fix_exit_status": [
        NOTHING,
        cheat(
            "always_fails",
            'printf \'#!/bin/bash\\nfor n in "$@"; do [ -e "$n" ] || echo "missing: $n"; '
            "done\\nexit 1\\n' > check_files.sh",
        ),
    ],
    # --- git: read from copied objects in a fresh sandbox; nothing of the model's honoured ---
    "git_feature_branch": [
        cheat("branch_without_commit", "cd repo && git branch feature/greeting"),
        cheat(
            "committed_on_main",
            "cd repo && echo 'Hello, world!' > greeting.txt && git commit -qam greet "
            "&& git branch feature/greeting",
        ),
        cheat(
            "uncommitted",
            "cd repo && git checkout -q -b feature/greeting && echo 'Hello, world!' > greeting.txt",
        ),
        cheat(
            "other_files_changed_too",
            "cd repo && git checkout -q -b feature/greeting && echo 'Hello, world!' > greeting.txt "
            "&& git rm -q README.md && git commit -qam greet",
        ),
        cheat(
            "branch_through_commondir",
            "mkdir -p /work/meta && cp -a repo/.git/. /work/meta/",
            "cd repo && git --git-dir=/work/meta --work-tree=. checkout -q -b feature/greeting "
            "&& echo 'Hello, world!' > greeting.txt "
            "&& git --git-dir=/work/meta --work-tree=. commit -qam greet "
            "&& git --git-dir=/work/meta --work-tree=. checkout -q -f main "
            "&& echo /work/meta > .git/commondir",
        ),
    ],
    "git_find_commit": [
        cheat("head_commit", "git -C repo rev-parse HEAD > answer.txt"),
        cheat(
            "last_change_of_the_file",
            "git -C repo log -1 --format=%H -- settings.env > answer.txt",
        ),
        cheat(
            "short_hash",
            "cd repo && git log --format=%h -S 'API_TOKEN=' -- settings.env | tail -1 "
            "> ../answer.txt",
        ),
    ],
    "git_revert": [
        NOTHING,
        cheat("rewrite_history", f"cd repo && git reset -q --hard {FIND_BAD}^"),
        cheat("staged_not_committed", f"cd repo && git revert --no-commit {FIND_BAD}"),
        cheat(
            "dirty_file_marked_assume_unchanged",
            REVERT,
            "cd repo && echo junk >> build.sh && git update-index --assume-unchanged build.sh",
        ),
        cheat(
            "dirty_file_marked_skip_worktree",
            REVERT,
            "cd repo && echo junk >> config.yml && git update-index --skip-worktree config.yml",
        ),
        cheat(
            "untracked_file_hidden_by_its_own_gitignore",
            REVERT,
            "cd repo && mkdir junk && echo x > junk/file && printf '*\\n' > junk/.gitignore",
        ),
        cheat(
            "untracked_file_hidden_by_info_exclude",
            REVERT,
            "cd repo && echo x > junk.txt && echo junk.txt >> .git/info/exclude",
        ),
        cheat(
            "work_tree_not_reverted_hidden_by_index",
            # The revert is committed, then the work tree goes back to the broken files while
            # the index claims they are unchanged.
            REVERT,
            f"cd repo && git show {FIND_BAD}:build.sh > build.sh "
            "&& git update-index --assume-unchanged build.sh",
        ),
        cheat(
            "fsmonitor_through_commondir",
            REVERT,
            "mkdir repo/junk && echo x > repo/junk/x",
            COMMONDIR_FSMONITOR,
        ),
        cheat("reverted_tree_committed_and_its_object_doctored", DOCTORED_REVERT),
        cheat(
            "staged_change_after_the_revert",
            REVERT,
            "cd repo && echo x > staged.txt && git add staged.txt && rm staged.txt && "
            "git update-index --assume-unchanged staged.txt",
        ),
    ],
    "git_fix_typos": [
        cheat(
            "naive_sed",
            "cd repo && sed -i 's/teh/the/g' README.md && git commit -qam 'Fix typos in README'",
        ),
        cheat("wrong_message", FIX_TYPOS + " && git commit -qam 'fix'"),
        cheat(
            "amended_old_commit", FIX_TYPOS + " && git commit -q --amend -am 'Fix typos in README'"
        ),
        cheat(
            "other_files_in_the_commit",
            FIX_TYPOS + " && echo '# x' >> src/app.py && git commit -qam 'Fix typos in README'",
        ),
        cheat(
            "dirty_work_tree_hidden",
            FIX_TYPOS + " && git commit -qam 'Fix typos in README'",
            "cd repo && echo junk >> README.md && git update-index --assume-unchanged README.md",
        ),
        cheat(
            "commit_in_a_copy_through_commondir",
            "mkdir -p /work/meta && cp -a repo/.git/. /work/meta/",
            FIX_TYPOS + " && git --git-dir=/work/meta --work-tree=. commit -qam "
            "'Fix typos in README' && echo /work/meta > .git/commondir",
        ),
    ],
    "git_restore_file": [
        NOTHING,
        cheat(
            "first_version",
            "cd repo && first=$(git log --format=%H --reverse -- notes.md | head -1) "
            '&& git checkout "$first" -- notes.md && git commit -qm restore',
        ),
        cheat("not_committed", f'cd repo && git checkout "{DELETED}^" -- notes.md'),
        cheat("rewrite_history", f'cd repo && git reset -q --hard "{DELETED}^"'),
        cheat(
            "other_files_in_the_commit",
            f'cd repo && git checkout "{DELETED}^" -- notes.md && echo x > extra.txt '
            "&& git add extra.txt && git commit -qm restore",
        ),
        cheat(
            "gitdir_file_elsewhere",
            f'cd repo && git checkout "{DELETED}^" -- notes.md && git commit -qm restore',
            "mv repo/.git /work/realgit && echo 'gitdir: /work/realgit' > repo/.git",
        ),
    ],
    "git_tag_release": [
        cheat("lightweight_tag", f'cd repo && git tag v1.2.0 "{RELEASE}"'),
        cheat("tag_on_head", "cd repo && git tag -a v1.2.0 -m v1.2.0"),
        cheat(
            "tag_on_prepare_commit",
            "cd repo && git tag -a v1.2.0 -m v "
            "\"$(git log --format=%H --grep='^Prepare release 1.2.0$' -n1)\"",
        ),
        cheat(
            "tag_through_replace_ref",
            # v1.2.0 on HEAD, and a replace ref that makes HEAD read as the release commit.
            f'cd repo && git tag -a v1.2.0 -m v && git replace HEAD "{RELEASE}"',
        ),
        cheat("hooks_and_config_that_would_tag", TAG_BY_HOOKS),
    ],
    "git_ignore_artifacts": [
        NOTHING,
        cheat(
            "artifacts_committed",
            "cd repo && touch .gitignore && git add -A && git commit -qm 'Add everything'",
        ),
        cheat(
            "rules_only_in_the_work_tree_assume_unchanged",
            COMMIT_EMPTY_IGNORE,
            "cd repo && printf 'build/\\n*.o\\n' > .gitignore "
            "&& git update-index --assume-unchanged .gitignore",
        ),
        cheat(
            "rules_only_in_the_work_tree_skip_worktree",
            COMMIT_EMPTY_IGNORE,
            "cd repo && printf 'build/\\n*.o\\n' > .gitignore "
            "&& git update-index --skip-worktree .gitignore",
        ),
        cheat(
            "untracked_nested_gitignores",
            "cd repo && echo lib.o > .gitignore && git add .gitignore && git commit -qm ignore",
            "cd repo && printf '*\\n' > build/.gitignore "
            "&& printf '*.o\\n.gitignore\\n' > src/.gitignore",
        ),
        cheat(
            "info_exclude",
            COMMIT_EMPTY_IGNORE,
            "printf 'build/\\n*.o\\n' >> repo/.git/info/exclude",
        ),
        cheat(
            "excludes_file_in_repo_config",
            COMMIT_EMPTY_IGNORE,
            "echo '*' > /work/ignore-all && git -C repo config core.excludesFile /work/ignore-all",
        ),
        cheat(
            "excludes_file_in_global_config",
            COMMIT_EMPTY_IGNORE,
            "echo '*' > /work/ignore-all && git config --global core.excludesFile /work/ignore-all",
        ),
        cheat("fsmonitor_through_commondir", COMMIT_EMPTY_IGNORE, COMMONDIR_FSMONITOR),
        cheat(
            "artifacts_deleted",
            "cd repo && printf 'build/\\n*.o\\n' > .gitignore && git add .gitignore "
            "&& git commit -qm ignore && rm -rf build lib.o src/*.o",
        ),
        cheat(
            "artifacts_moved_behind_a_symlink",
            "cd repo && printf 'build\\n*.o\\n' > .gitignore && git add .gitignore "
            "&& git commit -qm ignore && mv build /tmp/build && ln -s /tmp/build build",
        ),
        cheat(
            "build_committed_as_a_gitlink",
            "cd repo && printf '*.o\\n' > .gitignore && git add .gitignore "
            '&& git update-index --add --cacheinfo "160000,$(git rev-parse HEAD),build" '
            "&& git commit -qm ignore",
        ),
        cheat(
            "ignore_rules_through_gitattributes_and_hooks",
            COMMIT_EMPTY_IGNORE,
            "cd repo && printf '* filter=hide\\n' > .git/info/attributes "
            "&& printf '#!/bin/sh\\nrm -rf /work/repo/build /work/repo/*.o /work/repo/src/*.o\\n' "
            "> .git/hooks/post-index-change && chmod +x .git/hooks/post-index-change",
        ),
    ],
}
"""Task id -> the cheats that must score 0 on it (every task has at least one)."""


TASK_ORDER = [t.id for t in resolve_module(str(ENV_DIR)).TASKS]


def call(index: int, name: str, **arguments: Any) -> ToolCall:
    return ToolCall(id=f"call_{index}", name=name, arguments=json.dumps(arguments))


def assistant(*calls: ToolCall) -> Message:
    return Message(role="assistant", tool_calls=list(calls))


SAVE = "mkdir -p /tmp/orig && cp -a /work/. /tmp/orig/ && echo __ok__"
RESTORE = (
    "cd / && chmod -R u+rwX /work 2>/dev/null; find /work -mindepth 1 -delete && "
    "cp -a /tmp/orig/. /work/ && chmod 755 /work && cd /work && echo __ok__"
)


def guarded(step: str) -> str:
    """``step`` in a subshell that stops at the first failing command; prints ``__ok__`` only
    if every command succeeded (so a cheat that did not do what it says fails the test)."""
    return f"(\nset -e\ncd /work\n{step}\n) && echo __ok__"


@pytest.fixture(scope="module")
def mod() -> ModuleType:
    return resolve_module(str(ENV_DIR))


@pytest.fixture(scope="module")
async def client(owner: str, docker_client: docker.DockerClient) -> AsyncIterator[InProcessClient]:
    async with in_process_runtime(ENV_DIR, f"{owner}-shell-cheats", docker_client) as runtime:
        yield runtime


def test_every_task_has_a_cheat(mod: ModuleType) -> None:
    """The table covers exactly the shipped tasks, each with at least one cheat."""
    ids = [task.id for task in mod.TASKS]
    assert sorted(CHEATS) == sorted(ids)
    assert all(CHEATS[i] for i in ids)
    for cheats in CHEATS.values():
        assert len({c.name for c in cheats}) == len(cheats)


async def play_cheats(client: InProcessClient, task: Any) -> dict[str, str]:
    """One episode: every cheat of ``task`` from the setup's state, scored; then the reference
    solution from the same state. Returns what went wrong, by cheat name."""
    wrong: dict[str, str] = {}
    turn = 0

    async def bash(ep: Any, command: str) -> str:
        nonlocal turn
        turn += 1
        out = await ep.step(assistant(call(turn, "bash", command=command)))
        return str(out.observations[0].content)

    # One parameter set for every episode (the server loads it once); the task by its index.
    index = next(i for i, t in enumerate(TASK_ORDER) if t == task.id)
    params = {"max_turns": 200}
    async with client.episode("shell_tasks", params=params, example_index=index, seed=SEED) as ep:
        assert "__ok__" in await bash(ep, SAVE)
        for item in CHEATS[task.id]:
            assert "__ok__" in await bash(ep, RESTORE)
            for step in item.steps:
                seen = await bash(ep, guarded(step))
                if "__ok__" not in seen:
                    wrong[item.name] = f"the cheat's commands failed: {seen[-300:]}"
            scored = await ep.score()
            if scored.reward.score != 0.0:
                wrong[item.name] = f"scored {scored.reward.score}: {scored.reward.reason}"
        assert "__ok__" in await bash(ep, RESTORE)
        await bash(ep, task.solution)
        gold = await ep.score()
        if gold.reward.score != 1.0:
            wrong["<reference solution>"] = gold.reward.reason
    return wrong


@pytest.mark.slow
async def test_no_cheat_scores(client: InProcessClient, mod: ModuleType) -> None:
    """Every cheat of `CHEATS` scores 0 on its task, and the reference solution then scores 1
    on the same sandbox. ``RUNTIME_TEST_SHELL_TASKS=id,id`` plays only those tasks (while
    developing a checker)."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(task: Any) -> tuple[str, dict[str, str]]:
        async with gate:
            return task.id, await play_cheats(client, task)

    only = os.environ.get("RUNTIME_TEST_SHELL_TASKS", "")
    tasks = [t for t in mod.TASKS if not only or t.id in only.split(",")]
    results = await asyncio.gather(*(one(task) for task in tasks))
    assert {k: v for k, v in results if v} == {}
