"""UoE (Union of Experts, arXiv 2503.02495): the project's own model.

decompose.py splits dense weights into experts and merges them back (exact both ways);
routing.py is the hierarchical router (expert selection, then patch-wise data selection);
smha.py and uome.py are the two UoE parts (selective multi-head attention, union of MLP
experts); model.py builds the `uoe` (corrected) and `uoe_paper` (released) behaviours,
which `baselines/uoe.py` registers, and converts a dense model with `from_dense`.
"""
