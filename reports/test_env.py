"""What the report tests need before they import anything else: h5py, matplotlib and numpy. Under another
interpreter without them the test re-runs itself under Debian's /usr/bin/python3 (where scripts/setup installs
them); where that fails too it exits 77, which ctest counts as skipped."""
import importlib
import os
import sys


def require(*modules):
    try:
        for m in modules:
            importlib.import_module(m)
    except ImportError as e:
        if sys.executable != "/usr/bin/python3" and os.access("/usr/bin/python3", os.X_OK):
            os.execv("/usr/bin/python3", ["/usr/bin/python3", *sys.argv])
        print(f"skipped: {e} (Debian: python3-h5py python3-matplotlib python3-numpy)")
        sys.exit(77)
