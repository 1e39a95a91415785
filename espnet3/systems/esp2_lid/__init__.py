"""Language identification recipes (``esp2_lid``)."""
