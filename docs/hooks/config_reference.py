"""MkDocs hook: the configuration reference, generated from the settings classes at build time.

The page (``configuration.md``) is never stored in the repository; ``on_files`` adds it to
the build from :func:`pipeline.config_reference.reference_markdown`, so a setting added in
code appears in the reference by itself. Importing the settings loads neither Spark nor
TensorFlow. Under ``make docs-serve`` a change to a settings class shows after a restart.
"""

from __future__ import annotations

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

PAGE = "configuration.md"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    from pipeline.config_reference import reference_markdown

    files.append(File.generated(config, PAGE, content=reference_markdown()))
    return files
