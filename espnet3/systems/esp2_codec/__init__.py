"""Codec recipes (``esp2_codec``)."""
