"""Speech enhancement recipes (``egs3/<corpus>/enh``)."""
