"""``python -m pydrmaa2.cli``: the drmaa2 command."""

import sys

from . import main

sys.exit(main())
