"""The AWS commands against moto in server mode."""
