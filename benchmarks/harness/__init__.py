"""The benchmark harness: running the modules, result dicts, CPU accounting."""
