"""drsn-edge: train, quantize and deploy a 1D Deep Residual Shrinkage Network to Cortex-M."""

__version__ = "0.1.0"
