"""Speech-to-text recipes (``esp2_s2t``)."""
