"""`make bench`: the gateway against its upstream called directly, in one run."""
