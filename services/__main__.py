"""`python -m services` is the `wuguan` command: how the house starts its own processes (workers,
the finance API) with the interpreter it runs on, installed or not."""
import sys

from services.composition import main

if __name__ == "__main__":  # tools that import every module (docs/rules.md's generator) must not run it
    sys.exit(main())
