"""`python -m loaders.cli`: the `elt` command."""

import sys

from loaders.cli import main

sys.exit(main())
