"""mediactrl/cfw."""
