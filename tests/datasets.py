"""Where the real datasets live: ``../shared/datasets`` beside the repository (never copied in).

``LEADFLOW_DATASETS`` points elsewhere when the checkout has no ``../shared`` beside it.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("LEADFLOW_DATASETS", REPO.parent / "shared" / "datasets"))
X_EDUCATION = DATASETS / "x-education-leads.csv"
