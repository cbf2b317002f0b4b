"""`python -m dagrad`: the dagrad command."""

import sys

from dagrad.cli import main

sys.exit(main())
