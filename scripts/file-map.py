#!/usr/bin/python3
"""Prints ARCHITECTURE.md's file map: every file of src/, by folder, with the
first sentence of the comment at its top (the file's own statement of what it
is for). Regenerate the section with: scripts/file-map.py"""
import os
import re
import subprocess

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
files = sorted(subprocess.check_output(["git", "ls-files", "src/*.c", "src/*.h"], cwd=root,
                                       text=True).split())
folder = None
for path in files:
    with open(os.path.join(root, path), encoding="utf-8") as handle:
        head = re.match(r"\s*/\*(.*?)\*/", handle.read(), re.S)
    text = " ".join(line.strip().lstrip("*").strip() for line in head.group(1).splitlines()) \
        if head else ""
    text = re.sub(r"\s+", " ", text).strip()
    sentence = re.match(r"(.+?[.:;])(\s|$)", text)
    first = (sentence.group(1) if sentence else text).rstrip(":;")
    if len(first) > 160:
        first = first[:157].rsplit(" ", 1)[0] + " …"
    if os.path.dirname(path) != folder:
        folder = os.path.dirname(path)
        print(f"\n**`{folder}`**\n\n| File | What it is for |\n|---|---|")
    print(f"| `{os.path.basename(path)}` | {first.replace('|', '/')} |")
