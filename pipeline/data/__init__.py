"""ImageNet ingest: source layouts, strict decoding, Petastorm schema, writers and readers."""
