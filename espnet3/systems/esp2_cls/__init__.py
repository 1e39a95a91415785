"""Classification recipes on ESPnet2 models (``egs3/<corpus>/esp2_cls``)."""
