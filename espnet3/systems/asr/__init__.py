"""Speech recognition recipes (``egs3/<corpus>/asr``)."""
