#!/usr/bin/env python3
# Carry edits of base files into the patch that changes them.
#
#   scripts/refresh-patch.py PATCH FILE...
#
# Edit FILE in the assembled tree ($SRC, at the series' tip), then run this
# with the patch (a name or a unique part of it) that owns the edited hunks:
# it applies the edit (the work tree's diff against the tip) to FILE as that
# patch's commit left it, and rewrites the patch's diff of FILE from it. The
# rest of the patch is kept. Re-run scripts/assemble.sh afterwards: it
# rebuilds the series, and says so if a later patch no longer applies.
import os
import re
import subprocess
import sys
import tempfile

USAGE = 'usage: scripts/refresh-patch.py PATCH FILE...'
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def src_dir():
    out = subprocess.run(['bash', '-c', '. "$1/scripts/common.sh" >/dev/null; echo "$SRC"',
                          '_', ROOT], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def git(src, *args, inp=None):
    return subprocess.run(['git', '-C', src, *args], check=True, capture_output=True,
                          text=True, input=inp).stdout


def sections(body):
    """Split a patch's diff into (path, text) per file, and its header."""
    parts = re.split(r'(?m)^(?=diff --git )', body)
    head, files = parts[0], []
    for p in parts[1:]:
        path = re.match(r'diff --git a/(\S+) b/', p).group(1)
        files.append((path, p))
    return head, files


def file_diff(src, old, new, path):
    with tempfile.TemporaryDirectory() as d:
        a, b = os.path.join(d, 'a'), os.path.join(d, 'b')
        open(a, 'w').write(old)
        open(b, 'w').write(new)
        r = subprocess.run(['git', '-C', src, 'diff', '--no-index', '--no-color', '-U3', a, b],
                           capture_output=True, text=True)
    if r.returncode not in (0, 1):
        sys.exit(r.stderr)
    hunks = r.stdout[r.stdout.index('\n@@'):] if '\n@@' in r.stdout else ''
    if not hunks:
        return ''
    return (f'diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}' + hunks)


def main():
    if len(sys.argv) < 3:
        sys.exit(USAGE)
    src = src_dir()
    pdir = os.path.join(ROOT, 'patches')
    names = [n for n in os.listdir(pdir) if sys.argv[1] in n and n.endswith('.patch')]
    if len(names) != 1:
        sys.exit(f'{sys.argv[1]!r} names {len(names)} patches: {names}')
    ppath = os.path.join(pdir, names[0])
    text = open(ppath).read()
    subject = re.search(r'(?m)^Subject: (.*)$', text).group(1)
    commits = [l.split(' ', 1) for l in git(src, 'log', '--format=%H %s').splitlines()]
    match = [c for c, s in commits if s == subject]
    if len(match) != 1:
        sys.exit(f'{len(match)} commits in {src} have the subject {subject!r}')
    commit = match[0]
    sep = text.index('\n---\n') + len('\n---\n')
    head, files = sections(text[sep:])
    known = {p for p, _ in files}
    for path in sys.argv[2:]:
        if path not in known:
            sys.exit(f'{names[0]} does not change {path}')
        edit = git(src, 'diff', 'HEAD', '--', path)
        if not edit:
            sys.exit(f'{path} has no edit in {src}')
        if subprocess.run(['git', '-C', src, 'cat-file', '-e', f'{commit}^:{path}'],
                          capture_output=True).returncode:
            sys.exit(f'{names[0]} creates {path}: edit it in the project instead')
        before = git(src, 'show', f'{commit}^:{path}')
        with tempfile.TemporaryDirectory() as d:
            f = os.path.join(d, path)
            os.makedirs(os.path.dirname(f), exist_ok=True)
            open(f, 'w').write(git(src, 'show', f'{commit}:{path}'))
            # git apply takes no fuzz: an edit lands where it was made, or not at all.
            p = subprocess.run(['git', 'apply'], cwd=d, input=edit, capture_output=True,
                               text=True)
            if p.returncode:
                sys.exit(f'the edit of {path} does not apply at {names[0]}:\n{p.stderr}')
            after = open(f).read()
        new = file_diff(src, before, after, path)
        files = [(p, new if p == path else t) for p, t in files]
    body = head + ''.join(t if t.endswith('\n') else t + '\n' for _, t in files if t)
    open(ppath, 'w').write(text[:sep] + body)
    print(f'rewrote patches/{names[0]}')


if __name__ == '__main__':
    main()
