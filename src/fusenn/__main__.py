"""``python -m fusenn``: the ``fusenn`` command (see :mod:`fusenn.cli`)."""
import sys

from .cli import main

sys.exit(main())
