"""Settings by environment: base (shared), local (make run), test, production."""
