"""The upstream ``espnet3.utils`` modules that need a layer above ``utils`` (see the package above)."""
