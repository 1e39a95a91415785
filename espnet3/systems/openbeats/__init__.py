"""BEATs self-supervised pre-training recipes (``egs3/<corpus>/openbeats``)."""
