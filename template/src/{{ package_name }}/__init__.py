"""The ML pipeline of this project: one module per step, each runnable as ``python -m``."""
