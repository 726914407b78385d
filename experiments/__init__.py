"""Method definitions and configs on the jpose harness (run from a checkout).

Importing this package points ``$JPOSE_SHARED_DATA`` (:func:`jpose.data.shared_data_dir`) at the
checkout's ``../shared/data`` when the variable is unset and that folder exists: the library
itself never guesses where a checkout sits on disk.
"""

import os
import pathlib

SHARED_DATA_DEFAULT = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
if not os.environ.get("JPOSE_SHARED_DATA") and SHARED_DATA_DEFAULT.is_dir():
    os.environ["JPOSE_SHARED_DATA"] = str(SHARED_DATA_DEFAULT)
