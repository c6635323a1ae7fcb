"""Course chores from the command line:

    python -m lora_lab student OUT_DIR      student copies of every notebook
    python -m lora_lab course DIR           an nbgrader course: source/<notebook>/ and nbgrader_config.py
    python -m lora_lab exercise-table       the exercises and points of every notebook (README's table)
    python -m lora_lab figures [OUT_DIR]    regenerate the course's figures (default: figures/)
    python -m lora_lab pretrain             build (or check) the experiments' base checkpoint
    python -m lora_lab prepare-llm          convert the capstone's LLM into its cache (needs [llm])
"""

from __future__ import annotations

import argparse
import importlib
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lora_lab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    student = sub.add_parser("student", help="write student copies of every notebook")
    student.add_argument("out_dir")
    course = sub.add_parser("course", help="lay out an nbgrader course directory with every master")
    course.add_argument("course_dir")
    course.add_argument("--timeout", type=int, default=None,
                        help="nbgrader's per-cell timeout in seconds (default: 2 x the slowest master cell)")
    sub.add_parser("exercise-table", help="print the exercises and points of every notebook (Markdown)")
    figures = sub.add_parser("figures", help="regenerate figures/*.png")
    figures.add_argument("out_dir", nargs="?", default="figures")
    sub.add_parser("pretrain", help="build or check the experiments' base checkpoint")
    sub.add_parser("prepare-llm", help="convert the capstone's LLM into its cache (needs the [llm] extra)")
    args = parser.parse_args(argv)

    if args.command == "student":
        from lora_lab.course.assignments import write_student_copies

        for path in write_student_copies(args.out_dir):
            print(f"wrote {path}")
    elif args.command == "course":
        from lora_lab.course.assignments import write_course

        for path in write_course(args.course_dir, timeout=args.timeout):
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


if __name__ == "__main__":
    sys.exit(main())
