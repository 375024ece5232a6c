"""Host-side tests of the harness in vm/: no VM, seconds."""

from __future__ import annotations

import sys
from pathlib import Path

VM_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(VM_DIR))
