"""Systems: a recipe config turned into the steps of an experiment (dataset creation first)."""
