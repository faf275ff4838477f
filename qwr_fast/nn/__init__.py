"""Neural-network modules built on the fused ops of :mod:`qwr_fast.kernels`."""
