"""hessinit: exact layer Hessians, their chain-rule split, and weight initialization.

The executable companion to M. Skorski, A. Temperoni and M. Theobald, *Revisiting Weight
Initialization of Deep Neural Networks*, ACML 2021.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
