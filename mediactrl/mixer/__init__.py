"""mediactrl/mixer."""
