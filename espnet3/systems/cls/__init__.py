"""Audio classification recipes (``egs3/<corpus>/cls``)."""
