"""Import the imaging worker package from its source directory (nothing is installed)."""

import pathlib
import sys

PKG_ROOT = pathlib.Path(__file__).resolve().parents[3] / "roles" / "imaging_worker" / "files" / "hospital_imaging"
if str(PKG_ROOT) not in sys.path:
    sys.path.insert(0, str(PKG_ROOT))
