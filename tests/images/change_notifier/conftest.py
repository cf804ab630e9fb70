"""The CloudEvents receiver of the change-notifier tests is importable here too."""

from __future__ import annotations

import sys
from pathlib import Path

PEERS = Path(__file__).resolve().parents[2] / "peers" / "events"
if str(PEERS) not in sys.path:
    sys.path.insert(0, str(PEERS))
