"""Text-to-speech recipes (``egs3/<corpus>/tts``)."""
