"""Django-free point-cloud file handling: sniffing, streaming validation, canonical form."""
