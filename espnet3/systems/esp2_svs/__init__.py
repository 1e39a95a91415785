"""``esp2_svs`` recipes."""
