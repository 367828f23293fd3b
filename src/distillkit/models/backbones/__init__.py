"""The built-in backbones, one module per family; each registers its builders with `register_backbone`.

Every module of this package is imported with it: a new backbone is one new file here.
"""

from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
