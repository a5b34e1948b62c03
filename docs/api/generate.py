"""Write the API reference, one Markdown page per module, from the docstrings.

    python docs/api/generate.py          # rewrite docs/api/*.md
    python docs/api/generate.py --check  # exit 1 if a page is out of date

``tests/test_api_docs.py`` runs the check, so the pages never drift from the code.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

MODULES = [
    "tinygrad_seq",
    "tinygrad_seq.tensor",
    "tinygrad_seq.autograd",
    "tinygrad_seq.safety",
    "tinygrad_seq.ops",
    "tinygrad_seq.functional",
    "tinygrad_seq.spelling",
    "tinygrad_seq.nn.module",
    "tinygrad_seq.nn.layers",
    "tinygrad_seq.nn.activation",
    "tinygrad_seq.nn.loss",
    "tinygrad_seq.nn.container",
    "tinygrad_seq.nn.shaping",
    "tinygrad_seq.nn.init",
    "tinygrad_seq.nn.cells",
    "tinygrad_seq.nn.recurrent",
    "tinygrad_seq.nn.patterns",
    "tinygrad_seq.nn.truncated",
    "tinygrad_seq.nn.utils",
    "tinygrad_seq.optim",
    "tinygrad_seq.optim.lr_scheduler",
    "tinygrad_seq.serialization",
    "tinygrad_seq.data",
    "tinygrad_seq.kernels",
    "tinygrad_seq.viz",
    "tinygrad_seq.lab.study",
    "tinygrad_seq.lab.sweep",
    "tinygrad_seq.testing",
    "tinygrad_seq.testing.strategies",
    "tinygrad_seq.testing.exercises",
]


def public_names(module) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            name
            for name, obj in vars(module).items()
            if not name.startswith("_")
            and (inspect.isclass(obj) or inspect.isfunction(obj))
            and getattr(obj, "__module__", None) == module.__name__
        ]
    return sorted(names)


def signature(obj) -> str:
    for options in ({"eval_str": True}, {}):  # evaluated annotations read better, when they can
        try:
            return str(inspect.signature(obj, **options))
        except (TypeError, ValueError, NameError):
            continue
    return ""


def doc(obj) -> str:
    text = inspect.getdoc(obj) or "*(no docstring)*"
    return text.strip()


def page(module_name: str) -> str:
    module = importlib.import_module(module_name)
    lines = [f"# `{module_name}`", "", doc(module), ""]
    for name in public_names(module):
        obj = getattr(module, name)
        if inspect.ismodule(obj):
            lines += [f"## `{name}` (module)", "", f"See `{obj.__name__}`.", ""]
            continue
        kind = "class" if inspect.isclass(obj) else "function" if callable(obj) else "value"
        sig = signature(obj) if callable(obj) else ""
        text = doc(obj) if callable(obj) else f"A `{type(obj).__name__}` value."
        lines += [f"## {kind} `{name}{sig}`", "", text, ""]
        if inspect.isclass(obj):
            for member_name, member in sorted(vars(obj).items()):
                if member_name.startswith("_") or not (
                    inspect.isfunction(member) or isinstance(member, property)
                ):
                    continue
                target = member.fget if isinstance(member, property) else member
                member_sig = "" if isinstance(member, property) else signature(member)
                lines += [f"### `{name}.{member_name}{member_sig}`", "", doc(target), ""]
    return "\n".join(lines).rstrip() + "\n"


def file_name(module_name: str) -> str:
    return "tinygrad_seq.md" if module_name == "tinygrad_seq" else module_name[13:] + ".md"


def index() -> str:
    lines = [
        "# API reference",
        "",
        "One page per module, generated from the docstrings by `python docs/api/generate.py`",
        "(`tests/test_api_docs.py` fails when a page is out of date).",
        "",
    ]
    for name in MODULES:
        summary = doc(importlib.import_module(name)).splitlines()[0]
        lines.append(f"- [`{name}`]({file_name(name)}) — {summary}")
    return "\n".join(lines) + "\n"


def pages() -> dict[Path, str]:
    written = {HERE / file_name(name): page(name) for name in MODULES}
    written[HERE / "README.md"] = index()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale pages")
    args = parser.parse_args()
    stale = []
    for path, text in pages().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            stale.append(path.name)
            if not args.check:
                path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print("out of date: " + ", ".join(stale) + " (run python docs/api/generate.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
