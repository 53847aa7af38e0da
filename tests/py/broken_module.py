"""A module that fails at import, for the executor's --import error path."""

raise RuntimeError("broken_module cannot be imported")
