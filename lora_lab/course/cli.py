"""Course chores from the command line:

    python -m lora_lab student OUT_DIR      student copies of every notebook (--source notebooks/zh: Chinese)
    python -m lora_lab course DIR           an nbgrader course: source/<notebook>/ and nbgrader_config.py
    python -m lora_lab exercise-table       the exercises and points of every notebook (README's table)
    python -m lora_lab figures [OUT_DIR]    regenerate the course's figures (default: figures/)
    python -m lora_lab pretrain             build (or check) the experiments' base checkpoint
    python -m lora_lab prepare-llm          convert the capstone's LLM into its cache (needs [llm])
    python -m lora_lab zh [--check]         regenerate the Chinese edition, notebooks/zh/ (--check: no writes)
    python -m lora_lab zh --skeleton NN     print notebook NN's translation store with what needs work marked
"""

from __future__ import annotations

import argparse
import importlib
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lora_lab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    student = sub.add_parser("student", help="write student copies of every notebook")
    student.add_argument("out_dir")
    student.add_argument("--source", default=None, help="the notebooks to copy (default: the masters)")
    course = sub.add_parser("course", help="lay out an nbgrader course directory with every master")
    course.add_argument("course_dir")
    course.add_argument("--source", default=None, help="the notebooks to lay out (default: the masters)")
    course.add_argument("--timeout", type=int, default=None,
                        help="nbgrader's per-cell timeout in seconds (default: 2 x the slowest master cell)")
    sub.add_parser("exercise-table", help="print the exercises and points of every notebook (Markdown)")
    figures = sub.add_parser("figures", help="regenerate figures/*.png")
    figures.add_argument("out_dir", nargs="?", default="figures")
    sub.add_parser("pretrain", help="build or check the experiments' base checkpoint")
    sub.add_parser("prepare-llm", help="convert the capstone's LLM into its cache (needs the [llm] extra)")
    zh = sub.add_parser("zh", help="regenerate the Chinese edition (notebooks/zh/) from the stores")
    zh.add_argument("--check", action="store_true", help="print every problem and exit 1; write nothing")
    zh.add_argument("--skeleton", metavar="NN", help="print the store of notebook NN (e.g. 03) to update")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "zh":
        return _zh(args)
    if args.command == "student":
        from lora_lab.course.assignments import write_student_copies

        for path in write_student_copies(args.out_dir, *([args.source] if args.source else [])):
            print(f"wrote {path}")
    elif args.command == "course":
        from lora_lab.course.assignments import write_course

        source = [args.source] if args.source else []
        for path in write_course(args.course_dir, *source, timeout=args.timeout):
            print(f"wrote {path}")
    elif args.command == "exercise-table":
        from lora_lab.course.assignments import exercise_table

        print(exercise_table(), end="")
    elif args.command == "figures":
        for path in importlib.import_module("lora_lab.course.figures").write_all(args.out_dir):
            print(f"wrote {path}")
    elif args.command == "pretrain":
        print(importlib.import_module("lora_lab.lab.models").pretrain_command())
    elif args.command == "prepare-llm":
        print(importlib.import_module("lora_lab.lab.llm").prepare_command())
    return 0


def _zh(args) -> int:
    """`zh`: regenerate (or with --check, check) the Chinese edition; `--skeleton NN` prints a store."""
    from lora_lab.course import zh_edition

    if args.skeleton:
        found = [m for m in zh_edition.masters() if m.stem == args.skeleton or m.stem[:2] == args.skeleton]
        if len(found) != 1:
            names = ", ".join(m.stem for m in zh_edition.masters())
            print(f"--skeleton must name one notebook (NN or NN_name), got {args.skeleton!r}; "
                  f"the notebooks: {names}", file=sys.stderr)
            return 2
        print(zh_edition.skeleton_for(found[0]), end="")
        return 0
    written, problems = zh_edition.write_edition(check=args.check)
    for path in written:
        print(f"wrote {path}")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s); a notebook with a problem in its store is not written",
              file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
