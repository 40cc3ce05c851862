"""Entry point: ``python -m tools.onebot_sim ...`` (or ``python tools/onebot_sim ...``)."""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a directory: put the project root on sys.path instead of it
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parents[1]))

from tools.onebot_sim.cli import main

if __name__ == "__main__":
    sys.exit(main())
