"""Singing voice synthesis recipes (``egs3/<corpus>/svs``)."""
