"""`pattern ui`: a local web console on the same functions as the commands."""
