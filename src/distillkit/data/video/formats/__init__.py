"""The built-in annotation formats, one module each; each registers itself with `register_format`.

Every module of this package is imported with it: a new format is one new file here.
"""

from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
