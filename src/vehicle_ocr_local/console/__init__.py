"""The results console: a web page on localhost over a stack's records, photos, failures and usage."""
