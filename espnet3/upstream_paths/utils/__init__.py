"""The upstream ``espnet3.utils`` modules that need the schedulers (see the package above)."""
