"""`python -m lora_lab …`: the course's command line (see `lora_lab.course.cli`)."""

import sys

from lora_lab.course.cli import main

if __name__ == "__main__":
    sys.exit(main())
