"""Models: the shared encoder backbone (`models.layers`) and, later, UoE and its kernels."""
