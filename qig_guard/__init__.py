"""qig-guard: static and runtime guards for basin-transfer practice.

Importing this package is cheap: it does not import libcst or torch.
"""

__version__ = "0.1.0"
