"""`python -m moa_gateway`: the same as the `moa-gateway` console script."""

from __future__ import annotations

import sys

from moa_gateway.cli import main

sys.exit(main())
