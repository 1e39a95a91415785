"""Phone recognition recipes (``egs3/<corpus>/pr``)."""
