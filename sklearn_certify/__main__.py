"""Entry point for ``python -m sklearn_certify``."""

import sys

from sklearn_certify.cli import main

if __name__ == "__main__":
    sys.exit(main())
