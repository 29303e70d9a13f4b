#!/usr/bin/env python3
"""Module and function sizes of the product (``occ``, ``rating_engine``, ``settlement``), measured with ``ast``.

    scripts/sizes.py [--functions N] [--modules N] [ROOT]

Prints the modules longer than ``--modules`` lines (default 400), the functions and methods longer than
``--functions`` lines (default 60, from ``def`` to the last line of the body) with their cyclomatic complexity
(1 + decisions: if/for/while/except/with-items of comprehensions, each extra operand of ``and``/``or``, each
``case``), the ten largest modules and the number of Python modules per folder. Generated code (``*_pb2*.py``) is
skipped. The issue-11 limits are 400 lines a module and 60 lines a function; this script only measures.
"""

from __future__ import annotations

import argparse
import ast
from collections import Counter
from pathlib import Path

PACKAGES = ("occ", "rating_engine", "settlement")


def complexity(node: ast.AST) -> int:
    """McCabe's number, counted the usual way (nested functions count towards their own figure only)."""
    count = 1
    for child in ast.walk(node):
        if child is not node and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(child, ast.If | ast.For | ast.AsyncFor | ast.While | ast.IfExp | ast.ExceptHandler):
            count += 1
        elif isinstance(child, ast.BoolOp):
            count += len(child.values) - 1
        elif isinstance(child, ast.comprehension):
            count += 1 + len(child.ifs)
        elif isinstance(child, ast.match_case):
            count += 1
    return count


def functions(tree: ast.AST, prefix: str = ""):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.ClassDef):
            yield from functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield f"{prefix}{node.name}", node.end_lineno - node.lineno + 1, complexity(node)
            yield from functions(node, f"{prefix}{node.name}.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=Path(__file__).resolve().parent.parent, type=Path)
    parser.add_argument("--functions", type=int, default=60)
    parser.add_argument("--modules", type=int, default=400)
    args = parser.parse_args()
    sources = sorted(
        path
        for package in PACKAGES
        for path in (args.root / package).rglob("*.py")
        if "_pb2" not in path.name and "migrations" not in path.parts
    )
    lines, long_functions, per_folder = {}, [], Counter()
    for path in sources:
        name = str(path.relative_to(args.root))
        text = path.read_text()
        lines[name] = len(text.splitlines())
        per_folder[str(path.parent.relative_to(args.root))] += 1
        for function, length, mccabe in functions(ast.parse(text)):
            if length > args.functions:
                long_functions.append((length, mccabe, f"{name}:{function}"))
    print(f"modules over {args.modules} lines:")
    for name, count in sorted(lines.items(), key=lambda item: -item[1]):
        if count > args.modules:
            print(f"  {count:5d}  {name}")
    print(f"functions over {args.functions} lines (lines, complexity):")
    for length, mccabe, name in sorted(long_functions, reverse=True):
        print(f"  {length:5d} {mccabe:4d}  {name}")
    print("largest modules:")
    for name, count in sorted(lines.items(), key=lambda item: -item[1])[:10]:
        print(f"  {count:5d}  {name}")
    print("modules per folder (lines):")
    for folder, count in sorted(per_folder.items()):
        total = sum(n for name, n in lines.items() if str(Path(name).parent) == folder)
        print(f"  {count:3d}  {folder}/  ({total:,})")


if __name__ == "__main__":
    main()
