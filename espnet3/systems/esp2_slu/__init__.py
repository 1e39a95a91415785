"""Spoken language understanding recipes (``esp2_slu``)."""
