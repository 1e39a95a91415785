"""Small helpers shared across espnet3."""
