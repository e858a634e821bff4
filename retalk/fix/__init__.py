"""`retalk fix`: a file the service takes, made from one that it would reject."""
