"""The upstream ``espnet3.parallel`` modules that name the runner (see the package above)."""
