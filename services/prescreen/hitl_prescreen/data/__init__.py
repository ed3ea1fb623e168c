"""Package data: the labelled prescreen evaluation set."""
