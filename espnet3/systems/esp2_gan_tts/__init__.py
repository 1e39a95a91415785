"""``esp2_gan_tts`` recipes."""
